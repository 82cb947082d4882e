//! The Lua functions of `sproto.core`, with upstream's arguments, results and error
//! texts: `newproto`, `deleteproto`, `dumpproto`, `querytype`, `encode`, `decode`,
//! `pack`, `unpack`, `protocol`, `default`, `saveproto`, `loadproto`.
//!
//! A schema is a `Box<Schema>` handed to Lua as a light userdata; a type is a light
//! userdata pointing into it. Only light userdata are taken for them (upstream would
//! take any userdata's block and crash on it). The 16 slots of `saveproto` are atomic
//! pointers shared by every VM of the process, so a schema loaded once is used by all
//! services (upstream's slots are plain globals; atomics make them sound across
//! worker threads).

use super::buffer::Scratch;
use super::pack::{pack, packed_bound, unpack, unpacked_len};
use super::schema::{Schema, Type, BOOLEAN, DOUBLE, INTEGER, STRING};
use super::{decode, encode, names};
use crate::lua::raise::{arg_bytes, arg_integer, arg_opt_integer, lua_fn, raise, Raise};
use crate::lua::stack::{push_bytes, CFunction};
use mlua::ffi::{self, lua_State};
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};

/// Process-wide schema slots (`saveproto` / `loadproto`).
const SLOTS: usize = 16;
static SLOT: [AtomicPtr<Schema>; SLOTS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];

/// The light userdata at `idx`, or null for anything else.
unsafe fn light(l: *mut lua_State, idx: c_int) -> *mut c_void {
    // SAFETY: type checks and a read of a live slot.
    unsafe {
        if ffi::lua_type(l, idx) == ffi::LUA_TLIGHTUSERDATA {
            ffi::lua_touserdata(l, idx)
        } else {
            std::ptr::null_mut()
        }
    }
}

/// The schema argument at `idx`; `what` is the complaint when there is none.
unsafe fn arg_schema<'a>(l: *mut lua_State, idx: c_int, what: &str) -> Result<&'a Schema, Raise> {
    // SAFETY: a non-null light userdata here is a schema from `newproto` that has not
    // been deleted: the caller's contract, as upstream's.
    unsafe { light(l, idx).cast::<Schema>().as_ref() }
        .ok_or(Raise::arg(idx, format_args!("{what}")))
}

/// The type argument at `idx`, with its schema.
unsafe fn arg_type<'a>(l: *mut lua_State, idx: c_int) -> Option<(&'a Schema, &'a Type)> {
    // SAFETY: a non-null light userdata here is a type of a live schema (from
    // `querytype` or `protocol`), the caller's contract as upstream's; a type's owner
    // is its schema, set when the schema was boxed.
    unsafe {
        let ty = light(l, idx).cast::<Type>().as_ref()?;
        Some((&*ty.owner, ty))
    }
}

/// A string, or a userdata and a size (`decode`, `pack` and `unpack` take either).
unsafe fn arg_buffer<'a>(l: *mut lua_State, idx: c_int) -> Result<&'a [u8], Raise> {
    // SAFETY: a string is borrowed while it stays on the stack; a full userdata is
    // read within its block; a light userdata addresses `size` readable bytes (the
    // caller's contract, as upstream's).
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => arg_bytes(l, idx),
            t @ (ffi::LUA_TUSERDATA | ffi::LUA_TLIGHTUSERDATA) => {
                let p = ffi::lua_touserdata(l, idx).cast::<u8>();
                let size = usize::try_from(arg_integer(l, idx + 1)? as i32).unwrap_or(0);
                if p.is_null() || t == ffi::LUA_TUSERDATA && size > ffi::lua_rawlen(l, idx) {
                    return Err(Raise::arg(idx + 1, format_args!("size out of range")));
                }
                Ok(std::slice::from_raw_parts(p, size))
            }
            _ => Err(Raise::arg(idx, format_args!("Need a string or userdata"))),
        }
    }
}

