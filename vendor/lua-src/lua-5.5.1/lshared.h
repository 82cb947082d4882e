/*
** Prototypes shared read-only between states.
** See Copyright Notice in lua.h
*/

#ifndef lshared_h
#define lshared_h

#include "lua.h"
#include "lobject.h"
#include "lstate.h"

/*
** The shared short string equal to 'str' (length 'l', hash 'h'), if any,
** for a complete state with the sharing state's seed; else NULL.
*/
LUAI_FUNC TString *luaS_findshared (global_State *g, const char *str,
                                    size_t l, unsigned h);

/*
** Makes the prototype tree of the Lua function on the top of the stack
** shared and returns it. The function must come from 'lua_load' in 'L'. After the
** call the prototypes and their strings belong to no collector: they
** are never freed, and any state whose hash seed equals L's may run them
** through 'lua_pushsharedproto'. 'L' must not be used by other threads
** meanwhile; later loads into 'L' reuse the shared strings.
*/
LUA_API const void *(lua_shareproto) (lua_State *L);

/*
** Shares the string keys of the table on the top of the stack and of the
** tables it holds (a library table, or package.loaded). Same conditions
** as 'lua_shareproto'. States that later make one of these strings get
** the shared one instead of a copy of their own.
*/
LUA_API void (lua_sharekeys) (lua_State *L);

/*
** The seed of L's string hashes. Shared prototypes run only in states
** whose seed equals that of the state that shared them.
*/
LUA_API unsigned (lua_hashseed) (lua_State *L);

/*
** Pushes a new closure of the shared main-chunk prototype 'p', with its
** first upvalue set to the global table (as 'lua_load' does).
*/
LUA_API void (lua_pushsharedproto) (lua_State *L, const void *p);

#endif
