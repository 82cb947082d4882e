//! `skynet.datasheet.core`: read-only proxy tables over a datasheet document.
//!
//! The document is a Lua string built by `skynet.datasheet.dump` and held by the
//! datasheet service; other services get its address (`stringpointer`) and read it in
//! place. Layout, all u32 little-endian:
//!
//! ```text
//! strtbl  n  index[n]  table...  strings
//! table:  array  dict  type[array + dict] (padded to 4)  value[array]  (key, value)[dict]
//! ```
//!
//! `index[i]` is table i's offset after the header (`0xffffffff`: absent), string values
//! and keys are offsets of NUL-terminated strings from `strtbl`, a type is one of the
//! `VALUE_*` below. `stringpointer` remembers each document's length, so every read is
//! checked against it: a malformed document or a pointer that is not a document raises
//! instead of reading outside it.
//!
//! A proxy is an empty table with the shared metatable; its first access copies its level
//! into it and drops the metatable, and sub-tables come back as proxies, one per table per
//! VM (`_ctable`: table address -> proxy, weak). `_proxy` maps a proxy to its
//! (document, index) userdata, so `update` can re-point every proxy of a document.

use crate::lua::raise::{arg_bytes, arg_type, lua_fn, raise, Raise};
use crate::lua::stack as lua;
use mlua::ffi::{self, lua_State};
use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::sync::{Mutex, OnceLock};

const NODECACHE: &CStr = c"_ctable";
const PROXYCACHE: &CStr = c"_proxy";
const TABLES: &CStr = c"_ctables";

const VALUE_NIL: u8 = 0;
const VALUE_INTEGER: u8 = 1;
const VALUE_REAL: u8 = 2;
const VALUE_BOOLEAN: u8 = 3;
const VALUE_TABLE: u8 = 4;
const VALUE_STRING: u8 = 5;

const ABSENT: u32 = 0xffff_ffff;

/// Length of every document `stringpointer` handed out, by address.
fn documents() -> &'static Mutex<HashMap<usize, usize>> {
    static DOCUMENTS: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn document_len(data: *const u8) -> Option<usize> {
    let map = match documents().lock() {
        Ok(map) => map,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.get(&(data as usize)).copied()
}

/// A document in memory: its bytes, borrowed from the string that holds it.
#[derive(Clone, Copy)]
struct Document {
    data: *const u8,
    len: usize,
}

impl Document {
    /// The document at `data`, if `stringpointer` made that pointer.
    fn at(data: *const u8) -> Result<Document, Raise> {
        match document_len(data) {
            Some(len) => Ok(Document { data, len }),
            None => Err(raise!("Invalid document {data:p}")),
        }
    }

    fn u32_at(&self, offset: usize) -> Result<u32, Raise> {
        if offset.checked_add(4).is_none_or(|end| end > self.len) {
            return Err(raise!("Invalid document {:p} (offset {offset})", self.data));
        }
        let mut bytes = [0u8; 4];
        // SAFETY: offset..offset+4 lies inside the document, which the owner's string
        // keeps alive while any service reads it (the datasheet protocol).
        unsafe { std::ptr::copy_nonoverlapping(self.data.add(offset), bytes.as_mut_ptr(), 4) };
        Ok(u32::from_le_bytes(bytes))
    }

    fn byte_at(&self, offset: usize) -> Result<u8, Raise> {
        if offset >= self.len {
            return Err(raise!("Invalid document {:p} (offset {offset})", self.data));
        }
        // SAFETY: as `u32_at`.
        Ok(unsafe { *self.data.add(offset) })
    }

    fn count(&self) -> Result<u32, Raise> {
        self.u32_at(4)
    }

    /// Offset of table `index` from the document start, None when absent.
    fn table(&self, index: u32) -> Result<Option<usize>, Raise> {
        let n = self.count()?;
        if index >= n {
            return Ok(None);
        }
        let at = self.u32_at(8 + 4 * index as usize)?;
        if at == ABSENT {
            return Ok(None);
        }
        Ok(Some(8 + 4 * n as usize + at as usize))
    }

    /// The NUL-terminated string at `offset` in the string area.
    fn string(&self, offset: u32) -> Result<&[u8], Raise> {
        let start = self.u32_at(0)? as usize + offset as usize;
        let tail = if start < self.len {
            // SAFETY: start..len lies inside the document, alive as in `u32_at`.
            unsafe { std::slice::from_raw_parts(self.data.add(start), self.len - start) }
        } else {
            &[]
        };
        match tail.iter().position(|&b| b == 0) {
            Some(end) => Ok(&tail[..end]),
            None => Err(raise!("Invalid document {:p} (string {offset})", self.data)),
        }
    }
}

/// The block of a proxy's userdata in `_proxy`.
#[repr(C)]
struct Proxy {
    data: *const u8,
    index: c_int,
}

/// Pushes the proxy of table `index` of `doc`: the cached one, or a new one.
unsafe fn push_proxy(l: *mut lua_State, doc: Document, index: u32) -> Result<(), Raise> {
    let Some(offset) = doc.table(index)? else {
        return Err(raise!("Invalid index {}", index as c_int));
    };
    // SAFETY: stack work on a live state; the key is the table's address in the document.
    unsafe {
        let key = doc.data.add(offset) as *const c_void;
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, NODECACHE.as_ptr());
        if ffi::lua_rawgetp(l, -1, key) == ffi::LUA_TTABLE {
            ffi::lua_replace(l, -2);
            return Ok(());
        }
        ffi::lua_pop(l, 1);
        ffi::lua_createtable(l, 0, 0);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_setmetatable(l, -2);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawsetp(l, -3, key);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, PROXYCACHE.as_ptr());
        ffi::lua_pushvalue(l, -2);
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<Proxy>(), 0) as *mut Proxy;
        p.write(Proxy {
            data: doc.data,
            index: index as c_int,
        });
        ffi::lua_rawset(l, -3);
        ffi::lua_pop(l, 1);
        ffi::lua_replace(l, -2);
    }
    Ok(())
}

