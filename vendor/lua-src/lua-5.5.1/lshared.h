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
** How many short strings were ever shared; a state keeps the count from
** its birth in 'sharedmark'.
*/
LUAI_FUNC size_t luaS_sharedcount (void);

/*
** Makes the prototype tree of the Lua function on the top of the stack
** shared and returns a handle to it. The function must come from 'lua_load' in 'L'. After the
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
** Shares L's fixed names (reserved words, metamethod names): states made
** later with L's seed use these instead of making their own. Same
** conditions as 'lua_shareproto'.
*/
LUA_API void (lua_sharefixed) (lua_State *L);

/*
** The seed of L's string hashes. Shared prototypes run only in states
** whose seed equals that of the state that shared them.
*/
LUA_API unsigned (lua_hashseed) (lua_State *L);

/*
** Pushes a new closure of the shared main-chunk prototype 'p', with its
** first upvalue set to the global table (as 'lua_load' does). When L
** holds a string of its own equal to one of the prototype's (made before
** that string was shared), L must not see both objects: the closure is
** then of a private copy of the prototype, made with L's strings.
*/
LUA_API void (lua_pushsharedproto) (lua_State *L, const void *p);

/*
** A table layout copied out of one state, to be laid down in others: a
** library table comes out of 'lua_pushtemplate' ready, without looking up
** or inserting its names one by one.
*/
typedef struct lua_Template lua_Template;

/*
** Makes a template of the table on the top of the stack (same conditions
** as 'lua_shareproto'). Its string keys and short-string values become
** shared. Values no other state may hold (tables, closures, userdata,
** long strings) are left out: their keys stay in the layout with empty
** values, so a state that sets them later reuses the slot without
** rehashing. Returns NULL when the table has an array part or a key that
** is not a string.
*/
LUA_API lua_Template *(lua_maketemplate) (lua_State *L);

/*
** Pushes a new table laid out as 'tp', holding its values. Returns 0 and
** pushes nothing when L's hash seed differs from the template's. Where L
** holds its own copy of one of the template's strings, the table holds
** that copy.
*/
LUA_API int (lua_pushtemplate) (lua_State *L, const lua_Template *tp);

/*
** A table tree shared by every state (see lshared.c): made in a state of
** its own, which must outlive every use and is then closed.
*/
typedef struct lua_SharedTable lua_SharedTable;

/*
** Checks that the table on the top of the stack may be shared: raises
** "Can't share metatable", "Invalid function with upvalue" or "Invalid
** type [<type>]" when its tree holds what no other state may read.
*/
LUA_API void (lua_checkshare) (lua_State *L);

/*
** Makes the table on the top of the stack, checked by 'lua_checkshare'
** with nothing run since, and everything in it, shared and read-only
** (never raises). Same conditions as 'lua_shareproto'. Afterwards L's
** collector is stopped and L must run nothing more; closing L frees the
** tables (and the handle must then be freed).
*/
LUA_API lua_SharedTable *(lua_sharetable) (lua_State *L);

/*
** Pushes the shared table. Returns 0 when L must not use it as it is (L
** has its own copies of some of its strings, or another hash seed): L
** then makes a copy of its own from it.
*/
LUA_API int (lua_pushsharedtable) (lua_State *L, const lua_SharedTable *st);

/* Frees the handle, once its state is closed. */
LUA_API void (lua_freesharedtable) (lua_SharedTable *st);

/* Whether the value at 'idx' is a shared table. */
LUA_API int (lua_issharedtable) (lua_State *L, int idx);

#endif
