/* skynet_handle.h: handles and local names. */
#ifndef SKYNET_CONTEXT_HANDLE_H
#define SKYNET_CONTEXT_HANDLE_H

#include <stdint.h>

/* The top 8 bits of a handle are its node's harbor id. */
#define HANDLE_MASK 0xffffff
#define HANDLE_REMOTE_SHIFT 24

struct skynet_context;

/* Retires a service; 1 if it was alive. */
int skynet_handle_retire(uint32_t handle);
/* The context of handle with a reference taken (skynet_context_release it), or NULL. */
struct skynet_context * skynet_handle_grab(uint32_t handle);
/* The handle of a local name (given without its dot), 0 if none. */
uint32_t skynet_handle_findname(const char * name);
/* Binds a local name to handle; the kept name, or NULL when the name is taken. */
const char * skynet_handle_namehandle(uint32_t handle, const char *name);

#endif