/// Pushes the value of type `ty` held in the word at `offset`.
unsafe fn push_value(l: *mut lua_State, doc: Document, offset: usize, ty: u8) -> Result<(), Raise> {
    let word = doc.u32_at(offset)?;
    // SAFETY: stack work on a live state.
    unsafe {
        match ty {
            VALUE_NIL => ffi::lua_pushnil(l),
            VALUE_INTEGER => ffi::lua_pushinteger(l, word as i32 as ffi::lua_Integer),
            VALUE_REAL => ffi::lua_pushnumber(l, f32::from_bits(word) as ffi::lua_Number),
            VALUE_BOOLEAN => ffi::lua_pushboolean(l, (word != 0) as c_int),
            VALUE_TABLE => push_proxy(l, doc, word)?,
            VALUE_STRING => lua::push_bytes(l, doc.string(word)?),
            _ => {
                let at = doc.data.wrapping_add(offset);
                return Err(raise!("Invalid type {ty} at {at:p}"));
            }
        }
    }
    Ok(())
}

/// Fills the table at `tbl` with the level `p` stands for.
unsafe fn copy_table(l: *mut lua_State, tbl: c_int, p: &Proxy) -> Result<(), Raise> {
    let doc = Document::at(p.data)?;
    let n = doc.count()?;
    if p.index < 0 || p.index as u32 >= n {
        return Err(raise!(
            "Invalid proxy (index = {}, total = {})",
            p.index,
            n as c_int
        ));
    }
    let Some(t) = doc.table(p.index as u32)? else {
        return Err(raise!("Invalid proxy (index = {})", p.index));
    };
    let array = doc.u32_at(t)? as usize;
    let dict = doc.u32_at(t + 4)? as usize;
    let types = t + 8;
    let mut v = types + ((array + dict + 3) & !3);
    // SAFETY: stack work on a live state; each value takes one or two slots.
    unsafe {
        for i in 0..array {
            push_value(l, doc, v, doc.byte_at(types + i)?)?;
            ffi::lua_rawseti(l, tbl, i as ffi::lua_Integer + 1);
            v += 4;
        }
        for i in 0..dict {
            push_value(l, doc, v, VALUE_STRING)?;
            push_value(l, doc, v + 4, doc.byte_at(types + array + i)?)?;
            ffi::lua_rawset(l, tbl);
            v += 8;
        }
    }
    Ok(())
}

