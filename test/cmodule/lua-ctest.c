/*
 * ctest: a Lua C module built against include/ by runtime/tests/cmodule.rs and used by
 * test/test_cmodule.lua through lua_cpath. It exercises the parts of the Lua ABI that
 * a module compiles in (luaL_Buffer, userdata with __gc, upvalues, threads, the extra
 * space) and the payload allocator shared with the core.
 */
#define LUA_LIB
#include "lua.h"
#include "lauxlib.h"
#include "skynet.h"

#include <string.h>

static int collected = 0;

/* concat(s, n): s repeated n times, built in a luaL_Buffer that outgrows its box. */
static int
lconcat(lua_State *L) {
	size_t sz;
	const char *s = luaL_checklstring(L, 1, &sz);
	lua_Integer n = luaL_checkinteger(L, 2);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	lua_Integer i;
	for (i = 0; i < n; i++)
		luaL_addlstring(&b, s, sz);
	luaL_pushresult(&b);
	return 1;
}

struct box {
	lua_Integer value;
};

static int
box_gc(lua_State *L) {
	luaL_checkudata(L, 1, "ctest.box");
	++collected;
	return 0;
}

static int
box_get(lua_State *L) {
	struct box *b = luaL_checkudata(L, 1, "ctest.box");
	lua_pushinteger(L, b->value);
	return 1;
}

/* box(v): a userdata holding v; collecting it counts in collected(). */
static int
lbox(lua_State *L) {
	struct box *b = lua_newuserdatauv(L, sizeof(*b), 0);
	b->value = luaL_checkinteger(L, 1);
	luaL_setmetatable(L, "ctest.box");
	return 1;
}

static int
lcollected(lua_State *L) {
	lua_pushinteger(L, collected);
	return 1;
}

static int
counter_next(lua_State *L) {
	lua_Integer n = lua_tointeger(L, lua_upvalueindex(1)) + lua_tointeger(L, lua_upvalueindex(2));
	lua_pushinteger(L, n);
	lua_copy(L, -1, lua_upvalueindex(1));
	return 1;
}

/* counter(start, step): a closure counting in its upvalues. */
static int
lcounter(lua_State *L) {
	lua_settop(L, 2);
	lua_pushcclosure(L, counter_next, 2);
	return 1;
}

/* resume(f, ...): runs f in a new thread with lua_resume until it ends, collecting
 * every yielded value; returns a table of them, then f's results. */
static int
lresume(lua_State *L) {
	luaL_checktype(L, 1, LUA_TFUNCTION);
	int nargs = lua_gettop(L) - 1;
	lua_State *co = lua_newthread(L);
	lua_insert(L, 1);
	lua_xmove(L, co, nargs + 1);
	lua_newtable(L);
	int yields = 0;
	int nres;
	int status;
	int narg = nargs;
	while ((status = lua_resume(co, L, narg, &nres)) == LUA_YIELD) {
		int i;
		for (i = 1; i <= nres; i++) {
			lua_pushvalue(co, -nres + i - 1);
			lua_xmove(co, L, 1);
			lua_rawseti(L, -2, ++yields);
		}
		lua_pop(co, nres);
		lua_pushinteger(co, yields);
		narg = 1;
	}
	if (status != LUA_OK) {
		lua_xmove(co, L, 1);
		return lua_error(L);
	}
	luaL_checkstack(L, nres, "too many results");
	lua_xmove(co, L, nres);
	return nres + 1;
}

/* extraspace(): what a new thread sees of the pointer stored in the main thread's. */
static int
lextraspace(lua_State *L) {
	static int marker;
	lua_State *main;
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	main = lua_tothread(L, -1);
	void *saved = *(void **)lua_getextraspace(main);
	*(void **)lua_getextraspace(main) = &marker;
	lua_State *co = lua_newthread(L);
	int same = *(void **)lua_getextraspace(co) == &marker;
	*(void **)lua_getextraspace(main) = saved;
	lua_pushboolean(L, same);
	lua_pushinteger(L, LUA_EXTRASPACE);
	return 2;
}

/* malloc(s): a skynet_malloc copy of s, as a pointer and its size. */
static int
lmalloc(lua_State *L) {
	size_t sz;
	const char *s = luaL_checklstring(L, 1, &sz);
	char *p = skynet_malloc(sz);
	memcpy(p, s, sz);
	lua_pushlightuserdata(L, p);
	lua_pushinteger(L, (lua_Integer)sz);
	return 2;
}

/* free(p): skynet_free of a payload made elsewhere (skynet.pack). */
static int
lfree(lua_State *L) {
	luaL_checktype(L, 1, LUA_TLIGHTUSERDATA);
	skynet_free(lua_touserdata(L, 1));
	return 0;
}

/* handle(): skynet_current_handle, called from Lua. */
static int
lhandle(lua_State *L) {
	lua_pushinteger(L, skynet_current_handle());
	return 1;
}

/* command(cmd [, param]): skynet_command on the service's context, which a Lua C
 * module finds in the registry as upstream's own modules do. */
static int
lcommand(lua_State *L) {
	const char *cmd = luaL_checkstring(L, 1);
	const char *param = luaL_optstring(L, 2, NULL);
	lua_getfield(L, LUA_REGISTRYINDEX, "skynet_context");
	struct skynet_context *ctx = lua_touserdata(L, -1);
	if (ctx == NULL)
		return luaL_error(L, "no skynet_context");
	const char *result = skynet_command(ctx, cmd, param);
	if (result == NULL)
		return 0;
	lua_pushstring(L, result);
	return 1;
}

/* abi(): the sizes and limits a module compiles in, to compare with the host's. */
static int
labi(lua_State *L) {
	lua_newtable(L);
	lua_pushinteger(L, sizeof(lua_Integer));
	lua_setfield(L, -2, "integer");
	lua_pushinteger(L, sizeof(lua_Number));
	lua_setfield(L, -2, "number");
	lua_pushinteger(L, LUAL_BUFFERSIZE);
	lua_setfield(L, -2, "buffersize");
	lua_pushinteger(L, LUA_IDSIZE);
	lua_setfield(L, -2, "idsize");
	lua_pushinteger(L, LUA_REGISTRYINDEX);
	lua_setfield(L, -2, "registryindex");
	lua_pushinteger(L, (lua_Integer)lua_version(L));
	lua_setfield(L, -2, "version");
	return 1;
}

LUAMOD_API int
luaopen_ctest(lua_State *L) {
	luaL_checkversion(L);
	luaL_Reg box_methods[] = {
		{ "get", box_get },
		{ NULL, NULL },
	};
	if (luaL_newmetatable(L, "ctest.box")) {
		lua_pushcfunction(L, box_gc);
		lua_setfield(L, -2, "__gc");
		luaL_newlib(L, box_methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	luaL_Reg l[] = {
		{ "concat", lconcat },
		{ "box", lbox },
		{ "collected", lcollected },
		{ "counter", lcounter },
		{ "resume", lresume },
		{ "extraspace", lextraspace },
		{ "malloc", lmalloc },
		{ "free", lfree },
		{ "handle", lhandle },
		{ "command", lcommand },
		{ "abi", labi },
		{ NULL, NULL },
	};
	luaL_newlib(L, l);
	return 1;
}
