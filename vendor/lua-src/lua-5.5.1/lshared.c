/*
** Prototypes shared read-only between states.
** See Copyright Notice in lua.h
**
** A shared object is black with SHAREDBIT set and sits on no collector
** list (only the sharing state's fixed names stay on its 'fixedgc'), so no
** state's collector marks, sweeps or frees it: 'markobject'
** only follows white objects, and sweeping only walks a state's own
** lists. Nothing in a prototype changes after it is built, and long
** strings get their hash here, before other threads can see them, so
** shared objects are never written again and threads may read them
** freely.
**
** Short strings are equal only when they are the same object
** ('eqshrstr'), so a state must never hold two equal ones: its own copy
** and a shared string. Every shared short string goes into one
** process-wide set, and a state that misses in its own string table
** takes the shared string from the set instead of making a copy. The set
** is written under the sharing state's lock only and read by any thread
** without locks: slots are filled once, with release stores, and a full
** set is replaced (never freed) by a larger copy. A count of the strings
** ever added goes up after each addition.
**
** So a state has its own copy of a shared string only when it made that
** string before the string was added to the set, that is, when the
** string came after the state's 'sharedmark' (the count when the state
** was made). Shared strings reach a state only through prototypes and
** templates, and each of those records the count once its strings were
** in the set. When that count is past the state's mark, the state's
** string table is searched for copies of their strings: a prototype with
** one is given to the state as a private copy, whose strings are the
** state's, and a template's keys and values are replaced by the state's
** copies.
*/

#define lshared_c
#define LUA_CORE

#include "lprefix.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"

#include "lapi.h"
#include "ldebug.h"
#include "lfunc.h"
#include "lgc.h"
#include "lobject.h"
#include "lshared.h"
#include "lstate.h"
#include "lstring.h"
#include "ltable.h"
#include "ltm.h"


typedef struct SharedSet {
  size_t size;  /* 2^lgsize */
  int lgsize;
  size_t nuse;
  unsigned seed;  /* of every string in the set */
  _Atomic(TString *) slot[];
} SharedSet;

static _Atomic(SharedSet *) sharedset = NULL;

static _Atomic(size_t) sharedcount = 0;  /* strings ever added to the set */


/*
** Linear probing needs well-spread slots, but the low bits of a Lua string
** hash come mostly from the string's first bytes; Fibonacci hashing takes
** the high bits of the product instead.
*/
static size_t firstslot (const SharedSet *set, unsigned h) {
  return cast_sizet((h * 2654435769u) >> (32 - set->lgsize));
}


static SharedSet *newset (int lgsize, unsigned seed) {
  size_t size = cast_sizet(1) << lgsize;
  SharedSet *set = cast(SharedSet *, calloc(1, sizeof(SharedSet) +
                                            size * sizeof(TString *)));
  if (set == NULL)
    abort();  /* cannot happen quietly: VMs would then copy every string */
  set->size = size;
  set->lgsize = lgsize;
  set->seed = seed;
  return set;
}


static void setinsert (SharedSet *set, TString *ts) {
  size_t i = firstslot(set, ts->hash);
  while (atomic_load_explicit(&set->slot[i], memory_order_relaxed) != NULL)
    i = (i + 1) & (set->size - 1);
  atomic_store_explicit(&set->slot[i], ts, memory_order_release);
  set->nuse++;
}


/* only the thread holding the sharing state adds */
static void addtoset (TString *ts, unsigned seed) {
  SharedSet *set = atomic_load_explicit(&sharedset, memory_order_relaxed);
  if (set == NULL || 2 * (set->nuse + 1) > set->size) {
    SharedSet *bigger = newset(set ? set->lgsize + 1 : 10, seed);
    size_t i;
    for (i = 0; set != NULL && i < set->size; i++) {
      TString *old = atomic_load_explicit(&set->slot[i], memory_order_relaxed);
      if (old != NULL)
        setinsert(bigger, old);
    }
    /* the old set stays allocated: readers may still be probing it */
    atomic_store_explicit(&sharedset, bigger, memory_order_release);
    set = bigger;
  }
  setinsert(set, ts);
  atomic_store_explicit(&sharedcount, luaS_sharedcount() + 1,
                        memory_order_release);
}


