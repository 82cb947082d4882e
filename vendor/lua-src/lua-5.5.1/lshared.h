/*
** Prototypes shared read-only between states.
** See Copyright Notice in lua.h
*/

#ifndef lshared_h
#define lshared_h

#include "lua.h"

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
