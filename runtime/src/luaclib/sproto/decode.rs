//! Decoding a sproto message into a Lua table, streaming: each field is checked and
//! stored in order, so a message that goes bad halfway leaves the fields before the
//! fault in the table, as upstream's does. Every length is checked against the bytes
//! that are there; a fault is `decode error` (or upstream's text for a map entry
//! without its key). Unknown tags are skipped, which is how old readers take new
//! messages.
//!
//! Tables are made at their final size (`lua_createtable` with the record count or
//! the element count) instead of growing one field at a time. No frame owns memory,
//! so a memory error raised by Lua unwinds through the decoder harmlessly.

use super::schema::{dword, word, Field, Schema, Type, BOOLEAN, DOUBLE, INTEGER, STRING};
use super::{Fault, MAX_DEPTH};
use mlua::ffi::{self, lua_State};
use std::ffi::c_int;

/// A struct being filled.
struct Level {
    /// Stack index of its table.
    result: c_int,
    /// The field tag whose value is the struct's key in a keyed array, and the stack
    /// slot that receives it.
    key: Option<(i32, c_int)>,
    /// The table map entries are decoded into (made at the first map), or 0.
    entry: c_int,
    /// The stack top this level keeps between fields.
    top: c_int,
}

struct Decoder<'s> {
    l: *mut lua_State,
    schema: &'s Schema,
    /// Stack index of the schema's field names ([`super::names`]).
    names: c_int,
}

/// Decodes `data` as `ty` into the table at stack index `result`; returns the bytes
/// the message used. `names` holds the schema's field names.
///
/// # Safety
/// `l` is a valid state; `result` and `names` are absolute stack indexes, `result` of
/// a table; `ty` belongs to `schema`; `data` stays alive during the call.
pub unsafe fn decode<'s>(
    l: *mut lua_State,
    schema: &'s Schema,
    ty: &'s Type,
    data: &[u8],
    result: c_int,
    names: c_int,
) -> Result<usize, Fault<'s>> {
    let d = Decoder { l, schema, names };
    // SAFETY: forwarded.
    unsafe { d.strukt(ty, data, result, None, 0) }
}

/// A 32-bit integer sign-extended, as the wire's 4-byte integers are read.
fn expand(v: u32) -> u64 {
    v as i32 as i64 as u64
}

/// The record count a struct encoding announces, to size its table.
fn announced(body: &[u8], ty: &Type) -> c_int {
    word(body, 0).map_or(0, |n| usize::from(n).min(ty.fields.len()) as c_int)
}

/// Splits a length-prefixed value off `data`.
fn chunk(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = dword(data, 0)? as usize;
    let rest = &data[4..];
    (rest.len() >= len).then(|| rest.split_at(len))
}