/// The proxy block of the table at 1, or `Invalid proxy table`.
unsafe fn proxy_of(l: *mut lua_State) -> Result<*const Proxy, Raise> {
    // SAFETY: stack work on a live state; `_proxy` holds only Proxy blocks.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, PROXYCACHE.as_ptr());
        ffi::lua_pushvalue(l, 1);
        if ffi::lua_rawget(l, -2) != ffi::LUA_TUSERDATA {
            let p = ffi::lua_topointer(l, 1);
            return Err(raise!("Invalid proxy table {p:p}"));
        }
        let p = ffi::lua_touserdata(l, -1) as *const Proxy;
        ffi::lua_pop(l, 2);
        Ok(p)
    }
}

/// First access to a proxy: its level comes into the table, the metatable goes.
unsafe fn materialize(l: *mut lua_State) -> Result<(), Raise> {
    // SAFETY: the proxy block stays referenced by `_proxy` while the table lives.
    unsafe {
        let p = proxy_of(l)?;
        copy_table(l, 1, &*p)?;
        ffi::lua_pushnil(l);
        ffi::lua_setmetatable(l, 1);
    }
    Ok(())
}

unsafe fn index(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live state.
    unsafe {
        materialize(l)?;
        ffi::lua_rawget(l, 1);
    }
    Ok(1)
}

unsafe fn next(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live state (the stock `next`).
    unsafe {
        arg_type(l, 1, ffi::LUA_TTABLE)?;
        ffi::lua_settop(l, 2);
        if ffi::lua_next(l, 1) != 0 {
            Ok(2)
        } else {
            ffi::lua_pushnil(l);
            Ok(1)
        }
    }
}

unsafe fn pairs(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live state.
    unsafe {
        materialize(l)?;
        ffi::lua_pushcfunction(l, lua_fn!(next));
        ffi::lua_pushvalue(l, 1);
        ffi::lua_pushnil(l);
    }
    Ok(3)
}

unsafe fn len(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live state.
    unsafe {
        materialize(l)?;
        ffi::lua_pushinteger(l, ffi::lua_rawlen(l, 1) as ffi::lua_Integer);
    }
    Ok(1)
}

/// `new(ptr)` → the proxy of the document's table 0.
unsafe fn new(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live state.
    unsafe {
        arg_type(l, 1, ffi::LUA_TLIGHTUSERDATA)?;
        let data = ffi::lua_touserdata(l, 1) as *const u8;
        let doc = Document::at(data)?;
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, TABLES.as_ptr());
        ffi::lua_pushvalue(l, 1);
        ffi::lua_rawsetp(l, -2, data as *const c_void);
        ffi::lua_pop(l, 1);
        push_proxy(l, doc, 0)?;
    }
    Ok(1)
}

/// Empties the table on top (a cached proxy that goes back to its lazy state).
unsafe fn clear_top(l: *mut lua_State) -> Result<(), Raise> {
    // SAFETY: stack work on a live state.
    unsafe {
        let t = ffi::lua_gettop(l);
        if ffi::lua_type(l, t) != ffi::LUA_TTABLE {
            return Err(raise!("Invalid cache"));
        }
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            ffi::lua_pop(l, 1);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_pushnil(l);
            ffi::lua_rawset(l, t);
        }
    }
    Ok(())
}

