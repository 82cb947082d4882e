//! Encoding a Lua table as a sproto message (README "Wire protocol").
//!
//! A struct is a field count, one 16-bit record per field (a small integer or boolean
//! inline as `(v + 1) * 2`, 0 for a value in the data part, an odd number to skip
//! tags), then the data part: each value with a 32-bit length. The records' room is
//! reserved for the type's most records and the data moved down over what was not
//! needed, in one pass over the fields.
//!
//! Values are read straight from the Lua table with `lua_getfield` / `lua_geti` (so
//! `__index` works as upstream), an array with `__pairs` or `next` when it has a main
//! index, and written into the Lua-owned [`Scratch`]. No frame here owns memory: a
//! Lua error raised by a metamethod unwinds through it harmlessly. The checks and
//! error texts are upstream's, including its depth limit of 64 nested structs.

use super::buffer::Scratch;
use super::schema::{Field, Schema, Type, BOOLEAN, DOUBLE, INTEGER, STRING, STRUCT};
use super::{Fault, MAX_DEPTH};
use mlua::ffi::{self, lua_State};
use std::ffi::{c_int, CStr};

/// Where a struct's field values come from.
#[derive(Clone, Copy)]
enum Source {
    /// A table (or anything indexable) at this stack index.
    Table(c_int),
    /// A map entry: the first field is the key at the first index, the second field
    /// the value at the second.
    Pair(c_int, c_int),
}

struct Encoder<'s> {
    l: *mut lua_State,
    schema: &'s Schema,
    /// Stack index of the schema's field names ([`super::names`]).
    names: c_int,
}

/// Encodes the table at `table` as `ty` into `out`; `names` holds the schema's field
/// names.
///
/// # Safety
/// `l` is a valid state; `table` and `names` are absolute stack indexes; `ty` belongs
/// to `schema`.
pub unsafe fn encode<'s>(
    l: *mut lua_State,
    schema: &'s Schema,
    ty: &'s Type,
    table: c_int,
    names: c_int,
    out: &mut Scratch,
) -> Result<(), Fault<'s>> {
    let e = Encoder { l, schema, names };
    // SAFETY: forwarded.
    unsafe { e.strukt(ty, Source::Table(table), 0, out) }
}

/// `lua_typename` of the value at `idx`.
unsafe fn type_of(l: *mut lua_State, idx: c_int) -> &'static CStr {
    // SAFETY: lua_typename returns a static name for every tag.
    unsafe { CStr::from_ptr(ffi::lua_typename(l, ffi::lua_type(l, idx))) }
}

/// The integer the C cast `(int64_t)round(x)` gives on x86-64, out of range included.
fn round_to_i64(x: f64) -> i64 {
    let r = x.round();
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&r) {
        r as i64
    } else {
        i64::MIN
    }
}

/// A value that fits a sign-extended 32-bit word.
fn fits32(v: i64) -> bool {
    matches!(v >> 31, 0 | -1)
}

impl<'s> Encoder<'s> {
    /// Pushes the value of field `pos` (`f`) from `src`.
    unsafe fn fetch(&self, src: Source, pos: usize, f: &Field) {
        // SAFETY: stack access; lua_checkstack was done for this struct.
        unsafe {
            match src {
                Source::Table(t) => {
                    ffi::lua_rawgeti(self.l, self.names, f.slot.into());
                    ffi::lua_gettable(self.l, t);
                }
                Source::Pair(k, _) if pos == 0 => ffi::lua_pushvalue(self.l, k),
                Source::Pair(_, v) if pos == 1 => ffi::lua_pushvalue(self.l, v),
                Source::Pair(..) => ffi::lua_pushnil(self.l),
            }
        }
    }

