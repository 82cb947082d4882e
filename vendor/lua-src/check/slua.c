/*
** A stand-alone Lua for run-testes.sh, built on the patched sources.
** Usage: slua [-e chunk]... [script [args]]
**
** It runs its chunks as a VM of the runtime does: the state is made
** after a second, sharing state shared its reserved words, metamethod
** names and library names (lshared.h), and 'loadfile(name)' and
** 'dofile(name)' compile the file in the sharing state and run a closure
** of the shared prototype. Other calls of those two (with a mode, an
** environment, or no file name) are the stock functions. The sharing
** state is never closed: shared objects are never freed.
**
** 'sharetable(code)' runs 'code' in a state of its own (a matrix) and
** returns the table it returned, shared (lua_sharetable), and whether
** the state may use it as it is; 'closeshared()' closes every matrix.
*/

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"

#include "lauxlib.h"
#include "lualib.h"
#include "lshared.h"


static const char *progname = "slua";

static lua_State *sharer;  /* compiles and shares every file loaded */

static int warnson = 0;  /* warnings start off, as in stock 'lua' */
static int warncont = 0;  /* previous warning is to be continued */


static void warnf (void *ud, const char *msg, int tocont) {
  (void)ud;
  if (!warncont && msg[0] == '@') {  /* control message? */
    if (strcmp(msg, "@on") == 0)
      warnson = 1;
    else if (strcmp(msg, "@off") == 0)
      warnson = 0;
    return;
  }
  if (warnson) {
    if (!warncont)
      fputs("Lua warning: ", stderr);
    fputs(msg, stderr);
    if (!tocont)
      fputs("\n", stderr);
    fflush(stderr);
  }
  warncont = tocont;
}


static int panic (lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  fprintf(stderr, "%s: unprotected error: %s\n", progname,
                  msg ? msg : "(not a string)");
  return 0;  /* Lua aborts */
}


/*
** Loads file 'name' into L as a closure of a prototype compiled and
** shared by 'sharer'.
*/
static int loadshared (lua_State *L, const char *name) {
  const void *p;
  int status = luaL_loadfilex(sharer, name, NULL);
  if (status != LUA_OK) {
    lua_pushstring(L, lua_tostring(sharer, -1));
    lua_settop(sharer, 0);
    return status;
  }
  p = lua_shareproto(sharer);
  lua_settop(sharer, 0);
  lua_pushsharedproto(L, p);
  return LUA_OK;
}


static int onefilename (lua_State *L) {
  return lua_gettop(L) == 1 && lua_type(L, 1) == LUA_TSTRING;
}


static int allresults (lua_State *L, int status, lua_KContext base) {
  (void)status;
  return lua_gettop(L) - (int)base;
}


/* calls the stock function (upvalue 1) with the same arguments */
static int stock (lua_State *L) {
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_callk(L, n, LUA_MULTRET, 0, allresults);
  return allresults(L, LUA_OK, 0);
}


static int sharedloadfile (lua_State *L) {
  int status;
  if (!onefilename(L))
    return stock(L);
  status = loadshared(L, lua_tostring(L, 1));
  if (status == LUA_OK)
    return 1;
  luaL_pushfail(L);
  lua_insert(L, -2);
  return 2;  /* nil plus error message */
}


static int shareddofile (lua_State *L) {
  if (!onefilename(L))
    return stock(L);
  if (loadshared(L, lua_tostring(L, 1)) != LUA_OK)
    return lua_error(L);
  lua_callk(L, 0, LUA_MULTRET, 1, allresults);
  return allresults(L, LUA_OK, 1);
}


#define MAXMATRICES	16

static lua_State *matrices[MAXMATRICES];
static lua_SharedTable *tables[MAXMATRICES];
static int nmatrices = 0;


static int checkshare (lua_State *M) {
  lua_checkshare(M);
  return 1;
}


static int sharetable (lua_State *L) {
  const char *code = luaL_checkstring(L, 1);
  lua_State *M;
  luaL_argcheck(L, nmatrices < MAXMATRICES, 1, "too many matrices");
  M = lua_newstate(luaL_alloc, NULL, lua_hashseed(sharer));
  luaL_openlibs(M);
  lua_pushcfunction(M, checkshare);
  if (luaL_loadstring(M, code) != LUA_OK ||
      lua_pcall(M, 0, 1, 0) != LUA_OK ||
      lua_pcall(M, 1, 1, 0) != LUA_OK) {
    lua_pushstring(L, lua_tostring(M, -1));
    lua_close(M);
    return lua_error(L);
  }
  matrices[nmatrices] = M;
  tables[nmatrices] = lua_sharetable(M);  /* one thread: no lock needed */
  lua_pushboolean(L, lua_pushsharedtable(L, tables[nmatrices++]));
  return 2;
}