impl<'s> Decoder<'s> {
    /// Decodes one struct into the table at `result`; returns the bytes it used.
    unsafe fn strukt(
        &self,
        ty: &'s Type,
        data: &[u8],
        result: c_int,
        key: Option<(i32, c_int)>,
        depth: usize,
    ) -> Result<usize, Fault<'s>> {
        let n = usize::from(word(data, 0).ok_or(Fault::Decode)?);
        let records = data.get(2..2 + 2 * n).ok_or(Fault::Decode)?;
        let mut rest = &data[2 + 2 * n..];
        // SAFETY: the state is valid.
        let top = unsafe {
            if ffi::lua_checkstack(self.l, 8) == 0 {
                return Err(Fault::StackOverflow);
            }
            ffi::lua_gettop(self.l)
        };
        let mut level = Level {
            result,
            key,
            entry: 0,
            top,
        };
        let mut tag = -1i32;
        for r in records.chunks_exact(2) {
            let v = i32::from(u16::from_le_bytes([r[0], r[1]]));
            tag += 1;
            if v & 1 != 0 {
                tag += v / 2;
                continue;
            }
            let body = if v == 0 {
                let (body, after) = chunk(rest).ok_or(Fault::Decode)?;
                rest = after;
                Some(body)
            } else {
                None
            };
            let Some(f) = ty.field(tag) else { continue };
            // SAFETY: the level's slots are below the top.
            unsafe {
                match body {
                    Some(body) if f.array => self.array(f, body, &mut level, depth)?,
                    Some(body) => self.data(f, body, &level, depth)?,
                    None if f.array || f.kind != INTEGER && f.kind != BOOLEAN => {
                        return Err(Fault::Decode)
                    }
                    None => {
                        enter(depth)?;
                        self.push_small(f, (v / 2 - 1) as u64);
                        self.store(f, &level);
                    }
                }
                ffi::lua_settop(self.l, level.top);
            }
        }
        Ok(data.len() - rest.len())
    }

    /// Pushes an integer, decimal, double or boolean read from the wire.
    unsafe fn push_small(&self, f: &Field, v: u64) {
        // SAFETY: one push.
        unsafe {
            match f.kind {
                INTEGER if f.extra != 0 => {
                    ffi::lua_pushnumber(self.l, v as i64 as f64 / f64::from(f.extra))
                }
                INTEGER => ffi::lua_pushinteger(self.l, v as i64),
                DOUBLE => ffi::lua_pushnumber(self.l, f64::from_bits(v)),
                _ => ffi::lua_pushboolean(self.l, c_int::from(v as u32 != 0)),
            }
        }
    }

    /// Sets the value on top as field `f` of the level's table (and as its key).
    unsafe fn store(&self, f: &Field, level: &Level) {
        // SAFETY: the value is on top; the level's slots are below it.
        unsafe {
            if let Some((tag, slot)) = level.key {
                if tag == f.tag {
                    ffi::lua_pushvalue(self.l, -1);
                    ffi::lua_replace(self.l, slot);
                }
            }
            self.set(level.result, f);
        }
    }

    /// `t[name of f] = ` the value on top (popped).
    unsafe fn set(&self, t: c_int, f: &Field) {
        // SAFETY: the value is on top of a valid state; `t` is below it.
        unsafe {
            ffi::lua_rawgeti(self.l, self.names, f.slot.into());
            ffi::lua_rotate(self.l, -2, 1);
            ffi::lua_settable(self.l, t);
        }
    }

    /// A non-array value from the data part.
    unsafe fn data(
        &self,
        f: &'s Field,
        body: &[u8],
        level: &Level,
        depth: usize,
    ) -> Result<(), Fault<'s>> {
        // SAFETY: pushes onto a valid state.
        unsafe {
            match f.kind {
                INTEGER | DOUBLE => {
                    let v = match *body {
                        [a, b, c, d] => expand(u32::from_le_bytes([a, b, c, d])),
                        [a, b, c, d, e, g, h, i] => u64::from_le_bytes([a, b, c, d, e, g, h, i]),
                        _ => return Err(Fault::Decode),
                    };
                    enter(depth)?;
                    self.push_small(f, v);
                }
                STRING => {
                    enter(depth)?;
                    ffi::lua_pushlstring(self.l, body.as_ptr().cast(), body.len());
                }
                BOOLEAN => return Err(Fault::Decode),
                _ => {
                    enter(depth)?;
                    self.substruct(f, body, depth)?;
                }
            }
            self.store(f, level);
        }
        Ok(())
    }

    /// Decodes a struct value into a new table left on top.
    unsafe fn substruct(&self, f: &'s Field, body: &[u8], depth: usize) -> Result<(), Fault<'s>> {
        let st = &self.schema.types[f.subtype];
        // SAFETY: pushes onto a valid state.
        unsafe {
            ffi::lua_createtable(self.l, 0, announced(body, st));
            let t = ffi::lua_gettop(self.l);
            if self.strukt(st, body, t, None, depth + 1)? != body.len() {
                return Err(Fault::Decode);
            }
            ffi::lua_settop(self.l, t);
        }
        Ok(())
    }

    /// Makes the array table of `f` with room for `narr` elements (or `nrec` keys),
    /// sets it in the level's table and leaves it on top.
    unsafe fn new_array(&self, f: &Field, level: &Level, narr: usize, nrec: usize) -> c_int {
        // SAFETY: pushes onto a valid state.
        unsafe {
            ffi::lua_createtable(self.l, narr as c_int, nrec as c_int);
            ffi::lua_pushvalue(self.l, -1);
            self.set(level.result, f);
            ffi::lua_gettop(self.l)
        }
    }

    /// An array value (a map for a keyed array of structs).
    unsafe fn array(
        &self,
        f: &'s Field,
        body: &[u8],
        level: &mut Level,
        depth: usize,
    ) -> Result<(), Fault<'s>> {
        let l = self.l;
        // SAFETY: stack work on a valid state; `arr` stays below the top.
        unsafe {
            match f.kind {
                INTEGER | DOUBLE if body.len() > 1 => {
                    let width = usize::from(body[0]);
                    let items = &body[1..];
                    if width != 4 && width != 8 || !items.len().is_multiple_of(width) {
                        return Err(Fault::Decode);
                    }
                    enter(depth)?;
                    let arr = self.new_array(f, level, items.len() / width, 0);
                    for (i, item) in items.chunks_exact(width).enumerate() {
                        let v = match *item {
                            [a, b, c, d] => expand(u32::from_le_bytes([a, b, c, d])),
                            [a, b, c, d, e, g, h, k] => {
                                u64::from_le_bytes([a, b, c, d, e, g, h, k])
                            }
                            _ => 0,
                        };
                        self.push_small(f, v);
                        ffi::lua_rawseti(l, arr, i as ffi::lua_Integer + 1);
                    }
                }
                BOOLEAN if !body.is_empty() => {
                    enter(depth)?;
                    let arr = self.new_array(f, level, body.len(), 0);
                    for (i, &b) in body.iter().enumerate() {
                        ffi::lua_pushboolean(l, c_int::from(b != 0));
                        ffi::lua_rawseti(l, arr, i as ffi::lua_Integer + 1);
                    }
                }
                STRING if !body.is_empty() => {
                    let mut rest = body;
                    let mut arr = 0;
                    let mut i = 0;
                    while !rest.is_empty() {
                        let (item, after) = chunk(rest).ok_or(Fault::Decode)?;
                        rest = after;
                        if arr == 0 {
                            enter(depth)?;
                            arr = self.new_array(f, level, count(body), 0);
                        }
                        i += 1;
                        ffi::lua_pushlstring(l, item.as_ptr().cast(), item.len());
                        ffi::lua_rawseti(l, arr, i);
                    }
                }
                INTEGER | DOUBLE | BOOLEAN | STRING => {
                    enter(depth)?;
                    self.new_array(f, level, 0, 0);
                }
                _ if body.is_empty() => {
                    enter(depth)?;
                    self.new_array(f, level, 0, 0);
                }
                _ => self.structs(f, body, level, depth)?,
            }
        }
        Ok(())
    }

    /// An array of structs: a sequence, a map keyed by the main index field, or a
    /// two-field map.
    unsafe fn structs(
        &self,
        f: &'s Field,
        body: &[u8],
        level: &mut Level,
        depth: usize,
    ) -> Result<(), Fault<'s>> {
        let l = self.l;
        let st = &self.schema.types[f.subtype];
        let n = count(body);
        let mut rest = body;
        let mut arr = 0;
        let mut i = 0;
        // SAFETY: stack work on a valid state; `arr` and the entry stay below the top.
        unsafe {
            while !rest.is_empty() {
                let (item, after) = chunk(rest).ok_or(Fault::Decode)?;
                rest = after;
                enter(depth)?;
                if arr == 0 {
                    arr = if f.key >= 0 {
                        self.new_array(f, level, 0, n)
                    } else {
                        self.new_array(f, level, n, 0)
                    };
                }
                i += 1;
                if f.map && level.entry == 0 {
                    // one entry table serves every map of the struct, as upstream's
                    // (an entry missing its value field takes the previous entry's)
                    ffi::lua_createtable(l, 0, 2);
                    level.entry = ffi::lua_gettop(l);
                    level.top = level.entry;
                    ffi::lua_pushvalue(l, arr);
                    arr = ffi::lua_gettop(l);
                }
                let mark = ffi::lua_gettop(l);
                if f.map {
                    if self.strukt(st, item, level.entry, None, depth + 1)? != item.len() {
                        return Err(Fault::Decode);
                    }
                    let (k, v) = (&st.fields[0], &st.fields[1]);
                    if ffi::lua_getfield(l, level.entry, k.name.as_ptr()) == ffi::LUA_TNIL {
                        return Err(Fault::NoMapKey(&f.name));
                    }
                    if ffi::lua_getfield(l, level.entry, v.name.as_ptr()) == ffi::LUA_TNIL {
                        return Err(Fault::NoMapValue(&f.name));
                    }
                    ffi::lua_settable(l, arr);
                } else if f.key >= 0 {
                    ffi::lua_pushnil(l);
                    let slot = ffi::lua_gettop(l);
                    ffi::lua_createtable(l, 0, announced(item, st));
                    let t = ffi::lua_gettop(l);
                    let used = self.strukt(st, item, t, Some((f.key, slot)), depth + 1)?;
                    if used != item.len() {
                        return Err(Fault::Decode);
                    }
                    ffi::lua_settop(l, t);
                    if ffi::lua_isnil(l, slot) != 0 {
                        return Err(Fault::NoMainIndex(f.key, &f.name));
                    }
                    ffi::lua_pushvalue(l, slot);
                    ffi::lua_pushvalue(l, t);
                    ffi::lua_settable(l, arr);
                } else {
                    ffi::lua_createtable(l, 0, announced(item, st));
                    let t = ffi::lua_gettop(l);
                    if self.strukt(st, item, t, None, depth + 1)? != item.len() {
                        return Err(Fault::Decode);
                    }
                    ffi::lua_settop(l, t);
                    ffi::lua_rawseti(l, arr, i);
                }
                ffi::lua_settop(l, mark);
            }
        }
        Ok(())
    }
}

/// The elements a length-prefixed list holds, counting only those that fit.
fn count(mut list: &[u8]) -> usize {
    let mut n = 0;
    while let Some((_, rest)) = chunk(list) {
        n += 1;
        list = rest;
        if list.is_empty() {
            break;
        }
    }
    n
}

/// Upstream checks the nesting depth each time a value is delivered.
fn enter(depth: usize) -> Result<(), Fault<'static>> {
    if depth >= MAX_DEPTH {
        Err(Fault::TooDeep)
    } else {
        Ok(())
    }
}
