/*
 * skynet.h: what a C service or a Lua C module calls in the skynet binary.
 * Written for this core; declarations match upstream skynet's public header, so code
 * written against either builds against this one. See README.md, "C modules".
 */
#ifndef SKYNET_H
#define SKYNET_H

#include "skynet_malloc.h"

#include <stddef.h>
#include <stdint.h>

/* Message types. */
#define PTYPE_TEXT 0
#define PTYPE_RESPONSE 1
#define PTYPE_MULTICAST 2
#define PTYPE_CLIENT 3
#define PTYPE_SYSTEM 4
#define PTYPE_HARBOR 5
#define PTYPE_SOCKET 6
#define PTYPE_ERROR 7
/* Types lualib gives a meaning of its own. */
#define PTYPE_RESERVED_QUEUE 8
#define PTYPE_RESERVED_DEBUG 9
#define PTYPE_RESERVED_LUA 10
#define PTYPE_RESERVED_SNAX 11

/* Flags or-ed into the type of skynet_send: the buffer is handed over instead of
 * copied; a new session is taken from the sender and returned. */
#define PTYPE_TAG_DONTCOPY 0x10000
#define PTYPE_TAG_ALLOCSESSION 0x20000

struct skynet_context;

/* A printf-style line for the logger, from ctx (NULL: from the system). */
void skynet_error(struct skynet_context * context, const char *msg, ...);

/* A text command (TIMEOUT, REG, QUERY, NAME, EXIT, KILL, LAUNCH, GETENV, SETENV,
 * STARTTIME, ABORT, MONITOR, STAT, LOGON, LOGOFF, SIGNAL). The result is NULL or a
 * string valid until the next command this thread runs. */
const char * skynet_command(struct skynet_context * context, const char * cmd , const char * parm);

/* ":hex" or ".name" to a handle; 0 when unknown. */
uint32_t skynet_queryname(struct skynet_context * context, const char * name);

/* Send msg (sz bytes) to a handle or an address (":hex", ".local", or a global name).
 * source 0 means the sender. Returns the session; -1 when the destination is gone or
 * 0 with data, -2 when the message is too large. A buffer handed over with
 * PTYPE_TAG_DONTCOPY is freed by the core whatever happens. */
int skynet_send(struct skynet_context * context, uint32_t source, uint32_t destination , int type, int session, void * msg, size_t sz);
int skynet_sendname(struct skynet_context * context, uint32_t source, const char * destination , int type, int session, void * msg, size_t sz);

/* Whether handle lives on another node; its harbor id goes to *harbor if not NULL. */
int skynet_isremote(struct skynet_context *, uint32_t handle, int * harbor);

/* The callback of a C service. Return 0 and the core frees msg after the call;
 * anything else and the service keeps msg and frees it itself. */
typedef int (*skynet_cb)(struct skynet_context * context, void *ud, int type, int session, uint32_t source , const void * msg, size_t sz);
void skynet_callback(struct skynet_context * context, void *ud, skynet_cb cb);

/* The service this thread is running (0 outside a service). */
uint32_t skynet_current_handle(void);
/* Centiseconds since the node started. */
uint64_t skynet_now(void);
/* Prints the current service's heap use on stderr. */
void skynet_debug_memory(const char *info);

#endif
