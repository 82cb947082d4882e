//! `skynet.sharedata.core`: an immutable copy of a Lua table tree, outside every VM,
//! read in place by any number of services.
//!
//! The host (`service/sharedatad.lua`) turns a table into a tree of [`Table`]s with
//! `new` and hands out the root's address; clients read it through `index`/`nextkey`, a
//! sub-table coming back as its own address (light userdata). Nothing in a tree changes
//! once built except its [`State`]: the dirty flag (a newer version was published) and
//! the count of clients holding it (`box` objects and the host's `incref`/`decref`),
//! which decides when the host may `delete` it.
//!
//! A table keeps its array part (keys 1..#t) and a hash part of exactly one node per
//! other key. Each key is placed at its main position (hash modulo size) when free, the
//! rest in free nodes chained from their main position, so a lookup walks one chain.
//! Placement follows the order `next` visits keys and the key hash skynet's own build
//! uses, so `nextkey` walks a table in the same order as upstream.
//!
//! Building reads the Lua table with calls that never raise, so the half-built tree is
//! dropped normally when a key or value is refused.

use crate::lua::raise::{arg_bytes, arg_type, arg_udata, lua_fn, raise, Raise};
use crate::lua::stack as lua;
use mlua::ffi::{self, lua_State};
use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

const CONFCTRL: &CStr = c"confctrl";

/// Deepest nesting accepted (Lua's own limit of nested C calls).
const MAX_DEPTH: usize = 200;

/// What changes in a published tree.
struct State {
    dirty: AtomicBool,
    refs: AtomicI32,
}

/// A string of the tree; equal strings share one allocation.
type Str = Arc<[u8]>;

enum Value {
    Nil,
    Real(f64),
    Integer(i64),
    Str(Str),
    Boolean(bool),
    Table(Box<Table>),
}

enum Key {
    Integer(i64),
    Str(Str),
}

struct Node {
    key: Key,
    hash: u32,
    /// Next node of the chain, if any.
    next: Option<usize>,
    /// No other key has this node's main position.
    alone: bool,
    value: Value,
}

pub struct Table {
    state: Arc<State>,
    /// Set on the root only: the address `delete` may free.
    root: bool,
    array: Box<[Value]>,
    hash: Box<[Node]>,
}

/// The key hash of skynet's sharedata: a sample of at most 32 bytes from the end.
fn string_hash(s: &[u8]) -> u32 {
    let mut h = s.len() as u32;
    let step = (s.len() >> 5) + 1;
    let mut i = s.len();
    while i >= step {
        h ^= (h << 5).wrapping_add(h >> 2).wrapping_add(s[i - 1] as u32);
        i -= step;
    }
    h
}

/// A key looked up: the caller's integer or bytes.
#[derive(Clone, Copy)]
enum KeyRef<'a> {
    Integer(i64),
    Str(&'a [u8]),
}

impl Key {
    fn as_ref(&self) -> KeyRef<'_> {
        match self {
            Key::Integer(k) => KeyRef::Integer(*k),
            Key::Str(s) => KeyRef::Str(s),
        }
    }
}

impl KeyRef<'_> {
    fn hash(self) -> u32 {
        match self {
            KeyRef::Integer(k) => k as u32,
            KeyRef::Str(s) => string_hash(s),
        }
    }

    fn is(self, key: &Key) -> bool {
        match (self, key) {
            (KeyRef::Integer(a), Key::Integer(b)) => a == *b,
            (KeyRef::Str(a), Key::Str(b)) => a == &**b,
            _ => false,
        }
    }
}

impl Table {
    fn lookup(&self, key: KeyRef<'_>) -> Option<&Node> {
        if self.hash.is_empty() {
            return None;
        }
        let hash = key.hash();
        let mut n = &self.hash[hash as usize % self.hash.len()];
        if n.hash != hash && n.alone {
            return None;
        }
        loop {
            if n.hash == hash && key.is(&n.key) {
                return Some(n);
            }
            n = &self.hash[n.next?];
        }
    }

    fn lookup_index(&self, key: KeyRef<'_>) -> Option<usize> {
        let n = self.lookup(key)?;
        Some(
            (n as *const Node as usize - self.hash.as_ptr() as usize) / std::mem::size_of::<Node>(),
        )
    }
}