size_t luaS_sharedcount (void) {
  return atomic_load_explicit(&sharedcount, memory_order_acquire);
}


TString *luaS_findshared (global_State *g, const char *str, size_t l,
                          unsigned h) {
  SharedSet *set = atomic_load_explicit(&sharedset, memory_order_acquire);
  size_t i;
  if (set == NULL || set->seed != g->seed)
    return NULL;
  for (i = firstslot(set, h); ; i = (i + 1) & (set->size - 1)) {
    TString *ts = atomic_load_explicit(&set->slot[i], memory_order_acquire);
    if (ts == NULL)
      return NULL;
    if (ts->hash == h && cast_sizet(ts->shrlen) == l &&
        memcmp(str, getshrstr(ts), l) == 0)
      return ts;
  }
}


static void setshared (GCObject *o) {
  o->marked = cast_byte((o->marked & ~WHITEBITS) |
                        bitmask(BLACKBIT) | bitmask(SHAREDBIT));
}


/*
** Shares 'ts' and returns the string to use in its place: a short string
** equal to one already in the set (made before that one was shared) is
** replaced by it, so the set never holds two equal strings.
*/
static TString *sharestring (global_State *g, TString *ts) {
  if (ts == NULL || isshared(ts))
    return ts;
  if (strisshr(ts)) {
    TString *other = luaS_findshared(g, getshrstr(ts), cast_sizet(ts->shrlen),
                                     ts->hash);
    if (other != NULL)
      return other;
    setshared(obj2gco(ts));
    addtoset(ts, g->seed);
  }
  else {
    setshared(obj2gco(ts));
    luaS_hashlongstr(ts);  /* computed now: shared objects stay unwritten */
  }
  return ts;
}


/* shares the string in 'v' in place */
static void sharesvalue (global_State *g, TValue *v) {
  val_(v).gc = obj2gco(sharestring(g, tsvalue(v)));
}


static void sharetree (global_State *g, Proto *p) {
  int i;
  if (isshared(p))
    return;
  setshared(obj2gco(p));
  p->source = sharestring(g, p->source);
  for (i = 0; i < p->sizek; i++) {
    if (ttisstring(&p->k[i]))
      sharesvalue(g, &p->k[i]);
  }
  for (i = 0; i < p->sizeupvalues; i++)
    p->upvalues[i].name = sharestring(g, p->upvalues[i].name);
  for (i = 0; i < p->sizelocvars; i++)
    p->locvars[i].varname = sharestring(g, p->locvars[i].varname);
  for (i = 0; i < p->sizep; i++)
    sharetree(g, p->p[i]);
}


/* the string keys of 't', and of the tables in it down to 'depth' levels */
static void sharekeys (global_State *g, Table *t, int depth) {
  unsigned i;
  for (i = 0; i < sizenode(t); i++) {
    Node *n = gnode(t, i);
    if (isempty(gval(n)))
      continue;
    if (keyisshrstr(n))
      gckey(n) = obj2gco(sharestring(g, keystrval(n)));
    if (depth > 0 && ttistable(gval(n)))
      sharekeys(g, hvalue(gval(n)), depth - 1);
  }
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
    if (isshared(o))
      *pp = o->next;
    else
      pp = &o->next;
  }
}


/*
** A full incremental collection ends at the pause, where 'unlinkshared'
** is safe; the objects about to be shared are anchored on the stack.
*/
static void collecttopause (lua_State *L) {
  luaC_changemode(L, KGC_INC);
  luaC_fullgc(L, 0);
}