/// A name argument as C code sees it: up to its first NUL.
fn c_name(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

unsafe fn newproto(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the argument is read before anything is owned; the schema is leaked to
    // a raw pointer before the (non-raising) push.
    unsafe {
        let bundle = arg_bytes(l, 1)?;
        let Some(schema) = Schema::parse(bundle) else {
            return Ok(0);
        };
        ffi::lua_pushlightuserdata(l, Box::into_raw(schema.boxed()).cast());
    }
    Ok(1)
}

unsafe fn deleteproto(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a schema pointer comes from `newproto`'s Box::into_raw and is deleted
    // once (the caller's contract, as upstream's).
    unsafe {
        let p = light(l, 1).cast::<Schema>();
        if p.is_null() {
            return Err(Raise::arg(1, format_args!("Need a sproto object")));
        }
        drop(Box::from_raw(p));
    }
    Ok(0)
}

unsafe extern "C" {
    static mut stdout: *mut libc::FILE;
}

unsafe fn dumpproto(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the schema argument as `arg_schema`; the listing goes to C's stdout, where
    // Lua's `print` writes, so the two stay in order.
    unsafe {
        let text = arg_schema(l, 1, "Need a sproto_type object")?.dump();
        libc::fwrite(text.as_ptr().cast(), 1, text.len(), stdout);
        libc::fflush(stdout);
    }
    Ok(0)
}

unsafe fn querytype(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of arguments; one push that allocates nothing.
    unsafe {
        let schema = arg_schema(l, 1, "Need a sproto object")?;
        let name = c_name(arg_bytes(l, 2)?);
        match schema.find_type(name) {
            Some(ty) => {
                ffi::lua_pushlightuserdata(l, (ty as *const Type).cast_mut().cast());
                Ok(1)
            }
            None => Ok(0),
        }
    }
}

unsafe fn encode(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live state; the encoder owns nothing, so the Lua errors
    // of metamethods may unwind through it.
    unsafe {
        let Some((schema, ty)) = arg_type(l, 1) else {
            if ffi::lua_type(l, 2) != ffi::LUA_TNIL {
                return Err(Raise::expected(l, 2, ffi::LUA_TNIL));
            }
            ffi::lua_pushstring(l, c"".as_ptr());
            return Ok(1);
        };
        ffi::lua_settop(l, 2);
        let names = names::push(l, ffi::lua_upvalueindex(2), schema);
        let mut out = Scratch::take(l);
        encode::encode(l, schema, ty, 2, names, &mut out)?;
        push_bytes(l, out.bytes());
        out.give_back();
    }
    Ok(1)
}

unsafe fn decode(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the input stays on the stack (or is the caller's memory) while the
    // decoder, which owns nothing, builds tables.
    unsafe {
        let Some((schema, ty)) = arg_type(l, 1) else {
            return Ok(0);
        };
        let data = arg_buffer(l, 2)?;
        if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
            let announced = data
                .get(..2)
                .map_or(0, |w| u16::from_le_bytes([w[0], w[1]]));
            ffi::lua_createtable(l, 0, ty.fields.len().min(announced.into()) as c_int);
        }
        let result = ffi::lua_gettop(l);
        let names = names::push(l, ffi::lua_upvalueindex(1), schema);
        let used = decode::decode(l, schema, ty, data, result, names)?;
        ffi::lua_settop(l, result);
        ffi::lua_pushinteger(l, used as ffi::lua_Integer);
    }
    Ok(2)
}

unsafe fn lpack(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the input is read-only while the buffer, another object, is written.
    unsafe {
        let src = arg_buffer(l, 1)?;
        let mut out = Scratch::take(l);
        out.reserve(packed_bound(src.len()))?;
        out.len = pack(src, out.block());
        push_bytes(l, out.bytes());
        out.give_back();
    }
    Ok(1)
}

unsafe fn lunpack(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: as `lpack`.
    unsafe {
        let src = arg_buffer(l, 1)?;
        let len = unpacked_len(src).map_err(|_| raise!("Invalid unpack stream"))?;
        let mut out = Scratch::take(l);
        out.reserve(len)?;
        unpack(src, &mut out.block()[..len]);
        out.len = len;
        push_bytes(l, out.bytes());
        out.give_back();
    }
    Ok(1)
}

/// Pushes a type pointer, or nil.
unsafe fn push_type(l: *mut lua_State, schema: &Schema, index: Option<usize>) {
    // SAFETY: one push that allocates nothing.
    unsafe {
        match index {
            Some(i) => {
                ffi::lua_pushlightuserdata(l, (&schema.types[i] as *const Type).cast_mut().cast())
            }
            None => ffi::lua_pushnil(l),
        }
    }
}

unsafe fn protocol(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of arguments and pushes on a live state.
    unsafe {
        let schema = arg_schema(l, 1, "Need a sproto_type object")?;
        let tag = if ffi::lua_type(l, 2) == ffi::LUA_TNUMBER {
            let tag = ffi::lua_tointegerx(l, 2, std::ptr::null_mut()) as i32;
            let Some(p) = schema.protocol_by_tag(tag) else {
                return Ok(0);
            };
            ffi::lua_pushstring(l, p.name.as_ptr());
            tag
        } else {
            let Some(name) = crate::lua::stack::to_bytes(l, 2) else {
                return Err(Raise::arg(2, format_args!("Should be number or string")));
            };
            let Some(p) = schema.find_protocol(c_name(name)) else {
                return Ok(0);
            };
            ffi::lua_pushinteger(l, p.tag.into());
            p.tag
        };
        let p = schema.protocol_by_tag(tag);
        push_type(l, schema, p.and_then(|p| p.request));
        match p {
            Some(p) if p.response.is_none() && p.confirm => {
                ffi::lua_pushlightuserdata(l, std::ptr::null_mut())
            }
            _ => push_type(l, schema, p.and_then(|p| p.response)),
        }
    }
    Ok(3)
}

unsafe fn default(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: pushes on a live state; nothing is owned.
    unsafe {
        let Some((schema, ty)) = arg_type(l, 1) else {
            return Err(Raise::arg(1, format_args!("Need a sproto_type object")));
        };
        ffi::lua_createtable(l, 0, ty.fields.len() as c_int);
        for f in ty.fields.iter() {
            ffi::lua_pushstring(l, f.name.as_ptr());
            let struct_name = schema.types.get(f.subtype).map(|t| t.name.as_ptr());
            if f.array {
                ffi::lua_createtable(l, 0, 1);
            }
            match f.kind {
                INTEGER if f.extra != 0 => ffi::lua_pushnumber(l, 0.0),
                INTEGER => ffi::lua_pushinteger(l, 0),
                DOUBLE => ffi::lua_pushnumber(l, 0.0),
                BOOLEAN => ffi::lua_pushboolean(l, 0),
                STRING => {
                    ffi::lua_pushstring(l, c"".as_ptr());
                }
                _ if f.array => {
                    ffi::lua_pushstring(l, struct_name.unwrap_or(c"".as_ptr()));
                }
                _ => {
                    ffi::lua_createtable(l, 0, 1);
                    ffi::lua_pushstring(l, struct_name.unwrap_or(c"".as_ptr()));
                    ffi::lua_setfield(l, -2, c"__type".as_ptr());
                }
            }
            if f.array {
                ffi::lua_setfield(l, -2, c"__array".as_ptr());
            }
            ffi::lua_rawset(l, -3);
        }
    }
    Ok(1)
}

/// A slot number argument, checked as upstream (`int` arithmetic included).
unsafe fn arg_slot(l: *mut lua_State, idx: c_int) -> Result<usize, Raise> {
    // SAFETY: forwarded.
    let index = unsafe { arg_opt_integer(l, idx, 0) }? as i32;
    usize::try_from(index)
        .ok()
        .filter(|&i| i < SLOTS)
        .ok_or(raise!("Invalid global slot index {index}"))
}

unsafe fn saveproto(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of arguments.
    unsafe {
        let p = light(l, 1).cast::<Schema>();
        let slot = arg_slot(l, 2)?;
        SLOT[slot].store(p, Ordering::Release);
    }
    Ok(0)
}

unsafe fn loadproto(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reads of arguments; one push that allocates nothing.
    unsafe {
        let slot = arg_slot(l, 1)?;
        let p = SLOT[slot].load(Ordering::Acquire);
        if p.is_null() {
            return Err(raise!("nil sproto at index {slot}"));
        }
        ffi::lua_pushlightuserdata(l, p.cast());
    }
    Ok(1)
}

/// `require "sproto.core"`.
///
/// # Safety
/// Called by Lua as a C function.
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    let plain: [(&std::ffi::CStr, CFunction); 8] = [
        (c"newproto", lua_fn!(newproto)),
        (c"deleteproto", lua_fn!(deleteproto)),
        (c"dumpproto", lua_fn!(dumpproto)),
        (c"querytype", lua_fn!(querytype)),
        (c"protocol", lua_fn!(protocol)),
        (c"loadproto", lua_fn!(loadproto)),
        (c"saveproto", lua_fn!(saveproto)),
        (c"default", lua_fn!(default)),
    ];
    let buffered: [(&std::ffi::CStr, CFunction); 2] =
        [(c"pack", lua_fn!(lpack)), (c"unpack", lua_fn!(lunpack))];
    // SAFETY: stack work on a live state.
    unsafe {
        crate::lua::stack::new_lib(l, &plain);
        // a buffer upvalue starts empty: the first call makes it
        for (name, f) in buffered {
            ffi::lua_pushnil(l);
            ffi::lua_pushcclosure(l, f, 1);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        names::new_cache(l);
        ffi::lua_pushnil(l);
        ffi::lua_pushvalue(l, -2);
        ffi::lua_pushcclosure(l, lua_fn!(encode), 2);
        ffi::lua_setfield(l, -3, c"encode".as_ptr());
        ffi::lua_pushcclosure(l, lua_fn!(decode), 1);
        ffi::lua_setfield(l, -2, c"decode".as_ptr());
    }
    1
}
