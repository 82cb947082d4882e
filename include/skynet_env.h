/* skynet_env.h: the node's environment (the config and SETENV). */
#ifndef SKYNET_ENV_H
#define SKYNET_ENV_H

/* A value, valid for the life of the process; NULL when the key is not set. */
const char * skynet_getenv(const char *key);
/* Adds a key; a key that is already set keeps its value. */
void skynet_setenv(const char *key, const char *value);

#endif