/// Re-points every proxy of document `old` to `new`, re-keying `_ctable` by the new
/// table addresses; a proxy whose table is gone from `new` drops out of the cache.
unsafe fn update_cache(l: *mut lua_State, old: *const u8, new: Document) -> Result<(), Raise> {
    // SAFETY: stack work on a live state; `_proxy` holds only Proxy blocks.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, NODECACHE.as_ptr());
        let t = ffi::lua_gettop(l);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, PROXYCACHE.as_ptr());
        let pt = t + 1;
        ffi::lua_createtable(l, 0, 0);
        let nt = t + 2;
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            ffi::lua_pushvalue(l, -1);
            if ffi::lua_rawget(l, pt) != ffi::LUA_TUSERDATA {
                ffi::lua_pop(l, 2);
                continue;
            }
            let p = ffi::lua_touserdata(l, -1) as *mut Proxy;
            if (*p).data != old {
                ffi::lua_pop(l, 2);
                continue;
            }
            (*p).data = new.data;
            let table = new.table((*p).index as u32)?;
            ffi::lua_pop(l, 1);
            clear_top(l)?;
            ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
            ffi::lua_setmetatable(l, -2);
            match table {
                Some(offset) => ffi::lua_rawsetp(l, nt, new.data.add(offset) as *const c_void),
                None => ffi::lua_pop(l, 1),
            }
            ffi::lua_pushvalue(l, -1);
            ffi::lua_pushnil(l);
            ffi::lua_rawset(l, t);
        }
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, nt) != 0 {
            ffi::lua_pushvalue(l, -2);
            ffi::lua_insert(l, -2);
            ffi::lua_rawset(l, t);
        }
        ffi::lua_pop(l, 3);
    }
    Ok(())
}

/// `update(proxy, newptr)`.
unsafe fn update(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live state.
    unsafe {
        let p = proxy_of(l)?;
        arg_type(l, 2, ffi::LUA_TLIGHTUSERDATA)?;
        let new = Document::at(ffi::lua_touserdata(l, 2) as *const u8)?;
        update_cache(l, (*p).data, new)?;
    }
    Ok(0)
}

/// `stringpointer(str)` → the address of the string's bytes, remembered as a document.
unsafe fn stringpointer(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live state.
    unsafe {
        let bytes = arg_bytes(l, 1)?;
        let mut map = match documents().lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.insert(bytes.as_ptr() as usize, bytes.len());
        drop(map);
        ffi::lua_pushlightuserdata(l, bytes.as_ptr() as *mut c_void);
    }
    Ok(1)
}

/// A new table with a metatable whose `__mode` is `mode`.
unsafe fn weak_table(l: *mut lua_State, mode: &CStr) {
    // SAFETY: stack work on a live state.
    unsafe {
        ffi::lua_createtable(l, 0, 0);
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushstring(l, mode.as_ptr());
        ffi::lua_setfield(l, -2, c"__mode".as_ptr());
        ffi::lua_setmetatable(l, -2);
    }
}

/// Sets `name` in the table at -2 to a closure of `f` over the table on top.
unsafe fn set_closure(l: *mut lua_State, name: &CStr, f: lua::CFunction, at: c_int) {
    // SAFETY: stack work on a live state.
    unsafe {
        ffi::lua_pushvalue(l, -1);
        ffi::lua_pushcclosure(l, f, 1);
        ffi::lua_setfield(l, at - 2, name.as_ptr());
    }
}

/// `require "skynet.datasheet.core"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state.
    unsafe {
        weak_table(l, c"kv");
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, NODECACHE.as_ptr());
        weak_table(l, c"k");
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, PROXYCACHE.as_ptr());
        ffi::lua_createtable(l, 0, 0);
        ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, TABLES.as_ptr());

        ffi::lua_createtable(l, 0, 3);
        ffi::lua_createtable(l, 0, 3);
        set_closure(l, c"__index", lua_fn!(index), 0);
        set_closure(l, c"__pairs", lua_fn!(pairs), 0);
        set_closure(l, c"__len", lua_fn!(len), 0);
        set_closure(l, c"new", lua_fn!(new), -1);
        set_closure(l, c"update", lua_fn!(update), -1);
        ffi::lua_pop(l, 1);
        ffi::lua_pushcfunction(l, lua_fn!(stringpointer));
        ffi::lua_setfield(l, -2, c"stringpointer".as_ptr());
    }
    1
}