/*
** L's own short string equal to the shared string 'ts', if any. (Only
** a sharing state holds shared strings in its own table.)
*/
static TString *owncopy (global_State *g, TString *ts) {
  TString *o;
  if (ts == NULL || !strisshr(ts))
    return NULL;  /* long strings are compared by contents */
  o = g->strt.hash[lmod(ts->hash, g->strt.size)];
  for (; o != NULL; o = o->u.hnext) {
    if (o != ts && o->hash == ts->hash && o->shrlen == ts->shrlen &&
        memcmp(getshrstr(o), getshrstr(ts), cast_sizet(ts->shrlen)) == 0)
      return o;
  }
  return NULL;
}


static int treehascopy (global_State *g, const Proto *p) {
  int i;
  if (owncopy(g, p->source))
    return 1;
  for (i = 0; i < p->sizek; i++) {
    if (ttisshrstring(&p->k[i]) && owncopy(g, tsvalue(&p->k[i])))
      return 1;
  }
  for (i = 0; i < p->sizeupvalues; i++) {
    if (owncopy(g, p->upvalues[i].name))
      return 1;
  }
  for (i = 0; i < p->sizelocvars; i++) {
    if (owncopy(g, p->locvars[i].varname))
      return 1;
  }
  for (i = 0; i < p->sizep; i++) {
    if (treehascopy(g, p->p[i]))
      return 1;
  }
  return 0;
}


/* a shared main prototype, as 'lua_shareproto' hands it out */
typedef struct SharedProto {
  Proto *p;
  size_t count;  /* 'sharedcount' once its strings were shared */
} SharedProto;


LUA_API const void *lua_shareproto (lua_State *L) {
  SharedProto *sp = cast(SharedProto *, malloc(sizeof(SharedProto)));
  if (sp == NULL)
    abort();  /* as 'newset' */
  lua_lock(L);
  collecttopause(L);
  sp->p = clLvalue(s2v(L->top.p - 1))->p;
  sharetree(G(L), sp->p);
  unlinkshared(G(L));
  sp->count = luaS_sharedcount();
  lua_unlock(L);
  return sp;
}


LUA_API void lua_sharekeys (lua_State *L) {
  lua_lock(L);
  collecttopause(L);
  sharekeys(G(L), hvalue(s2v(L->top.p - 1)), 1);
  unlinkshared(G(L));
  lua_unlock(L);
}


/*
** The fixed strings ('luaC_fix': reserved words, metamethod names, the
** memory-error message) are off 'allgc' already. Once they are shared, a
** new state takes them instead of making its own: 'luaC_fix' leaves shared
** objects alone, and a shared reserved word already carries its token.
*/
LUA_API void lua_sharefixed (lua_State *L) {
  GCObject *o;
  lua_lock(L);
  for (o = G(L)->fixedgc; o != NULL; o = o->next) {
    if (o->tt == LUA_VSHRSTR)
      sharestring(G(L), gco2ts(o));
  }
  lua_unlock(L);
}


LUA_API unsigned lua_hashseed (lua_State *L) {
  return G(L)->seed;
}


/*
** {======================================================
** Private copies: a closure of the shared prototype on the top of the
** stack is replaced by one of a copy dumped from it and loaded back, so
** that its strings are L's own where L has them. The dump is sized in a
** first pass and written into a userdata in a second, so an error
** leaves nothing behind.
** =======================================================
*/

typedef struct Block {
  char *b;
  size_t size;  /* bytes written, or to be read */
} Block;


static int countwriter (lua_State *L, const void *p, size_t sz, void *ud) {
  UNUSED(L); UNUSED(p);
  cast(Block *, ud)->size += sz;
  return 0;
}


static int copywriter (lua_State *L, const void *p, size_t sz, void *ud) {
  Block *blk = cast(Block *, ud);
  UNUSED(L);
  memcpy(blk->b + blk->size, p, sz);
  blk->size += sz;
  return 0;
}


static const char *blockreader (lua_State *L, void *ud, size_t *size) {
  Block *blk = cast(Block *, ud);
  const char *b = blk->b;
  UNUSED(L);
  *size = blk->size;
  blk->size = 0;  /* all of it at once */
  return b;
}