static int closeshared (lua_State *L) {
  (void)L;
  while (nmatrices > 0) {
    nmatrices--;
    lua_close(matrices[nmatrices]);
    lua_freesharedtable(tables[nmatrices]);
  }
  return 0;
}


static int issharedtable (lua_State *L) {
  lua_pushboolean(L, lua_issharedtable(L, 1));
  return 1;
}


static void replace (lua_State *L, const char *name, lua_CFunction f) {
  lua_getglobal(L, name);
  lua_pushcclosure(L, f, 1);
  lua_setglobal(L, name);
}


static int msghandler (lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL)
    msg = lua_pushfstring(L, "(error object is a %s value)",
                             luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}


static int report (lua_State *L, int status) {
  if (status != LUA_OK) {
    fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}


static int docall (lua_State *L, int nargs) {
  int base = lua_gettop(L) - nargs;
  int status;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  status = lua_pcall(L, nargs, 0, base);
  lua_remove(L, base);
  return status;
}


/* 'arg': the script at 0, its arguments after, this program before */
static void setargs (lua_State *L, char **argv, int argc, int script) {
  int i;
  lua_createtable(L, argc - script - 1, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}


static int runscript (lua_State *L, char **argv, int argc, int script) {
  int i, status = loadshared(L, argv[script]);
  if (status != LUA_OK)
    return status;
  for (i = script + 1; i < argc; i++)
    lua_pushstring(L, argv[i]);
  return docall(L, argc - script - 1);
}


/* runs the '-e' chunks ('-e chunk' or '-echunk'), then the script */
static int run (lua_State *L, char **argv, int argc) {
  int i = 1;
  for (; i < argc && strncmp(argv[i], "-e", 2) == 0; i++) {
    const char *chunk = (argv[i][2] != '\0') ? argv[i] + 2 : argv[++i];
    int status;
    if (chunk == NULL) {
      lua_pushliteral(L, "'-e' needs an argument");
      return LUA_ERRRUN;
    }
    status = luaL_loadbufferx(L, chunk, strlen(chunk), "=(command line)",
                                 "t");
    if (status != LUA_OK || (status = docall(L, 0)) != LUA_OK)
      return status;
  }
  setargs(L, argv, argc, i < argc ? i : argc - 1);
  if (i < argc)
    return runscript(L, argv, argc, i);
  return LUA_OK;
}


static lua_State *newsharer (void) {
  lua_State *S = luaL_newstate();
  if (S == NULL)
    return NULL;
  luaL_openlibs(S);
  luaL_getsubtable(S, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_sharekeys(S);  /* the library names */
  lua_settop(S, 0);
  lua_sharefixed(S);  /* reserved words, metamethod names */
  /* it has parsed before the VM comes, as the runtime's sharing state */
  if (luaL_loadstring(S, "local global = 1 return global") != LUA_OK)
    return NULL;
  lua_settop(S, 0);
  return S;
}


int main (int argc, char **argv) {
  lua_State *L;
  int status;
  sharer = newsharer();
  if (sharer == NULL) {
    fprintf(stderr, "%s: cannot make the sharing state\n", progname);
    return EXIT_FAILURE;
  }
  L = lua_newstate(luaL_alloc, NULL, lua_hashseed(sharer));
  if (L == NULL) {
    fprintf(stderr, "%s: cannot make the state\n", progname);
    return EXIT_FAILURE;
  }
  lua_atpanic(L, panic);
  lua_setwarnf(L, warnf, NULL);
  luaL_openlibs(L);
  replace(L, "loadfile", sharedloadfile);
  replace(L, "dofile", shareddofile);
  lua_register(L, "sharetable", sharetable);
  lua_register(L, "closeshared", closeshared);
  lua_register(L, "issharedtable", issharedtable);
  lua_gc(L, LUA_GCGEN);  /* the stock interpreter's mode */
  status = report(L, run(L, argv, argc));
  lua_close(L);
  return (status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
