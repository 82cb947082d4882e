/*
** The sharing protocol under ThreadSanitizer, for run-testes.sh: threads
** make states, parse (which once wrote the shared name "global"), and
** run shared prototypes, while a sharing state, under a lock, shares
** new ones (so the set of shared strings grows under readers). Some of
** the new prototypes hold a string the thread's state made first, so
** they run as private copies. Every state also reads one shared table
** (lua_sharetable) at the same time: lengths, lookups, traversals and
** its use as a metatable write nothing to it.
*/

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"

#include "lauxlib.h"
#include "lualib.h"
#include "lshared.h"


#define NTHREADS	4
#define ROUNDS		20

static lua_State *sharer;
static pthread_mutex_t sharerlock = PTHREAD_MUTEX_INITIALIZER;
static const void *common;  /* a prototype every thread runs */
static lua_SharedTable *config;  /* a table every thread reads */

static const char *const configcode =
  "local t = { list = {} } for i = 1, 100 do t.list[i] = 'item' .. i end "
  "t.__index = { hp = 10 } return t";

static const char *const readcode =
  "local t = ... local n = 0 for k, v in pairs(t.list) do n = n + #v end "
  "local p = setmetatable({}, t) "
  "return #t.list + p.hp + n + (p.missing and 1 or 0)";

static const char *const commoncode =
  "local t = {} for i = 1, 200 do t['k' .. i] = i end "
  "do global x; x = 1 end local global = 2 "
  "return t.k1 + global + x";


static void check (lua_State *L, int ok) {
  if (!ok) {
    fprintf(stderr, "threads: %s\n", lua_tostring(L, -1));
    abort();
  }
}


static const void *share (const char *code) {
  const void *p;
  pthread_mutex_lock(&sharerlock);
  check(sharer, luaL_loadstring(sharer, code) == LUA_OK);
  p = lua_shareproto(sharer);
  lua_settop(sharer, 0);
  pthread_mutex_unlock(&sharerlock);
  return p;
}


/* one state: its own string, then a shared prototype returning it */
static void oneround (int t, int r) {
  lua_State *L = lua_newstate(luaL_alloc, NULL, lua_hashseed(sharer));
  char name[32], code[64];
  const char *own;
  luaL_openlibs(L);
  snprintf(name, sizeof(name), "late_%d_%d", t, r);
  own = lua_pushstring(L, name);  /* made before it is shared */
  snprintf(code, sizeof(code), "return '%s'", name);
  lua_pushsharedproto(L, share(code));
  lua_call(L, 0, 1);
  check(L, lua_tostring(L, -1) == own);  /* the state's own object */
  lua_pushsharedproto(L, common);
  lua_call(L, 0, 1);
  check(L, lua_tointeger(L, -1) == 4);
  check(L, luaL_dostring(L, commoncode) == LUA_OK);
  check(L, luaL_loadstring(L, readcode) == LUA_OK);
  lua_pushsharedtable(L, config);
  lua_call(L, 1, 1);
  check(L, lua_tointeger(L, -1) == 100 + 10 + 9 * 5 + 90 * 6 + 7);
  lua_close(L);
}


static int checkshare (lua_State *M) {
  lua_checkshare(M);
  return 1;
}


/* the shared table, made in a state of its own (never closed here) */
static lua_SharedTable *shareconfig (void) {
  lua_State *M = lua_newstate(luaL_alloc, NULL, lua_hashseed(sharer));
  lua_SharedTable *st;
  luaL_openlibs(M);
  lua_pushcfunction(M, checkshare);
  check(M, luaL_loadstring(M, configcode) == LUA_OK);
  lua_call(M, 0, 1);
  lua_call(M, 1, 1);
  pthread_mutex_lock(&sharerlock);
  st = lua_sharetable(M);
  pthread_mutex_unlock(&sharerlock);
  return st;
}


static void *worker (void *arg) {
  int t = *(int *)arg, r;
  for (r = 0; r < ROUNDS; r++)
    oneround(t, r);
  return NULL;
}


int main (void) {
  pthread_t th[NTHREADS];
  int id[NTHREADS], i;
  sharer = luaL_newstate();
  luaL_openlibs(sharer);
  luaL_getsubtable(sharer, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_sharekeys(sharer);
  lua_settop(sharer, 0);
  lua_sharefixed(sharer);
  common = share(commoncode);
  config = shareconfig();
  for (i = 0; i < NTHREADS; i++) {
    id[i] = i;
    pthread_create(&th[i], NULL, worker, &id[i]);
  }
  for (i = 0; i < NTHREADS; i++)
    pthread_join(th[i], NULL);
  printf("threads: %d states in %d threads OK\n", NTHREADS * ROUNDS, NTHREADS);
  return 0;
}