static void replacebycopy (lua_State *L) {
  Block blk = {NULL, 0};
  lua_dump(L, countwriter, &blk, 0);
  blk.b = cast_charp(lua_newuserdatauv(L, blk.size, 0));
  blk.size = 0;
  lua_pushvalue(L, -2);
  lua_dump(L, copywriter, &blk, 0);
  lua_pop(L, 1);
  if (lua_load(L, blockreader, &blk, "=?", "b") != LUA_OK)
    lua_error(L);  /* memory error */
  lua_replace(L, -3);  /* the copy in place of the shared closure */
  lua_pop(L, 1);  /* the dump */
}

/* }====================================================== */


LUA_API void lua_pushsharedproto (lua_State *L, const void *handle) {
  const SharedProto *sp = cast(const SharedProto *, handle);
  Proto *p = sp->p;
  LClosure *cl;
  int copy;
  lua_lock(L);
  cl = luaF_newLclosure(L, p->sizeupvalues);
  cl->p = p;  /* no barrier: 'p' is black and never collected */
  setclLvalue2s(L, L->top.p, cl);
  api_incr_top(L);
  luaF_initupvals(L, cl);
  luaC_checkGC(L);
  copy = (sp->count > G(L)->sharedmark && treehascopy(G(L), p));
  lua_unlock(L);
  if (copy)  /* L has copies of some of its strings? */
    replacebycopy(L);  /* then L must not see the shared ones */
  if (p->sizeupvalues >= 1) {  /* the global table as 1st upvalue, as 'lua_load' */
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_setupvalue(L, -2, 1);
  }
}


struct lua_Template {
  unsigned seed;  /* of the shared keys' hashes */
  size_t count;  /* 'sharedcount' once its strings were shared */
  lu_byte lsizenode;
  Node node[];
};


/* may any state hold this value as it is? */
static int portable (global_State *g, TValue *v) {
  if (!iscollectable(v))
    return 1;
  if (ttisshrstring(v)) {
    sharesvalue(g, v);
    return 1;
  }
  return 0;
}


static lua_Template *copylayout (global_State *g, Table *t) {
  unsigned i, size = sizenode(t);
  lua_Template *tp;
  if (t->asize != 0 || isdummy(t))
    return NULL;
  for (i = 0; i < size; i++) {
    Node *n = gnode(t, i);
    if (!keyisnil(n) && !keyisshrstr(n))
      return NULL;  /* dead or non-string key */
  }
  tp = cast(lua_Template *, malloc(sizeof(lua_Template) + size * sizeof(Node)));
  if (tp == NULL)
    return NULL;
  tp->seed = g->seed;
  tp->lsizenode = t->lsizenode;
  memcpy(tp->node, t->node, size * sizeof(Node));
  for (i = 0; i < size; i++) {
    Node *n = &tp->node[i];
    if (keyisnil(n))
      continue;
    gckey(n) = obj2gco(sharestring(g, keystrval(n)));
    if (!portable(g, gval(n)))
      setempty(gval(n));
  }
  tp->count = luaS_sharedcount();
  return tp;
}


LUA_API lua_Template *lua_maketemplate (lua_State *L) {
  lua_Template *tp;
  lua_lock(L);
  collecttopause(L);
  tp = copylayout(G(L), hvalue(s2v(L->top.p - 1)));
  unlinkshared(G(L));
  lua_unlock(L);
  return tp;
}


/* L's own copy of shared string 'ts', alive, or else 'ts' */
static TString *canonical (global_State *g, TString *ts) {
  TString *o = owncopy(g, ts);
  if (o == NULL)
    return ts;
  if (isdead(g, o))  /* dead (but not collected yet)? */
    changewhite(o);  /* resurrect it, as 'internshrstr' does */
  return o;
}