/// Turns a Lua table into a tree; strings interned in `strings`.
struct Builder<'a> {
    l: *mut lua_State,
    state: Arc<State>,
    strings: HashMap<&'a [u8], Str>,
}

impl<'a> Builder<'a> {
    fn intern(&mut self, s: &'a [u8]) -> Str {
        self.strings
            .entry(s)
            .or_insert_with(|| Arc::from(s))
            .clone()
    }

    /// The string at `idx` (the caller checked it is one); it lives while the source
    /// table does.
    unsafe fn string_at(&self, idx: c_int) -> &'a [u8] {
        // SAFETY: a string value needs no conversion, and the source table keeps it alive
        // for the build.
        unsafe { lua::to_bytes(self.l, idx) }.unwrap_or(&[])
    }

    /// The key at `idx`; None for a positive integer within the array part.
    unsafe fn key(&mut self, idx: c_int, array: usize) -> Result<Option<Key>, Raise> {
        let l = self.l;
        // SAFETY: reads of live stack slots.
        unsafe {
            match ffi::lua_type(l, idx) {
                ffi::LUA_TNUMBER if ffi::lua_isinteger(l, idx) != 0 => {
                    let k = ffi::lua_tointegerx(l, idx, std::ptr::null_mut());
                    if k > 0 && k as u64 <= array as u64 {
                        Ok(None)
                    } else {
                        Ok(Some(Key::Integer(k)))
                    }
                }
                ffi::LUA_TNUMBER => {
                    let f = ffi::lua_tonumberx(l, idx, std::ptr::null_mut());
                    Err(raise!("Invalid key {f:.6}"))
                }
                ffi::LUA_TSTRING => Ok(Some(Key::Str(self.intern(self.string_at(idx))))),
                _ => Err(raise!("Invalid key type {}", lua::type_name(l, idx))),
            }
        }
    }

    unsafe fn value(&mut self, idx: c_int, depth: usize) -> Result<Value, Raise> {
        let l = self.l;
        // SAFETY: reads of live stack slots.
        unsafe {
            Ok(match ffi::lua_type(l, idx) {
                ffi::LUA_TNIL => Value::Nil,
                ffi::LUA_TNUMBER if ffi::lua_isinteger(l, idx) != 0 => {
                    Value::Integer(ffi::lua_tointegerx(l, idx, std::ptr::null_mut()))
                }
                ffi::LUA_TNUMBER => Value::Real(ffi::lua_tonumberx(l, idx, std::ptr::null_mut())),
                ffi::LUA_TSTRING => Value::Str(self.intern(self.string_at(idx))),
                ffi::LUA_TBOOLEAN => Value::Boolean(ffi::lua_toboolean(l, idx) != 0),
                ffi::LUA_TTABLE => Value::Table(self.table(idx, depth + 1, false)?),
                _ => return Err(raise!("Unsupport value type {}", lua::type_name(l, idx))),
            })
        }
    }

    /// Builds the table at `idx`.
    unsafe fn table(&mut self, idx: c_int, depth: usize, root: bool) -> Result<Box<Table>, Raise> {
        let l = self.l;
        // SAFETY: stack work within the slots checked for; lua_next and lua_rawgeti
        // neither allocate nor raise on a table nobody changes meanwhile.
        unsafe {
            if depth > MAX_DEPTH || ffi::lua_checkstack(l, 3) == 0 {
                return Err(raise!("C stack overflow"));
            }
            let t = ffi::lua_absindex(l, idx);
            let array_len = ffi::lua_rawlen(l, t);
            let mut array = Vec::with_capacity(array_len);
            for i in 1..=array_len {
                ffi::lua_rawgeti(l, t, i as ffi::lua_Integer);
                let v = self.value(-1, depth);
                ffi::lua_pop(l, 1);
                array.push(v?);
            }
            let mut entries = Vec::new();
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, t) != 0 {
                let entry = match self.key(-2, array_len) {
                    Ok(Some(key)) => self.value(-1, depth).map(|v| Some((key, v))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                ffi::lua_pop(l, 1);
                match entry {
                    Ok(Some(kv)) => entries.push(kv),
                    Ok(None) => {}
                    Err(e) => {
                        ffi::lua_pop(l, 1);
                        return Err(e);
                    }
                }
            }
            Ok(Box::new(Table {
                state: self.state.clone(),
                root,
                array: array.into_boxed_slice(),
                hash: place(entries),
            }))
        }
    }
}

