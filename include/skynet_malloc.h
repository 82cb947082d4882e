/*
 * skynet_malloc.h: the allocator of message payloads, which is the C library's own.
 * A buffer from skynet_malloc may be sent in a message and freed by Lua or the core,
 * and a payload received may be freed with skynet_free.
 */
#ifndef skynet_malloc_h
#define skynet_malloc_h

#include <stddef.h>

#define skynet_malloc malloc
#define skynet_calloc calloc
#define skynet_realloc realloc
#define skynet_free free
#define skynet_memalign memalign
#define skynet_aligned_alloc aligned_alloc
#define skynet_posix_memalign posix_memalign

void * skynet_malloc(size_t sz);
void * skynet_calloc(size_t nmemb,size_t size);
void * skynet_realloc(void *ptr, size_t size);
void skynet_free(void *ptr);
/* A Lua allocator on the same heap (lua_Alloc without its ud). */
void * skynet_lalloc(void *ptr, size_t osize, size_t nsize);
void * skynet_memalign(size_t alignment, size_t size);
void * skynet_aligned_alloc(size_t alignment, size_t size);
int skynet_posix_memalign(void **memptr, size_t alignment, size_t size);

#endif