/*
** Puts L's own copies of strings in the new table 't' in place of the
** shared ones. A copy has the hash of the shared string, so nodes stay
** where they are.
*/
static void owncopies (lua_State *L, Table *t) {
  global_State *g = G(L);
  unsigned i;
  for (i = 0; i < sizenode(t); i++) {
    Node *n = gnode(t, i);
    if (keyisshrstr(n))
      gckey(n) = obj2gco(canonical(g, keystrval(n)));
    if (ttisshrstring(gval(n)))
      setsvalue(L, gval(n), canonical(g, tsvalue(gval(n))));
  }
}


/*
** Node links are relative offsets, so the copied nodes chain as in the
** template. 'lastfree' stays at the end of the new node array, where the
** search for a free node may always start.
*/
LUA_API int lua_pushtemplate (lua_State *L, const lua_Template *tp) {
  Table *t;
  if (G(L)->seed != tp->seed)
    return 0;
  lua_lock(L);
  t = luaH_new(L);
  sethvalue2s(L, L->top.p, t);
  api_incr_top(L);
  luaH_resize(L, t, 0, twoto(tp->lsizenode));
  memcpy(t->node, tp->node, sizenode(t) * sizeof(Node));
  if (tp->count > G(L)->sharedmark)  /* L may have copies of its strings? */
    owncopies(L, t);
  invalidateTMcache(t);  /* a metatable's fields are not known absent */
  luaC_checkGC(L);
  lua_unlock(L);
  return 1;
}



/*
** {======================================================
** Shared tables: a table tree built in a state of its own (a "matrix")
** and read in place by every state. 'lua_sharetable' checks the tree,
** then makes its tables, closures and strings shared: black with
** SHAREDBIT, so no other state's collector marks or frees them, and
** every write to them raises (ltable.c, lvm.c, lapi.c). Its short
** strings and prototypes leave the matrix for good (they are in the
** process-wide set, or shared prototypes, and never freed); its tables,
** closures and long strings stay on the matrix's 'allgc' list, so closing
** the matrix frees them. The matrix's collector is stopped: it must never
** sweep (that would whiten) what the other states read. Reads of a
** shared table write nothing: absent metamethods are cached in 'flags'
** and the length hint is set before the table is shared, and neither is
** updated afterwards.
** =======================================================
*/

struct lua_SharedTable {
  Table *t;
  unsigned seed;  /* of its strings' hashes */
  size_t count;  /* 'sharedcount' once its strings were shared */
  size_t nstrs;
  TString **strs;  /* its distinct short strings, for 'owncopy' checks */
};


/* a growable array of pointers (malloc'd: the walk may not raise) */
typedef struct PtrVec {
  void **p;
  size_t n, size;
} PtrVec;


static void vecpush (PtrVec *v, void *x) {
  if (v->n == v->size) {
    size_t size = v->size ? 2 * v->size : 64;
    void **p = cast(void **, realloc(v->p, size * sizeof(void *)));
    if (p == NULL)
      abort();  /* as 'newset' */
    v->p = p;
    v->size = size;
  }
  v->p[v->n++] = x;
}


/* the check's mark on a table: black, then white again once checked */
static void paint (global_State *g, Table *t, int black) {
  lu_byte color = black ? bitmask(BLACKBIT) : luaC_white(g);
  t->marked = cast_byte((t->marked & ~(bitmask(BLACKBIT) | WHITEBITS)) | color);
}


/*
** Checks one value of the tree; a table not seen yet is painted black
** and queued. Returns an error message, or NULL.
*/
static const char *checkvalue (global_State *g, PtrVec *queue,
                               const TValue *v) {
  switch (ttypetag(v)) {
    case LUA_VNIL: case LUA_VFALSE: case LUA_VTRUE:
    case LUA_VNUMINT: case LUA_VNUMFLT: case LUA_VLIGHTUSERDATA:
    case LUA_VLCF: case LUA_VSHRSTR: case LUA_VLNGSTR:
      return NULL;
    case LUA_VTABLE: {
      Table *t = hvalue(v);
      if (!isblack(t)) {
        paint(g, t, 1);
        vecpush(queue, t);
      }
      return NULL;
    }
    case LUA_VLCL:
      return clLvalue(v)->nupvalues > 0 ? "Invalid function with upvalue" : NULL;
    case LUA_VCCL:
      return "Invalid function with upvalue";
    default:
      return NULL;  /* the caller names the type */
  }
}


