/*
 * cprobe: a C service built against include/ by runtime/tests/cmodule.rs and driven by
 * test/test_cmodule.lua. Each text request names one part of the C API to exercise and
 * gets its answer as the response:
 *
 *   echo TEXT         TEXT, copied by skynet_send
 *   malloc N          N bytes of 'c' in a skynet_malloc buffer handed over (DONTCOPY)
 *   find NAME         the handle of .NAME by skynet_handle_findname and skynet_queryname
 *   env KEY           skynet_getenv
 *   timeout T         "timeout" once a skynet_timeout of T centiseconds fires
 *   connect PORT      "connected" once a socket to 127.0.0.1:PORT is open and
 *                     "hello from C\n" written to it
 *   udp PORT          "udp" once a UDP socket on 127.0.0.1:PORT is open; each datagram
 *                     it gets goes back to its sender (skynet_socket_udp_address,
 *                     skynet_socket_udp_send of the received buffer)
 *   push NAME         sends "pushed" to .NAME (skynet_sendname), then answers "ok"
 *   count             how many instances this module has created (the module is shared)
 *   signal            the last signal SIGNAL gave this instance
 *   self              skynet_current_handle, as ":%08x"
 *   refused           what skynet_send returns to address 0, skynet_sendname to an
 *                     unknown name and skynet_send of a message too large (handed-over
 *                     buffers, which the core frees), and skynet_send's session
 *
 * A PTYPE_CLIENT request is kept (the callback returns 1) and its own buffer sent back
 * as the response. Launched with the parameter "fail", init fails.
 */
#include "skynet.h"
#include "skynet_env.h"
#include "skynet_handle.h"
#include "skynet_socket.h"
#include "skynet_timer.h"
#include "skynet_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int created = 0;

struct cprobe {
	int signal;
	/* the request waiting for a timeout or a connection */
	uint32_t waiter;
	int waiter_session;
	int timer_session;
	int socket;
	int udp;
};

static void *
one_byte(void) {
	char *p = skynet_malloc(1);
	*p = 'x';
	return p;
}

static void
reply(struct skynet_context *ctx, uint32_t to, int session, const char *text) {
	skynet_send(ctx, 0, to, PTYPE_RESPONSE, session, (void *)text, strlen(text));
}

static void
request(struct cprobe *p, struct skynet_context *ctx, uint32_t source, int session, const char *msg, size_t sz) {
	char cmd[256];
	if (sz >= sizeof(cmd))
		sz = sizeof(cmd) - 1;
	memcpy(cmd, msg, sz);
	cmd[sz] = '\0';
	char *arg = strchr(cmd, ' ');
	if (arg)
		*arg++ = '\0';
	else
		arg = "";
	char out[128];
	if (strcmp(cmd, "echo") == 0) {
		reply(ctx, source, session, arg);
	} else if (strcmp(cmd, "malloc") == 0) {
		size_t n = (size_t)strtoul(arg, NULL, 10);
		char *buf = skynet_malloc(n);
		memset(buf, 'c', n);
		skynet_send(ctx, 0, source, PTYPE_RESPONSE | PTYPE_TAG_DONTCOPY, session, buf, n);
	} else if (strcmp(cmd, "find") == 0) {
		char dotted[64];
		snprintf(dotted, sizeof(dotted), ".%s", arg);
		snprintf(out, sizeof(out), ":%08x :%08x", skynet_handle_findname(arg), skynet_queryname(ctx, dotted));
		reply(ctx, source, session, out);
	} else if (strcmp(cmd, "env") == 0) {
		const char *v = skynet_getenv(arg);
		reply(ctx, source, session, v ? v : "(unset)");
	} else if (strcmp(cmd, "timeout") == 0) {
		p->waiter = source;
		p->waiter_session = session;
		p->timer_session = skynet_context_newsession(ctx);
		skynet_timeout(skynet_context_handle(ctx), atoi(arg), p->timer_session);
	} else if (strcmp(cmd, "connect") == 0) {
		p->waiter = source;
		p->waiter_session = session;
		p->socket = skynet_socket_connect(ctx, "127.0.0.1", atoi(arg));
	} else if (strcmp(cmd, "udp") == 0) {
		p->udp = skynet_socket_udp(ctx, "127.0.0.1", atoi(arg));
		reply(ctx, source, session, p->udp < 0 ? "udp failed" : "udp");
	} else if (strcmp(cmd, "push") == 0) {
		char to[64];
		snprintf(to, sizeof(to), ".%s", arg);
		skynet_sendname(ctx, 0, to, PTYPE_TEXT, 0, "pushed", 6);
		reply(ctx, source, session, "ok");
	} else if (strcmp(cmd, "count") == 0) {
		snprintf(out, sizeof(out), "%d", created);
		reply(ctx, source, session, out);
	} else if (strcmp(cmd, "signal") == 0) {
		snprintf(out, sizeof(out), "%d", p->signal);
		reply(ctx, source, session, out);
	} else if (strcmp(cmd, "refused") == 0) {
		int zero = skynet_send(ctx, 0, 0, PTYPE_TEXT | PTYPE_TAG_DONTCOPY, 0, one_byte(), 1);
		int unknown = skynet_sendname(ctx, 0, ".nosuchname", PTYPE_TEXT | PTYPE_TAG_DONTCOPY, 0, one_byte(), 1);
		int large = skynet_send(ctx, 0, source, PTYPE_TEXT | PTYPE_TAG_DONTCOPY, 0, one_byte(), (size_t)1 << 60);
		int s1 = skynet_send(ctx, 0, 0, PTYPE_TEXT | PTYPE_TAG_ALLOCSESSION, 0, NULL, 0);
		int s2 = skynet_send(ctx, 0, 0, PTYPE_TEXT | PTYPE_TAG_ALLOCSESSION, 0, NULL, 0);
		snprintf(out, sizeof(out), "%d %d %d %d", zero, unknown, large, s2 - s1);
		reply(ctx, source, session, out);
	} else if (strcmp(cmd, "self") == 0) {
		snprintf(out, sizeof(out), ":%08x", skynet_current_handle());
		reply(ctx, source, session, out);
	} else {
		skynet_error(ctx, "cprobe: unknown request %s", cmd);
		reply(ctx, source, session, "?");
	}
}

