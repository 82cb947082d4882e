/*
 * skynet_socket.h: sockets of the node's socket server, for C services and Lua C
 * modules. Events arrive as PTYPE_SOCKET messages whose payload starts with a
 * struct skynet_socket_message.
 */
#ifndef skynet_socket_h
#define skynet_socket_h

#include <stddef.h>
#include <stdint.h>

struct skynet_context;

/* What a send buffer holds: a malloc buffer handed over (freed once written), a user
 * object (not supported by this core: refused with -1), or bytes to copy. */
#define SOCKET_BUFFER_MEMORY 0
#define SOCKET_BUFFER_OBJECT 1
#define SOCKET_BUFFER_RAWPOINTER 2

struct socket_sendbuffer {
	int id;
	int type;
	const void *buffer;
	size_t sz;
};

/* Kinds in skynet_socket_info. */
#define SOCKET_INFO_UNKNOWN 0
#define SOCKET_INFO_LISTEN 1
#define SOCKET_INFO_TCP 2
#define SOCKET_INFO_UDP 3
#define SOCKET_INFO_BIND 4
#define SOCKET_INFO_CLOSING 5

struct socket_info {
	int id;
	int type;
	uint64_t opaque;	/* the owner's handle */
	uint64_t read;
	uint64_t write;
	uint64_t rtime;
	uint64_t wtime;
	int64_t wbuffer;
	uint8_t reading;
	uint8_t writing;
	char name[128];
	struct socket_info *next;
};

/* Frees a list from skynet_socket_info. */
void socket_info_release(struct socket_info *);

/* Event types. */
#define SKYNET_SOCKET_TYPE_DATA 1
#define SKYNET_SOCKET_TYPE_CONNECT 2
#define SKYNET_SOCKET_TYPE_CLOSE 3
#define SKYNET_SOCKET_TYPE_ACCEPT 4
#define SKYNET_SOCKET_TYPE_ERROR 5
#define SKYNET_SOCKET_TYPE_UDP 6
#define SKYNET_SOCKET_TYPE_WARNING 7

/* DATA and UDP: buffer is a malloc buffer of ud bytes, the receiver's to free (UDP:
 * followed by the sender address). Otherwise buffer is NULL and a string may follow
 * the struct in the message. */
struct skynet_socket_message {
	int type;
	int id;
	int ud;
	char * buffer;
};

/* Return 0, or -1 when the socket is gone (a MEMORY buffer is freed then). */
int skynet_socket_sendbuffer(struct skynet_context *ctx, struct socket_sendbuffer *buffer);
int skynet_socket_sendbuffer_lowpriority(struct skynet_context *ctx, struct socket_sendbuffer *buffer);
/* Return a socket id, or -1. */
int skynet_socket_listen(struct skynet_context *ctx, const char *host, int port, int backlog);
int skynet_socket_connect(struct skynet_context *ctx, const char *host, int port);
int skynet_socket_bind(struct skynet_context *ctx, int fd);
void skynet_socket_close(struct skynet_context *ctx, int id);
void skynet_socket_shutdown(struct skynet_context *ctx, int id);
void skynet_socket_start(struct skynet_context *ctx, int id);
void skynet_socket_pause(struct skynet_context *ctx, int id);
void skynet_socket_nodelay(struct skynet_context *ctx, int id);

int skynet_socket_udp(struct skynet_context *ctx, const char * addr, int port);
int skynet_socket_udp_connect(struct skynet_context *ctx, int id, const char * addr, int port);
int skynet_socket_udp_dial(struct skynet_context *ctx, const char * addr, int port);
int skynet_socket_udp_listen(struct skynet_context *ctx, const char * addr, int port);
/* address: a binary address as skynet_socket_udp_address gives it. */
int skynet_socket_udp_sendbuffer(struct skynet_context *ctx, const char * address, struct socket_sendbuffer *buffer);
/* The sender of a UDP event, and its size in *addrsz; NULL for other events. */
const char * skynet_socket_udp_address(struct skynet_socket_message *, int *addrsz);

/* Every live socket, a malloc list (free it with socket_info_release); NULL if none. */
struct socket_info * skynet_socket_info();

/* Older calls, on a send buffer: sz < 0 means a user object, else bytes handed over. */
static inline void sendbuffer_init_(struct socket_sendbuffer *buf, int id, const void *buffer, int sz) {
	buf->id = id;
	buf->buffer = buffer;
	buf->type = sz < 0 ? SOCKET_BUFFER_OBJECT : SOCKET_BUFFER_MEMORY;
	buf->sz = (size_t)sz;
}

static inline int skynet_socket_send(struct skynet_context *ctx, int id, void *buffer, int sz) {
	struct socket_sendbuffer b;
	sendbuffer_init_(&b, id, buffer, sz);
	return skynet_socket_sendbuffer(ctx, &b);
}

static inline int skynet_socket_send_lowpriority(struct skynet_context *ctx, int id, void *buffer, int sz) {
	struct socket_sendbuffer b;
	sendbuffer_init_(&b, id, buffer, sz);
	return skynet_socket_sendbuffer_lowpriority(ctx, &b);
}

static inline int skynet_socket_udp_send(struct skynet_context *ctx, int id, const char * address, const void *buffer, int sz) {
	struct socket_sendbuffer b;
	sendbuffer_init_(&b, id, buffer, sz);
	return skynet_socket_udp_sendbuffer(ctx, address, &b);
}

#endif
