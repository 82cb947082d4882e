/*
** Prototypes shared read-only between states.
** See Copyright Notice in lua.h
**
** A shared object is black with SHAREDBIT set and sits on no collector
** list, so no state's collector marks, sweeps or frees it: 'markobject'
** only follows white objects, and sweeping only walks a state's own
** lists. Nothing in a prototype changes after it is built, and long
** strings get their hash here, before other threads can see them, so
** shared objects are never written again and threads may read them
** freely. Short strings stay interned per state; 'eqshrstr' compares
** contents when one side is shared.
*/

#define lshared_c
#define LUA_CORE

#include "lprefix.h"

#include "lua.h"

#include "lapi.h"
#include "lfunc.h"
#include "lgc.h"
#include "lobject.h"
#include "lshared.h"
#include "lstate.h"
#include "lstring.h"
#include "ltable.h"


static void setshared (GCObject *o) {
  o->marked = cast_byte((o->marked & ~WHITEBITS) |
                        bitmask(BLACKBIT) | bitmask(SHAREDBIT));
}


static void sharestring (TString *ts) {
  if (ts == NULL || testbit(ts->marked, SHAREDBIT))
    return;
  if (!strisshr(ts))
    luaS_hashlongstr(ts);  /* computed now: shared objects stay unwritten */
  setshared(obj2gco(ts));
}


static void sharetree (Proto *p) {
  int i;
  if (testbit(p->marked, SHAREDBIT))
    return;
  setshared(obj2gco(p));
  sharestring(p->source);
  for (i = 0; i < p->sizek; i++) {
    if (ttisstring(&p->k[i]))
      sharestring(tsvalue(&p->k[i]));
  }
  for (i = 0; i < p->sizeupvalues; i++)
    sharestring(p->upvalues[i].name);
  for (i = 0; i < p->sizelocvars; i++)
    sharestring(p->locvars[i].varname);
  for (i = 0; i < p->sizep; i++)
    sharetree(p->p[i]);
}


/*
** Takes every shared object off the 'allgc' list. Called at the pause
** that ends a full collection, so no sweep pointer or generational list
** points into 'allgc'.
*/
static void unlinkshared (global_State *g) {
  GCObject **pp = &g->allgc;
  while (*pp != NULL) {
    GCObject *o = *pp;
    if (testbit(o->marked, SHAREDBIT))
      *pp = o->next;
    else
      pp = &o->next;
  }
}


LUA_API const void *lua_shareproto (lua_State *L) {
  Proto *p;
  lua_lock(L);
  luaC_changemode(L, KGC_INC);
  luaC_fullgc(L, 0);  /* ends at the pause; the stack keeps the function */
  p = clLvalue(s2v(L->top.p - 1))->p;
  sharetree(p);
  unlinkshared(G(L));
  lua_unlock(L);
  return p;
}


LUA_API unsigned lua_hashseed (lua_State *L) {
  return G(L)->seed;
}


LUA_API void lua_pushsharedproto (lua_State *L, const void *sp) {
  Proto *p = cast(Proto *, sp);
  LClosure *cl;
  lua_lock(L);
  cl = luaF_newLclosure(L, p->sizeupvalues);
  cl->p = p;  /* no barrier: 'p' is black and never collected */
  setclLvalue2s(L, L->top.p, cl);
  api_incr_top(L);
  luaF_initupvals(L, cl);
  if (cl->nupvalues >= 1) {
    TValue gt;
    luaH_getint(hvalue(&G(L)->l_registry), LUA_RIDX_GLOBALS, &gt);
    setobj(L, cl->upvals[0]->v.p, &gt);
    luaC_barrier(L, cl->upvals[0], &gt);
  }
  luaC_checkGC(L);
  lua_unlock(L);
}
