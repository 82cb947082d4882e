/* skynet_server.h: service contexts. */
#ifndef SKYNET_SERVER_H
#define SKYNET_SERVER_H

#include <stdint.h>
#include <stdlib.h>

struct skynet_context;

/* A queued message: the type rides in the top 8 bits of sz. */
struct skynet_message {
	uint32_t source;
	int session;
	void * data;
	size_t sz;
};

void skynet_context_grab(struct skynet_context *);
/* A reference that does not keep the node running. */
void skynet_context_reserve(struct skynet_context *ctx);
void skynet_context_release(struct skynet_context *);
uint32_t skynet_context_handle(struct skynet_context *);
/* Queues message (its data handed over) for handle: 0, or -1 when it is gone. */
int skynet_context_push(uint32_t handle, struct skynet_message *message);
/* Queues msg (handed over) for context itself. */
void skynet_context_send(struct skynet_context * context, void * msg, size_t sz, uint32_t source, int type, int session);
int skynet_context_newsession(struct skynet_context *);
/* Live services. */
int skynet_context_total();

#endif