static void
socket_event(struct cprobe *p, struct skynet_context *ctx, struct skynet_socket_message *m) {
	if (m->type == SKYNET_SOCKET_TYPE_UDP && m->id == p->udp) {
		int size = 0;
		const char *from = skynet_socket_udp_address(m, &size);
		if (from == NULL || skynet_socket_udp_send(ctx, m->id, from, m->buffer, m->ud) != 0)
			skynet_error(ctx, "cprobe: udp echo failed");
		return;
	}
	if (m->id != p->socket)
		return;
	if (m->type == SKYNET_SOCKET_TYPE_CONNECT) {
		static const char hello[] = "hello from C\n";
		char *buf = skynet_malloc(sizeof(hello) - 1);
		memcpy(buf, hello, sizeof(hello) - 1);
		if (skynet_socket_send(ctx, m->id, buf, sizeof(hello) - 1) == 0)
			reply(ctx, p->waiter, p->waiter_session, "connected");
		else
			reply(ctx, p->waiter, p->waiter_session, "send failed");
	} else if (m->type == SKYNET_SOCKET_TYPE_ERROR) {
		reply(ctx, p->waiter, p->waiter_session, "connect failed");
	} else if (m->type == SKYNET_SOCKET_TYPE_DATA) {
		skynet_free(m->buffer);
	}
}

static int
callback(struct skynet_context *ctx, void *ud, int type, int session, uint32_t source, const void *msg, size_t sz) {
	struct cprobe *p = ud;
	switch (type) {
	case PTYPE_TEXT:
		request(p, ctx, source, session, msg, sz);
		return 0;
	case PTYPE_RESPONSE:
		if (session == p->timer_session)
			reply(ctx, p->waiter, p->waiter_session, "timeout");
		return 0;
	case PTYPE_SOCKET:
		socket_event(p, ctx, (struct skynet_socket_message *)msg);
		return 0;
	case PTYPE_CLIENT:
		skynet_send(ctx, 0, source, PTYPE_RESPONSE | PTYPE_TAG_DONTCOPY, session, (void *)msg, sz);
		return 1;
	}
	return 0;
}

struct cprobe *
cprobe_create(void) {
	struct cprobe *p = skynet_malloc(sizeof(*p));
	memset(p, 0, sizeof(*p));
	p->socket = -1;
	p->udp = -1;
	++created;
	return p;
}

int
cprobe_init(struct cprobe *p, struct skynet_context *ctx, const char *param) {
	if (param && strcmp(param, "fail") == 0)
		return 1;
	if (skynet_command(ctx, "REG", ".cprobe") == NULL)
		skynet_command(ctx, "REG", ".cprobe2");
	skynet_callback(ctx, p, callback);
	skynet_error(ctx, "cprobe init %s", param ? param : "(null)");
	return 0;
}

void
cprobe_release(struct cprobe *p) {
	skynet_error(NULL, "cprobe release");
	skynet_free(p);
}

void
cprobe_signal(struct cprobe *p, int signal) {
	p->signal = signal;
}