/// Lays the entries (in `next` order) out as a hash part: main positions first, then
/// the colliding keys in the free nodes, front to back.
fn place(entries: Vec<(Key, Value)>) -> Box<[Node]> {
    let size = entries.len();
    let mut slots: Vec<Option<Node>> = (0..size).map(|_| None).collect();
    let mut colliding = Vec::new();
    for (key, value) in entries {
        let hash = key.as_ref().hash();
        let main = hash as usize % size;
        if slots[main].is_none() {
            slots[main] = Some(Node {
                key,
                hash,
                next: None,
                alone: true,
                value,
            });
        } else {
            colliding.push((main, key, hash, value));
        }
    }
    let mut free = 0;
    for (main, key, hash, value) in colliding {
        while slots[free].is_some() {
            free += 1;
        }
        let Some(head) = slots[main].as_mut() else {
            continue;
        };
        let next = head.next.replace(free);
        head.alone = false;
        slots[free] = Some(Node {
            key,
            hash,
            next,
            alone: false,
            value,
        });
    }
    slots.into_iter().flatten().collect()
}

/// The table behind the light userdata at `arg`.
unsafe fn arg_conf<'a>(l: *mut lua_State, arg: c_int) -> Result<&'a Table, Raise> {
    // SAFETY: a non-null conf pointer is, by the module's contract, a table of a live
    // tree that `new` made (the host deletes a tree only when nobody holds it).
    unsafe {
        let p = ffi::lua_touserdata(l, arg) as *const Table;
        p.as_ref().ok_or_else(|| raise!("Need a conf object"))
    }
}

/// `new(tbl)` → conf.
unsafe fn new(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live state; the tree is built without raising.
    unsafe {
        arg_type(l, 1, ffi::LUA_TTABLE)?;
        let mut builder = Builder {
            l,
            state: Arc::new(State {
                dirty: AtomicBool::new(false),
                refs: AtomicI32::new(0),
            }),
            strings: HashMap::new(),
        };
        let root = builder.table(1, 0, true)?;
        drop(builder);
        ffi::lua_pushlightuserdata(l, Box::into_raw(root) as *mut c_void);
    }
    Ok(1)
}

/// `delete(conf)`: frees a tree (its root).
unsafe fn delete(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a root pointer is the `Box` `new` handed out, freed once by the host.
    unsafe {
        let t = arg_conf(l, 1)?;
        if !t.root {
            return Err(raise!("Need a conf object"));
        }
        drop(Box::from_raw(t as *const Table as *mut Table));
    }
    Ok(0)
}

/// Pushes a value of a tree.
unsafe fn push_value(l: *mut lua_State, v: &Value) {
    // SAFETY: stack work on a live state.
    unsafe {
        match v {
            Value::Nil => ffi::lua_pushnil(l),
            Value::Real(n) => ffi::lua_pushnumber(l, *n),
            Value::Integer(i) => ffi::lua_pushinteger(l, *i),
            Value::Str(s) => lua::push_bytes(l, s),
            Value::Boolean(b) => ffi::lua_pushboolean(l, *b as c_int),
            Value::Table(t) => ffi::lua_pushlightuserdata(l, &**t as *const Table as *mut c_void),
        }
    }
}

unsafe fn push_key(l: *mut lua_State, k: &Key) {
    // SAFETY: stack work on a live state.
    unsafe {
        match k {
            Key::Integer(i) => ffi::lua_pushinteger(l, *i),
            Key::Str(s) => lua::push_bytes(l, s),
        }
    }
}

/// The key at 2 as a hash key, or the array slot it names.
enum Lookup<'a> {
    Slot(usize),
    Key(KeyRef<'a>),
}