static int shareabletype (const TValue *v) {
  switch (ttype(v)) {
    case LUA_TNIL: case LUA_TBOOLEAN: case LUA_TNUMBER:
    case LUA_TLIGHTUSERDATA: case LUA_TSTRING: case LUA_TTABLE:
    case LUA_TFUNCTION:
      return 1;
    default:
      return 0;
  }
}


/*
** The first reason the tree under 't' cannot be shared, or NULL; or a
** type no state may share in '*badtype'. Leaves every table white.
*/
static const char *checktree (lua_State *L, Table *t, int *badtype) {
  global_State *g = G(L);
  PtrVec seen = {NULL, 0, 0};
  const char *err = NULL;
  size_t next = 0;
  paint(g, t, 1);
  vecpush(&seen, t);
  for (; err == NULL && *badtype < 0 && next < seen.n; next++) {
    unsigned i;
    t = cast(Table *, seen.p[next]);
    if (t->metatable != NULL) {
      err = "Can't share metatable";
      break;
    }
    for (i = 0; err == NULL && *badtype < 0 && i < t->asize; i++) {
      TValue v;
      arr2obj(t, i, &v);
      if (!shareabletype(&v))
        *badtype = ttype(&v);
      else
        err = checkvalue(g, &seen, &v);
    }
    for (i = 0; err == NULL && *badtype < 0 && i < sizenode(t); i++) {
      Node *n = gnode(t, i);
      TValue k;
      if (isempty(gval(n)))
        continue;
      getnodekey(L, &k, n);
      if (!shareabletype(&k))
        *badtype = ttype(&k);
      else if (!shareabletype(gval(n)))
        *badtype = ttype(gval(n));
      else if ((err = checkvalue(g, &seen, &k)) == NULL)
        err = checkvalue(g, &seen, gval(n));
    }
  }
  for (next = 0; next < seen.n; next++)
    paint(g, cast(Table *, seen.p[next]), 0);
  free(seen.p);
  return err;
}


/* shares one value in place; tables are queued, short strings listed */
static void sharevalue (global_State *g, PtrVec *queue, PtrVec *strs,
                        TValue *v) {
  if (ttisstring(v)) {
    sharesvalue(g, v);
    if (ttisshrstring(v))
      vecpush(strs, tsvalue(v));
  }
  else if (ttistable(v)) {
    if (!isshared(hvalue(v)))
      vecpush(queue, hvalue(v));
  }
  else if (ttisLclosure(v)) {
    LClosure *cl = clLvalue(v);
    if (!isshared(cl)) {
      setshared(obj2gco(cl));
      sharetree(g, cl->p);
    }
  }
}


static void sharetable (lua_State *L, Table *t, PtrVec *queue,
                        PtrVec *strs) {
  global_State *g = G(L);
  unsigned i;
  int e;
  for (i = 0; i < t->asize; i++) {
    TValue v;
    arr2obj(t, i, &v);
    sharevalue(g, queue, strs, &v);
    obj2arr(t, i, &v);
  }
  for (i = 0; i < sizenode(t); i++) {
    Node *n = gnode(t, i);
    TValue k;
    if (isempty(gval(n)))
      continue;
    getnodekey(L, &k, n);
    sharevalue(g, queue, strs, &k);  /* an equal key has the same hash */
    setnodekey(n, &k);
    sharevalue(g, queue, strs, gval(n));
  }
  luaH_getn(L, t);  /* sets the length hint */
  for (e = 0; e <= TM_EQ; e++)  /* caches the absent metamethods */
    luaT_gettm(t, cast(TMS, e), g->tmname[e]);
  setshared(obj2gco(t));
}


