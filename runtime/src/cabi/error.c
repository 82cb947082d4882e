/* skynet_error is printf-style, which stable Rust cannot define: it is formatted here
 * and the line handed to the core (skynet_error_line, cabi/skynet.rs). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct skynet_context;
struct lua_State;

void skynet_error_line(struct skynet_context *ctx, const char *line, size_t len);
int luaL_loadfilex(struct lua_State *L, const char *filename, const char *mode);

void
skynet_error(struct skynet_context *ctx, const char *fmt, ...) {
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(line)) {
		skynet_error_line(ctx, line, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (big == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	skynet_error_line(ctx, big, (size_t)n);
	free(big);
}

/* Upstream's lauxlib.h names the loader without its code cache luaL_loadfilex_; a
 * module built against that header calls it. Ours has no cache inside Lua, so it is
 * the stock loader. */
int
luaL_loadfilex_(struct lua_State *L, const char *filename, const char *mode) {
	return luaL_loadfilex(L, filename, mode);
}
