/* noinit: a C service without noinit_init, which LAUNCH must refuse. */
void *
noinit_create(void) {
	return (void *)1;
}