/*
** Takes the shared short strings and prototypes off the state's lists
** (and the strings out of its string table), and out of its count of
** memory in use: the state may be closed, they must live on.
*/
static void unlinkforever (lua_State *L, GCObject **pp) {
  global_State *g = G(L);
  while (*pp != NULL) {
    GCObject *o = *pp;
    if (isshared(o) && o->tt == LUA_VSHRSTR) {
      *pp = o->next;
      luaS_remove(L, gco2ts(o));
      g->GCdebt += cast(l_mem, sizestrshr(cast_uint(gco2ts(o)->shrlen)));
    }
    else if (isshared(o) && o->tt == LUA_VPROTO) {
      *pp = o->next;
      g->GCdebt += cast(l_mem, luaF_protosize(gco2p(o)));
    }
    else
      pp = &o->next;
  }
}


static int cmpptr (const void *a, const void *b) {
  uintptr_t x = cast(uintptr_t, *cast(void *const *, a));
  uintptr_t y = cast(uintptr_t, *cast(void *const *, b));
  return (x > y) - (x < y);
}


/* sorts the listed strings and drops repeats */
static void distinct (PtrVec *strs) {
  size_t i, n = 0;
  if (strs->n == 0)
    return;
  qsort(strs->p, strs->n, sizeof(void *), cmpptr);
  for (i = 1; i < strs->n; i++) {
    if (strs->p[i] != strs->p[n])
      strs->p[++n] = strs->p[i];
  }
  strs->n = n + 1;
}


LUA_API void lua_checkshare (lua_State *L) {
  const char *err;
  int badtype = -1;
  lua_lock(L);
  api_check(L, ttistable(s2v(L->top.p - 1)), "table expected");
  collecttopause(L);  /* every object white, no sweep under way */
  err = checktree(L, hvalue(s2v(L->top.p - 1)), &badtype);
  if (err != NULL)
    luaG_runerror(L, "%s", err);
  if (badtype >= 0)
    luaG_runerror(L, "Invalid type [%s]", ttypename(badtype));
  lua_unlock(L);
}


LUA_API lua_SharedTable *lua_sharetable (lua_State *L) {
  global_State *g = G(L);
  Table *root;
  PtrVec queue = {NULL, 0, 0}, strs = {NULL, 0, 0};
  lua_SharedTable *st;
  lua_lock(L);
  root = hvalue(s2v(L->top.p - 1));
  collecttopause(L);  /* every object white, no sweep under way */
  st = cast(lua_SharedTable *, malloc(sizeof(lua_SharedTable)));
  if (st == NULL)
    abort();  /* as 'newset' */
  vecpush(&queue, root);
  while (queue.n > 0) {
    Table *t = cast(Table *, queue.p[--queue.n]);
    if (!isshared(t))
      sharetable(L, t, &queue, &strs);
  }
  free(queue.p);
  unlinkforever(L, &g->allgc);
  unlinkforever(L, &g->fixedgc);
  g->gcstp = GCSTPUSR;  /* never to run again */
  distinct(&strs);
  st->t = root;
  st->seed = g->seed;
  st->count = luaS_sharedcount();
  st->nstrs = strs.n;
  st->strs = cast(TString **, strs.p);
  lua_unlock(L);
  return st;
}


LUA_API int lua_pushsharedtable (lua_State *L, const lua_SharedTable *st) {
  global_State *g = G(L);
  int own = (g->seed != st->seed);
  size_t i;
  lua_lock(L);
  sethvalue2s(L, L->top.p, st->t);  /* no barrier: 't' is never white */
  api_incr_top(L);
  if (st->count > g->sharedmark) {  /* L may have copies of its strings? */
    for (i = 0; !own && i < st->nstrs; i++)
      own = (owncopy(g, st->strs[i]) != NULL);
  }
  lua_unlock(L);
  return !own;
}


LUA_API void lua_freesharedtable (lua_SharedTable *st) {
  free(st->strs);
  free(st);
}


LUA_API int lua_issharedtable (lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE)
    return 0;
  return isshared(cast(const Table *, lua_topointer(L, idx)));
}

/* }====================================================== */