unsafe fn arg_key<'a>(l: *mut lua_State, t: &Table) -> Result<Lookup<'a>, Raise> {
    // SAFETY: reads of live stack slots.
    unsafe {
        if ffi::lua_type(l, 2) == ffi::LUA_TNUMBER {
            if ffi::lua_isinteger(l, 2) == 0 {
                let f = ffi::lua_tonumberx(l, 2, std::ptr::null_mut());
                return Err(raise!("Invalid key {f:.6}"));
            }
            let k = ffi::lua_tointegerx(l, 2, std::ptr::null_mut());
            if k > 0 && k as u64 <= t.array.len() as u64 {
                return Ok(Lookup::Slot(k as usize - 1));
            }
            return Ok(Lookup::Key(KeyRef::Integer(k)));
        }
        Ok(Lookup::Key(KeyRef::Str(arg_bytes(l, 2)?)))
    }
}

/// `index(conf, key)` → value, sub-table conf, or nothing.
unsafe fn index(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of a live tree (see arg_conf).
    unsafe {
        let t = arg_conf(l, 1)?;
        if ffi::lua_type(l, 2) == ffi::LUA_TNIL {
            return Ok(0);
        }
        let v = match arg_key(l, t)? {
            Lookup::Slot(i) => &t.array[i],
            Lookup::Key(k) => match t.lookup(k) {
                Some(n) => &n.value,
                None => return Ok(0),
            },
        };
        push_value(l, v);
    }
    Ok(1)
}

/// The first key from hash node `from` on.
unsafe fn push_hash_key(l: *mut lua_State, t: &Table, from: usize) -> c_int {
    match t.hash.get(from) {
        Some(n) => {
            // SAFETY: stack work on a live state.
            unsafe { push_key(l, &n.key) };
            1
        }
        None => 0,
    }
}

/// The first non-nil array slot from `from` (0-based) on, else the first hash key.
unsafe fn push_array_key(l: *mut lua_State, t: &Table, from: usize) -> c_int {
    match (from..t.array.len()).find(|&i| !matches!(t.array[i], Value::Nil)) {
        Some(i) => {
            // SAFETY: stack work on a live state.
            unsafe { ffi::lua_pushinteger(l, i as ffi::lua_Integer + 1) };
            1
        }
        // SAFETY: as above.
        None => unsafe { push_hash_key(l, t, 0) },
    }
}

/// `nextkey(conf, key)`: array keys in order, skipping nil slots, then the hash part.
unsafe fn nextkey(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of a live tree.
    unsafe {
        let t = arg_conf(l, 1)?;
        if ffi::lua_isnoneornil(l, 2) != 0 {
            return Ok(push_array_key(l, t, 0));
        }
        if ffi::lua_type(l, 2) == ffi::LUA_TNUMBER && ffi::lua_isinteger(l, 2) == 0 {
            return Ok(0);
        }
        match arg_key(l, t)? {
            Lookup::Slot(i) => Ok(push_array_key(l, t, i + 1)),
            Lookup::Key(k) => match t.lookup_index(k) {
                Some(i) => Ok(push_hash_key(l, t, i + 1)),
                None => Ok(0),
            },
        }
    }
}

unsafe fn push_count(l: *mut lua_State, n: i64) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live state.
    unsafe { ffi::lua_pushinteger(l, n) };
    Ok(1)
}

unsafe fn len(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of a live tree.
    unsafe { push_count(l, arg_conf(l, 1)?.array.len() as i64) }
}

unsafe fn hashlen(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of a live tree.
    unsafe { push_count(l, arg_conf(l, 1)?.hash.len() as i64) }
}

unsafe fn markdirty(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of a live tree.
    unsafe { arg_conf(l, 1)? }
        .state
        .dirty
        .store(true, Ordering::Release);
    Ok(0)
}

unsafe fn isdirty(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of a live tree; stack work.
    unsafe {
        let dirty = arg_conf(l, 1)?.state.dirty.load(Ordering::Acquire);
        ffi::lua_pushboolean(l, dirty as c_int);
    }
    Ok(1)
}

unsafe fn getref(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of a live tree.
    let refs = unsafe { arg_conf(l, 1)? }
        .state
        .refs
        .load(Ordering::Acquire);
    // SAFETY: stack work.
    unsafe { push_count(l, refs as i64) }
}