    /// Encodes one struct from `src` at the end of `out`.
    unsafe fn strukt(
        &self,
        ty: &'s Type,
        src: Source,
        depth: usize,
        out: &mut Scratch,
    ) -> Result<(), Fault<'s>> {
        let l = self.l;
        if ty.fields.is_empty() {
            return out.put(&[0, 0]);
        }
        if depth >= MAX_DEPTH {
            return Err(Fault::TooDeep);
        }
        // SAFETY: stack work on a valid state; every index used is below the top.
        unsafe {
            if ffi::lua_checkstack(l, 8) == 0 {
                return Err(Fault::StackOverflow);
            }
            let top = ffi::lua_gettop(l);
            let header = out.hole(2 + 2 * ty.maxn)?;
            let data = out.len;
            let mut records = 0usize;
            let mut last = -1i32;
            // upstream reports a non-table array as the type of whatever its stack has
            // on top: the value itself, unless an earlier array of the struct was open
            let mut array_open = false;
            for (pos, f) in ty.fields.iter().enumerate() {
                self.fetch(src, pos, f);
                let record = if ffi::lua_isnil(l, -1) != 0 {
                    if f.array {
                        array_open = false;
                    }
                    None
                } else if f.array {
                    let shown = if array_open { c"nil" } else { type_of(l, -1) };
                    array_open = true;
                    self.array(ty, f, top + 1, shown, depth, out)?;
                    Some(0)
                } else {
                    self.single(ty, f, depth, out)?
                };
                ffi::lua_settop(l, top);
                let Some(value) = record else { continue };
                let gap = f.tag - last - 1;
                if gap > 0 {
                    let skip = (gap - 1) * 2 + 1;
                    if skip > 0xffff {
                        return Err(Fault::TooLarge);
                    }
                    out.set(header + 2 + 2 * records, &(skip as u16).to_le_bytes());
                    records += 1;
                }
                out.set(header + 2 + 2 * records, &value.to_le_bytes());
                records += 1;
                last = f.tag;
            }
            out.set(header, &(records as u16).to_le_bytes());
            if records < ty.maxn {
                out.shift_down(data, header + 2 + 2 * records);
            }
            Ok(())
        }
    }

    /// Encodes the non-nil value on top for the non-array field `f`: returns its record
    /// (a small value inline, or 0 with the value appended to the data part).
    unsafe fn single(
        &self,
        ty: &'s Type,
        f: &'s Field,
        depth: usize,
        out: &mut Scratch,
    ) -> Result<Option<u16>, Fault<'s>> {
        let l = self.l;
        // SAFETY: the value is on top of a valid state.
        unsafe {
            match f.kind {
                INTEGER => {
                    let v = self.integer(ty, f, 0)?;
                    if fits32(v) {
                        let w = v as u32;
                        if w < 0x7fff {
                            return Ok(Some(((w + 1) * 2) as u16));
                        }
                        out.put(&4u32.to_le_bytes())?;
                        out.put(&w.to_le_bytes())?;
                    } else {
                        out.put(&8u32.to_le_bytes())?;
                        out.put(&v.to_le_bytes())?;
                    }
                }
                BOOLEAN => {
                    let b = self.boolean(ty, f, 0)?;
                    return Ok(Some(if b { 4 } else { 2 }));
                }
                DOUBLE => {
                    let v = ffi::lua_tonumberx(l, -1, std::ptr::null_mut());
                    out.put(&8u32.to_le_bytes())?;
                    out.put(&v.to_le_bytes())?;
                }
                STRING => {
                    let s = self.string(ty, f, 0)?;
                    out.put(&(s.len() as u32).to_le_bytes())?;
                    out.put(s)?;
                }
                STRUCT => {
                    let at = out.hole(4)?;
                    let st = &self.schema.types[f.subtype];
                    self.strukt(st, Source::Table(ffi::lua_gettop(l)), depth + 1, out)?;
                    let len = (out.len - at - 4) as u32;
                    out.set(at, &len.to_le_bytes());
                }
                _ => {}
            }
        }
        Ok(Some(0))
    }

    /// The integer (or decimal, scaled) on top.
    unsafe fn integer(&self, ty: &'s Type, f: &'s Field, index: i64) -> Result<i64, Fault<'s>> {
        // SAFETY: reads of the top slot.
        unsafe {
            if f.extra != 0 {
                let n = ffi::lua_tonumberx(self.l, -1, std::ptr::null_mut());
                return Ok(round_to_i64(n * f64::from(f.extra)));
            }
            let mut isnum = 0;
            let v = ffi::lua_tointegerx(self.l, -1, &mut isnum);
            if isnum == 0 {
                return Err(Fault::NotA {
                    what: "an integer",
                    ty: &ty.name,
                    field: &f.name,
                    index,
                    got: type_of(self.l, -1),
                });
            }
            Ok(v)
        }
    }

    unsafe fn boolean(&self, ty: &'s Type, f: &'s Field, index: i64) -> Result<bool, Fault<'s>> {
        // SAFETY: reads of the top slot.
        unsafe {
            if ffi::lua_type(self.l, -1) != ffi::LUA_TBOOLEAN {
                return Err(Fault::NotA {
                    what: "a boolean",
                    ty: &ty.name,
                    field: &f.name,
                    index,
                    got: type_of(self.l, -1),
                });
            }
            Ok(ffi::lua_toboolean(self.l, -1) != 0)
        }
    }

    /// The string on top; it lives while it stays on the stack.
    unsafe fn string<'v>(
        &self,
        ty: &'s Type,
        f: &'s Field,
        index: i64,
    ) -> Result<&'v [u8], Fault<'s>> {
        // SAFETY: reads of the top slot; Lua keeps the string while it is there.
        unsafe {
            if ffi::lua_type(self.l, -1) != ffi::LUA_TSTRING {
                return Err(Fault::NotA {
                    what: "a string",
                    ty: &ty.name,
                    field: &f.name,
                    index,
                    got: type_of(self.l, -1),
                });
            }
            let mut len = 0;
            let p = ffi::lua_tolstring(self.l, -1, &mut len);
            Ok(std::slice::from_raw_parts(p.cast(), len))
        }
    }

    /// Encodes the array (or map) at `arr` for field `f` into the data part.
    unsafe fn array(
        &self,
        ty: &'s Type,
        f: &'s Field,
        arr: c_int,
        shown: &'static CStr,
        depth: usize,
        out: &mut Scratch,
    ) -> Result<(), Fault<'s>> {
        let l = self.l;
        // SAFETY: stack work on a valid state; `arr` holds the array value.
        unsafe {
            let iterator = if ffi::luaL_getmetafield(l, arr, c"__pairs".as_ptr()) != ffi::LUA_TNIL {
                ffi::lua_pushvalue(l, arr);
                ffi::lua_call(l, 1, 3);
                true
            } else if ffi::lua_type(l, arr) != ffi::LUA_TTABLE {
                return Err(Fault::NotTable {
                    ty: &ty.name,
                    field: &f.name,
                    got: shown,
                });
            } else {
                ffi::lua_pushnil(l);
                false
            };
            // the iteration state: __pairs' (f, s, control), or next's key
            let control = ffi::lua_gettop(l);
            let at = out.hole(4)?;
            let mut items = Items {
                l,
                arr,
                keyed: f.key >= 0,
                iterator,
                control,
                index: 0,
            };
            match f.kind {
                INTEGER | DOUBLE => self.numbers(ty, f, &mut items, out)?,
                BOOLEAN => {
                    while items.next() {
                        let b = self.boolean(ty, f, items.index)?;
                        out.put(&[u8::from(b)])?;
                        ffi::lua_settop(l, control);
                    }
                }
                STRING => {
                    while items.next() {
                        let s = self.string(ty, f, items.index)?;
                        out.put(&(s.len() as u32).to_le_bytes())?;
                        out.put(s)?;
                        ffi::lua_settop(l, control);
                    }
                }
                _ => {
                    let st = &self.schema.types[f.subtype];
                    loop {
                        let src = if f.map {
                            if !items.next_pair() {
                                break;
                            }
                            Source::Pair(control + 1, control + 2)
                        } else {
                            if !items.next() {
                                break;
                            }
                            Source::Table(control + 1)
                        };
                        let len_at = out.hole(4)?;
                        self.strukt(st, src, depth + 1, out)?;
                        let len = (out.len - len_at - 4) as u32;
                        out.set(len_at, &len.to_le_bytes());
                        ffi::lua_settop(l, control);
                    }
                }
            }
            let len = (out.len - at - 4) as u32;
            out.set(at, &len.to_le_bytes());
        }
        Ok(())
    }

    /// Integers (4 bytes each until one needs 8, then all 8) or doubles (8 bytes),
    /// after a byte giving the width; nothing at all for an empty array.
    unsafe fn numbers(
        &self,
        ty: &'s Type,
        f: &'s Field,
        items: &mut Items,
        out: &mut Scratch,
    ) -> Result<(), Fault<'s>> {
        let width_at = out.len;
        let first = width_at + 1;
        let mut width = 4usize;
        let mut count = 0usize;
        // SAFETY: items leave each element on top of the stack.
        unsafe {
            while items.next() {
                if count == 0 {
                    out.hole(1)?;
                }
                let bits = if f.kind == DOUBLE {
                    ffi::lua_tonumberx(self.l, -1, std::ptr::null_mut()).to_bits() as i64
                } else {
                    self.integer(ty, f, items.index)?
                };
                let wide = f.kind == DOUBLE || !fits32(bits);
                if wide && width == 4 {
                    widen(out, first, count)?;
                    width = 8;
                }
                if width == 4 {
                    out.put(&(bits as u32).to_le_bytes())?;
                } else {
                    out.put(&bits.to_le_bytes())?;
                }
                count += 1;
                ffi::lua_settop(self.l, items.control);
            }
        }
        if count > 0 {
            out.set(width_at, &[width as u8]);
        }
        Ok(())
    }
}