unsafe fn incref(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of a live tree.
    let refs = unsafe { arg_conf(l, 1)? }
        .state
        .refs
        .fetch_add(1, Ordering::AcqRel)
        + 1;
    // SAFETY: stack work.
    unsafe { push_count(l, refs as i64) }
}

unsafe fn decref(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of a live tree.
    let refs = unsafe { arg_conf(l, 1)? }
        .state
        .refs
        .fetch_sub(1, Ordering::AcqRel)
        - 1;
    // SAFETY: stack work.
    unsafe { push_count(l, refs as i64) }
}

/// The block of a `confctrl` userdata: the tree a client reads, the one posted to
/// replace it, and a reference to the first's state (counted in `refs`).
struct Ctrl {
    root: *const Table,
    update: *const Table,
    state: *const State,
}

/// `confctrl.__gc`: the client no longer holds the tree.
unsafe extern "C-unwind" fn release(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls __gc with a confctrl block; the state reference it owns is
    // dropped once (the pointer is cleared).
    unsafe {
        let c = ffi::lua_touserdata(l, 1) as *mut Ctrl;
        if !c.is_null() && !(*c).state.is_null() {
            let state = Arc::from_raw((*c).state);
            state.refs.fetch_sub(1, Ordering::AcqRel);
            (*c).state = std::ptr::null();
            (*c).root = std::ptr::null();
            (*c).update = std::ptr::null();
        }
    }
    0
}

/// `box(conf)` → the client's control object.
unsafe fn boxconf(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of a live tree; stack work.
    unsafe {
        let t = arg_conf(l, 1)?;
        t.state.refs.fetch_add(1, Ordering::AcqRel);
        let state = Arc::into_raw(t.state.clone());
        let c = ffi::lua_newuserdatauv(l, std::mem::size_of::<Ctrl>(), 1) as *mut Ctrl;
        c.write(Ctrl {
            root: t,
            update: std::ptr::null(),
            state,
        });
        if ffi::luaL_newmetatable(l, CONFCTRL.as_ptr()) != 0 {
            ffi::lua_pushcfunction(l, release);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_setmetatable(l, -2);
    }
    Ok(1)
}

/// `needupdate(box)` → `newconf, newtable` once an update was posted.
unsafe fn needupdate(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a confctrl block; stack work.
    unsafe {
        let c = arg_udata(l, 1, CONFCTRL)? as *const Ctrl;
        if (*c).update.is_null() {
            return Ok(0);
        }
        ffi::lua_pushlightuserdata(l, (*c).update as *mut c_void);
        ffi::lua_getiuservalue(l, 1, 1);
    }
    Ok(2)
}

/// `update(box, newconf, newtable)`: posts the tree that replaces the box's.
unsafe fn update(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a confctrl block; stack work.
    unsafe {
        let c = arg_udata(l, 1, CONFCTRL)? as *mut Ctrl;
        arg_type(l, 2, ffi::LUA_TLIGHTUSERDATA)?;
        arg_type(l, 3, ffi::LUA_TTABLE)?;
        let n = ffi::lua_touserdata(l, 2) as *const Table;
        if (*c).root == n {
            return Err(raise!("You should update a new object"));
        }
        ffi::lua_settop(l, 3);
        ffi::lua_setiuservalue(l, 1, 1);
        (*c).update = n;
    }
    Ok(0)
}

/// `require "skynet.sharedata.core"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state.
    unsafe {
        lua::new_lib(
            l,
            &[
                (c"new", lua_fn!(new)),
                (c"delete", lua_fn!(delete)),
                (c"markdirty", lua_fn!(markdirty)),
                (c"getref", lua_fn!(getref)),
                (c"incref", lua_fn!(incref)),
                (c"decref", lua_fn!(decref)),
                (c"box", lua_fn!(boxconf)),
                (c"index", lua_fn!(index)),
                (c"nextkey", lua_fn!(nextkey)),
                (c"len", lua_fn!(len)),
                (c"hashlen", lua_fn!(hashlen)),
                (c"isdirty", lua_fn!(isdirty)),
                (c"needupdate", lua_fn!(needupdate)),
                (c"update", lua_fn!(update)),
            ],
        );
    }
    1
}