/// Rewrites `count` 4-byte integers at `first` as sign-extended 8-byte ones.
fn widen(out: &mut Scratch, first: usize, count: usize) -> Result<(), Fault<'static>> {
    out.reserve(4 * count)?;
    for i in (0..count).rev() {
        let v = out.get_u32(first + 4 * i) as i32 as i64;
        out.set(first + 8 * i, &v.to_le_bytes());
    }
    out.len += 4 * count;
    Ok(())
}

/// Walks an array's elements, leaving each on top of the stack above `control`.
struct Items {
    l: *mut lua_State,
    arr: c_int,
    /// Iterate (`__pairs` or `next`) rather than index 1, 2, ...
    keyed: bool,
    /// `__pairs` gave (f, s, control) at `control - 2 ..= control`.
    iterator: bool,
    control: c_int,
    /// The element's position, counted from 1.
    index: i64,
}

impl Items {
    /// The next element's value on top; false at the end (or at a nil value).
    unsafe fn next(&mut self) -> bool {
        self.index += 1;
        // SAFETY: stack work above `control`, which the caller keeps.
        unsafe {
            if !self.keyed {
                ffi::lua_geti(self.l, self.arr, self.index);
                return ffi::lua_isnil(self.l, -1) == 0;
            }
            if !self.step() {
                return false;
            }
            ffi::lua_remove(self.l, -2);
            ffi::lua_isnil(self.l, -1) == 0
        }
    }

    /// The next key and value, in the two slots above `control`; false at the end.
    unsafe fn next_pair(&mut self) -> bool {
        self.index += 1;
        // SAFETY: as `next`.
        unsafe { self.step() }
    }

    /// Advances the iteration: key and value pushed, the key kept as the control.
    unsafe fn step(&mut self) -> bool {
        let l = self.l;
        // SAFETY: as `next`; lua_next and the iterator call may raise, which unwinds
        // through frames that own nothing.
        unsafe {
            if self.iterator {
                ffi::lua_pushvalue(l, self.control - 2);
                ffi::lua_pushvalue(l, self.control - 1);
                ffi::lua_pushvalue(l, self.control);
                ffi::lua_call(l, 2, 2);
                if ffi::lua_isnil(l, -2) != 0 {
                    return false;
                }
            } else {
                ffi::lua_pushvalue(l, self.control);
                if ffi::lua_next(l, self.arr) == 0 {
                    return false;
                }
            }
            ffi::lua_pushvalue(l, -2);
            ffi::lua_replace(l, self.control);
            true
        }
    }
}
