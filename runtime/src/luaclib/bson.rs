//! `bson`: BSON documents for the MongoDB driver (`skynet.db.mongo`).
//!
//! `encode(t)` / `encode_order(k1, v1, ...)` build a document in a full userdata (metatable
//! `bson`: `:decode()`, `:makeindex()`, `#`, `tostring`, and `doc.key = v` replacing a
//! fixed-size field in place once `makeindex` ran). `decode(ud)` turns a document (full or
//! light userdata) back into a table. Values with no Lua counterpart are strings starting
//! with a zero byte followed by the BSON type byte (`null`, `minkey`, `maxkey`, `date`,
//! `timestamp`, `regex`, `binary`, `objectid`, `int64`, and the unsupported JS code /
//! symbol / DB pointer kinds, kept raw); `type(v)` names such a value and unpacks it.
//!
//! Layouts of those strings (after the `\0, type` prefix): date = `u32` seconds; timestamp =
//! `u32` increment, `u32` seconds; regex = pattern `\0` options `\0`; binary = subtype byte,
//! data; objectid = 12 bytes; int64 = `i64`; all little-endian.
//!
//! Encoding runs under `lua_pcall` (metamethods such as `__pairs`, `__len` and `__index`
//! may raise), with the output buffer owned by the caller outside the protected call, so a
//! Lua error never skips a destructor. Our own errors travel as `Err(String)` and are raised
//! once nothing else is owned. Decoding checks every length against the bytes it has and
//! raises `Invalid bson block ...` instead of reading past the end.

use crate::lua::stack::{check_bytes, new_lib, push_bytes, raise, raise_top, to_bytes, type_name};
use crate::strtol::strtol;
use mlua::ffi::{self, lua_State};
use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

const T_REAL: u8 = 1;
const T_STRING: u8 = 2;
const T_DOCUMENT: u8 = 3;
const T_ARRAY: u8 = 4;
const T_BINARY: u8 = 5;
const T_OBJECTID: u8 = 7;
const T_BOOLEAN: u8 = 8;
const T_DATE: u8 = 9;
const T_NULL: u8 = 10;
const T_REGEX: u8 = 11;
const T_DBPOINTER: u8 = 12;
const T_JSCODE: u8 = 13;
const T_SYMBOL: u8 = 14;
const T_CODEWS: u8 = 15;
const T_INT32: u8 = 16;
const T_TIMESTAMP: u8 = 17;
const T_INT64: u8 = 18;
const T_MINKEY: u8 = 255;
const T_MAXKEY: u8 = 127;

/// `makeindex` packs a field as `type | offset << TYPE_SHIFT`.
const TYPE_SHIFT: u32 = 5;
/// Nesting limit while encoding (also stops reference cycles).
const MAX_DEPTH: u32 = 128;
/// Nesting limit while decoding (keeps the native stack bounded on hostile input).
const MAX_DECODE_DEPTH: u32 = 256;
/// Metatable name of encoded documents.
const META: &CStr = c"bson";

type Res<T = ()> = Result<T, String>;

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/// Whether `s` is UTF-8 as upstream checks it: well-formed sequences of at most four bytes,
/// no overlong forms, at most U+10FFFF (surrogate code points are accepted).
fn utf8_ok(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c < 0x80 {
            i += 1;
            continue;
        }
        let (n, min, mut v) = match c {
            0xC0..=0xDF => (1, 0x80, u32::from(c & 0x1F)),
            0xE0..=0xEF => (2, 0x800, u32::from(c & 0x0F)),
            0xF0..=0xF7 => (3, 0x1_0000, u32::from(c & 0x07)),
            _ => return false,
        };
        if i + n >= s.len() {
            return false;
        }
        for &cc in &s[i + 1..=i + n] {
            if cc & 0xC0 != 0x80 {
                return false;
            }
            v = (v << 6) | u32::from(cc & 0x3F);
        }
        if v < min || v > 0x10_FFFF {
            return false;
        }
        i += n + 1;
    }
    true
}

/// Appends `s` and a terminating zero after checking it is UTF-8.
fn put_cstr(buf: &mut Vec<u8>, s: &[u8]) -> Res {
    if !utf8_ok(s) {
        return Err("Invalid utf8 string".to_owned());
    }
    buf.extend_from_slice(s);
    buf.push(0);
    Ok(())
}

fn put_key(buf: &mut Vec<u8>, t: u8, key: &[u8]) -> Res {
    buf.push(t);
    put_cstr(buf, key)
}

/// Reserves a length slot and returns its offset.
fn begin(buf: &mut Vec<u8>) -> usize {
    let off = buf.len();
    buf.extend_from_slice(&[0; 4]);
    off
}

/// Terminates the document started at `off` and fills in its length.
fn finish(buf: &mut Vec<u8>, off: usize) -> Res {
    buf.push(0);
    let len = i32::try_from(buf.len() - off).map_err(|_| "bson document too large")?;
    buf[off..off + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// The decimal form of `i` in `out`, for array keys.
fn num_key(mut i: u64, out: &mut [u8; 20]) -> &[u8] {
    let mut p = out.len();
    loop {
        p -= 1;
        out[p] = b'0' + (i % 10) as u8;
        i /= 10;
        if i == 0 {
            break;
        }
    }
    &out[p..]
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Encodes one of the `\0 type ...` strings as field `key`.
fn put_special(buf: &mut Vec<u8>, key: &[u8], s: &[u8]) -> Res {
    let t = s[1];
    let body = &s[2..];
    put_key(buf, t, key)?;
    match t {
        T_BINARY => {
            let Some(n) = body.len().checked_sub(1) else {
                return Err("Invalid binary".to_owned());
            };
            let n = i32::try_from(n).map_err(|_| "binary too large")?;
            buf.extend_from_slice(&n.to_le_bytes());
            buf.extend_from_slice(body); // subtype, then data
        }
        T_OBJECTID => {
            if body.len() != 12 {
                let shown = body.split(|&b| b == 0).next().unwrap_or(&[]);
                return Err(format!(
                    "Invalid object id {}",
                    String::from_utf8_lossy(shown)
                ));
            }
            buf.extend_from_slice(body);
        }
        T_JSCODE | T_DBPOINTER | T_SYMBOL | T_CODEWS => buf.extend_from_slice(body),
        T_DATE => {
            if body.len() != 4 {
                return Err("Invalid date".to_owned());
            }
            let ms = i64::from(le_u32(body)) * 1000;
            buf.extend_from_slice(&ms.to_le_bytes());
        }
        T_TIMESTAMP => {
            if body.len() != 8 {
                return Err("Invalid timestamp".to_owned());
            }
            buf.extend_from_slice(body); // increment, then seconds
        }
        T_REGEX => {
            // pattern \0 options \0: split at the last zero before the terminator
            let inner = match body.split_last() {
                Some((0, inner)) => inner,
                _ => return Err("Invalid regex".to_owned()),
            };
            let Some(z) = inner.iter().rposition(|&b| b == 0) else {
                return Err("Invalid regex".to_owned());
            };
            put_cstr(buf, &inner[..z])?;
            put_cstr(buf, &inner[z + 1..])?;
        }
        T_MINKEY | T_MAXKEY | T_NULL => {}
        T_INT64 => {
            if body.len() != 8 {
                return Err("Invalid int64".to_owned());
            }
            buf.extend_from_slice(body);
        }
        _ => return Err(format!("Invalid subtype {t}")),
    }
    Ok(())
}

/// Encodes the value on top of the stack as field `key`; leaves the stack as it was.
///
/// # Safety
/// `l` must be a valid Lua state inside a protected call; `key` must stay alive (it
/// borrows a stack slot below the value). Metamethods may raise; nothing here owns a
/// value with a destructor.
unsafe fn append_one(l: *mut lua_State, buf: &mut Vec<u8>, key: &[u8], depth: u32) -> Res {
    // SAFETY: stack reads on a live state; userdata bytes are read within their size.
    unsafe {
        match ffi::lua_type(l, -1) {
            ffi::LUA_TNUMBER => {
                if ffi::lua_isinteger(l, -1) != 0 {
                    let i = ffi::lua_tointeger(l, -1);
                    match i32::try_from(i) {
                        Ok(v) => {
                            put_key(buf, T_INT32, key)?;
                            buf.extend_from_slice(&v.to_le_bytes());
                        }
                        Err(_) => {
                            put_key(buf, T_INT64, key)?;
                            buf.extend_from_slice(&i.to_le_bytes());
                        }
                    }
                } else {
                    put_key(buf, T_REAL, key)?;
                    buf.extend_from_slice(&ffi::lua_tonumber(l, -1).to_le_bytes());
                }
            }
            ffi::LUA_TUSERDATA | ffi::LUA_TLIGHTUSERDATA => {
                let doc = userdata_doc(l, -1)?;
                put_key(buf, T_DOCUMENT, key)?;
                buf.extend_from_slice(doc);
            }
            ffi::LUA_TSTRING => {
                let s = to_bytes(l, -1).unwrap_or(&[]);
                if s.len() > 1 && s[0] == 0 {
                    put_special(buf, key, s)?;
                } else {
                    put_key(buf, T_STRING, key)?;
                    let n = i32::try_from(s.len() + 1).map_err(|_| "string too large")?;
                    buf.extend_from_slice(&n.to_le_bytes());
                    put_cstr(buf, s)?;
                }
            }
            ffi::LUA_TTABLE => append_table(l, buf, key, depth + 1)?,
            ffi::LUA_TBOOLEAN => {
                put_key(buf, T_BOOLEAN, key)?;
                buf.push(u8::from(ffi::lua_toboolean(l, -1) != 0));
            }
            ffi::LUA_TNIL => {
                return Err("Bson array has a hole (nil), Use bson.null instead".to_owned())
            }
            _ => return Err(format!("Invalid value type : {}", type_name(l, -1))),
        }
    }
    Ok(())
}

/// The BSON document a (full or light) userdata at `idx` points at.
///
/// # Safety
/// `l` must be a valid Lua state. A light userdata must point at a BSON document (its
/// length prefix is trusted); a full userdata is bounded by its size.
unsafe fn userdata_doc<'a>(l: *mut lua_State, idx: c_int) -> Res<&'a [u8]> {
    // SAFETY: the pointer is a userdata block of `rawlen` bytes (full) or a document the
    // caller vouches for (light); every read stays within the computed length.
    unsafe {
        let p = ffi::lua_touserdata(l, idx) as *const u8;
        if p.is_null() {
            return Err("Invalid bson document (null)".to_owned());
        }
        let full = ffi::lua_type(l, idx) == ffi::LUA_TUSERDATA;
        let avail = ffi::lua_rawlen(l, idx);
        if full && avail < 5 {
            return Err(format!("Invalid bson block ({avail}:5)"));
        }
        let len = le_u32(std::slice::from_raw_parts(p, 4)) as i32;
        if len < 5 || (full && len as usize > avail) {
            return Err(format!("Invalid bson document length {len}"));
        }
        Ok(std::slice::from_raw_parts(p, len as usize))
    }
}

/// Encodes the table on top of the stack as field `key` (array or document).
///
/// # Safety
/// As [`append_one`].
unsafe fn append_table(l: *mut lua_State, buf: &mut Vec<u8>, key: &[u8], depth: u32) -> Res {
    if depth > MAX_DEPTH {
        return Err("Too depth while encoding bson".to_owned());
    }
    // SAFETY: stack work on a live state in a protected call.
    unsafe {
        ffi::luaL_checkstack(l, 16, std::ptr::null());
        if ffi::luaL_getmetafield(l, -1, c"__len".as_ptr()) != ffi::LUA_TNIL {
            ffi::lua_pushvalue(l, -2);
            ffi::lua_call(l, 1, 1);
            if ffi::lua_isinteger(l, -1) == 0 {
                return Err("__len should return integer".to_owned());
            }
            let n = ffi::lua_tointeger(l, -1);
            ffi::lua_pop(l, 1);
            put_key(buf, T_ARRAY, key)?;
            pack_array(l, buf, depth, n)
        } else if ffi::luaL_getmetafield(l, -1, c"__pairs".as_ptr()) != ffi::LUA_TNIL {
            put_key(buf, T_DOCUMENT, key)?;
            pack_meta_dict(l, buf, depth)
        } else if is_rawarray(l) {
            put_key(buf, T_ARRAY, key)?;
            pack_array(l, buf, depth, ffi::lua_rawlen(l, -1) as i64)
        } else {
            put_key(buf, T_DOCUMENT, key)?;
            pack_dict(l, buf, depth)
        }
    }
}

/// Whether the table on top is encoded as an array: its first key (in `next` order) is 1,
/// or an integer within its border.
///
/// # Safety
/// `l` must be a valid Lua state with a table on top.
unsafe fn is_rawarray(l: *mut lua_State) -> bool {
    // SAFETY: stack work on a live state.
    unsafe {
        ffi::lua_pushnil(l);
        if ffi::lua_next(l, -2) == 0 {
            return false;
        }
        let first = if ffi::lua_isinteger(l, -2) != 0 {
            ffi::lua_tointeger(l, -2)
        } else {
            0
        };
        ffi::lua_pop(l, 2);
        if first <= 1 {
            first > 0
        } else {
            first as u64 <= ffi::lua_rawlen(l, -1) as u64
        }
    }
}

/// Array body of the table on top: elements `1..=n` (through `__index`) keyed "0".."n-1".
///
/// # Safety
/// As [`append_one`].
unsafe fn pack_array(l: *mut lua_State, buf: &mut Vec<u8>, depth: u32, n: i64) -> Res {
    let off = begin(buf);
    for i in 1..=n.max(0) {
        let mut tmp = [0u8; 20];
        let key = num_key((i - 1) as u64, &mut tmp);
        // SAFETY: stack work on a live state in a protected call.
        unsafe {
            ffi::lua_geti(l, -1, i);
            append_one(l, buf, key, depth)?;
            ffi::lua_pop(l, 1);
        }
    }
    finish(buf, off)
}

/// Encodes the pair `key (-2), value (-1)` and pops the value.
///
/// # Safety
/// As [`append_one`].
unsafe fn pack_pair(l: *mut lua_State, buf: &mut Vec<u8>, depth: u32) -> Res {
    // SAFETY: stack work on a live state in a protected call.
    unsafe {
        match ffi::lua_type(l, -2) {
            ffi::LUA_TNUMBER => Err("Bson dictionary's key can't be number".to_owned()),
            ffi::LUA_TSTRING => {
                let key = to_bytes(l, -2).unwrap_or(&[]);
                append_one(l, buf, key, depth)?;
                ffi::lua_pop(l, 1);
                Ok(())
            }
            _ => Err(format!("Invalid key type : {}", type_name(l, -2))),
        }
    }
}

/// Document body of the table on top, in `next` order.
///
/// # Safety
/// As [`append_one`].
unsafe fn pack_dict(l: *mut lua_State, buf: &mut Vec<u8>, depth: u32) -> Res {
    let off = begin(buf);
    // SAFETY: stack work on a live state in a protected call.
    unsafe {
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, -2) != 0 {
            pack_pair(l, buf, depth)?;
        }
    }
    finish(buf, off)
}

/// Document body of the object below its `__pairs` function (on top): iterates with the
/// returned `next, state, key` triple and pops the function.
///
/// # Safety
/// As [`append_one`].
unsafe fn pack_meta_dict(l: *mut lua_State, buf: &mut Vec<u8>, depth: u32) -> Res {
    let off = begin(buf);
    // SAFETY: stack work on a live state in a protected call.
    unsafe {
        ffi::lua_pushvalue(l, -2);
        ffi::lua_call(l, 1, 3); // obj, f, s, k
        loop {
            ffi::lua_pushvalue(l, -3);
            ffi::lua_pushvalue(l, -3);
            ffi::lua_pushvalue(l, -3);
            ffi::lua_call(l, 2, 2); // obj, f, s, k, k', v
            ffi::lua_rotate(l, -3, -1);
            ffi::lua_pop(l, 1); // obj, f, s, k', v
            if ffi::lua_type(l, -2) == ffi::LUA_TNIL {
                ffi::lua_pop(l, 4);
                break;
            }
            pack_pair(l, buf, depth)?;
        }
    }
    finish(buf, off)
}

/// Body of `encode`, run under `lua_pcall`: (table, light userdata → `Vec<u8>`).
unsafe extern "C-unwind" fn encode_protected(l: *mut lua_State) -> c_int {
    // SAFETY: `l_encode` passes a pointer to its live buffer as argument 2; the buffer is
    // owned outside this protected call, so raising here skips no destructor.
    unsafe {
        let buf = &mut *(ffi::lua_touserdata(l, 2) as *mut Vec<u8>);
        ffi::lua_settop(l, 1);
        let r = if ffi::luaL_getmetafield(l, 1, c"__pairs".as_ptr()) != ffi::LUA_TNIL {
            pack_meta_dict(l, buf, 0)
        } else {
            pack_dict(l, buf, 0)
        };
        if let Err(msg) = r {
            raise(l, msg);
        }
        new_document(l, buf);
    }
    1
}

/// Body of `encode_order`, run under `lua_pcall`: (k1, v1, ..., light userdata).
unsafe extern "C-unwind" fn encode_order_protected(l: *mut lua_State) -> c_int {
    // SAFETY: as `encode_protected`.
    unsafe {
        let n = ffi::lua_gettop(l) - 1;
        let buf = &mut *(ffi::lua_touserdata(l, n + 1) as *mut Vec<u8>);
        ffi::lua_settop(l, n);
        let r = (|| -> Res {
            let off = begin(buf);
            let mut i = 1;
            while i < n {
                let t = ffi::lua_type(l, i);
                if t != ffi::LUA_TSTRING && t != ffi::LUA_TNUMBER {
                    return Err(format!("Argument {i} need a string"));
                }
                let key = to_bytes(l, i).unwrap_or(&[]);
                ffi::lua_pushvalue(l, i + 1);
                append_one(l, buf, key, 0)?;
                ffi::lua_pop(l, 1);
                i += 2;
            }
            finish(buf, off)
        })();
        if let Err(msg) = r {
            raise(l, msg);
        }
        new_document(l, buf);
    }
    1
}

/// Pushes a `bson` userdata holding `doc` (one user value slot for `makeindex`).
///
/// # Safety
/// `l` must be a valid Lua state with stack room.
unsafe fn new_document(l: *mut lua_State, doc: &[u8]) {
    // SAFETY: the new block has `doc.len()` bytes.
    unsafe {
        let p = ffi::lua_newuserdatauv(l, doc.len(), 1) as *mut u8;
        std::ptr::copy_nonoverlapping(doc.as_ptr(), p, doc.len());
        set_meta(l);
    }
}

/// Runs `f` under `lua_pcall` with the values from stack index 1 up and a pointer to a
/// fresh buffer; the buffer is dropped before any error is re-raised.
///
/// # Safety
/// `l` must be a valid Lua state; `f` must leave one result.
unsafe fn run_encoder(l: *mut lua_State, f: ffi::lua_CFunction) -> c_int {
    // SAFETY: stack work on a live state (a C function has LUA_MINSTACK free slots).
    let n = unsafe {
        let n = ffi::lua_gettop(l);
        ffi::lua_pushcfunction(l, f);
        ffi::lua_insert(l, 1);
        n
    };
    let mut buf: Vec<u8> = Vec::with_capacity(64);
    // SAFETY: the buffer outlives the protected call, which catches every error; only the
    // protected call uses it, through the light userdata.
    let status = unsafe {
        ffi::lua_pushlightuserdata(l, &mut buf as *mut Vec<u8> as *mut c_void);
        ffi::lua_pcall(l, n + 1, 1, 0)
    };
    drop(buf);
    if status != ffi::LUA_OK {
        // SAFETY: the buffer is gone; the error object is on top.
        unsafe { raise_top(l) }
    }
    1
}

unsafe extern "C-unwind" fn l_encode(l: *mut lua_State) -> c_int {
    // SAFETY: argument check before anything is owned.
    unsafe {
        ffi::lua_settop(l, 1);
        ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
        run_encoder(l, encode_protected)
    }
}

unsafe extern "C-unwind" fn l_encode_order(l: *mut lua_State) -> c_int {
    // SAFETY: argument check before anything is owned.
    unsafe {
        if ffi::lua_gettop(l) % 2 != 0 {
            raise(l, "Invalid ordered dict".to_owned());
        }
        run_encoder(l, encode_order_protected)
    }
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// A bounds-checked cursor over document bytes.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: i64) -> Res<&'a [u8]> {
        match usize::try_from(n) {
            Ok(n) if n <= self.data.len() => {
                let (head, tail) = self.data.split_at(n);
                self.data = tail;
                Ok(head)
            }
            _ => Err(format!("Invalid bson block ({}:{n})", self.data.len())),
        }
    }

    fn byte(&mut self) -> Res<u8> {
        Ok(self.bytes(1)?[0])
    }

    fn i32(&mut self) -> Res<i32> {
        Ok(le_u32(self.bytes(4)?) as i32)
    }

    fn i64(&mut self) -> Res<i64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_le_bytes(a))
    }

    fn cstr(&mut self) -> Res<&'a [u8]> {
        let Some(z) = self.data.iter().position(|&b| b == 0) else {
            return Err("Invalid bson block : cstring".to_owned());
        };
        let s = &self.data[..z];
        self.data = &self.data[z + 1..];
        Ok(s)
    }
}

/// Pushes the concatenation of `parts` as one string.
///
/// # Safety
/// `l` must be a valid Lua state.
unsafe fn push_concat(l: *mut lua_State, parts: &[&[u8]]) {
    // SAFETY: plain pushes and one concat on a live state.
    unsafe {
        ffi::luaL_checkstack(l, parts.len() as c_int, std::ptr::null());
        for p in parts {
            push_bytes(l, p);
        }
        ffi::lua_concat(l, parts.len() as c_int);
    }
}

/// Reads a document (array when `array`) from `r` and pushes it as a table.
///
/// # Safety
/// `l` must be a valid Lua state in a protected call.
unsafe fn unpack_dict(l: *mut lua_State, r: &mut Reader, array: bool, depth: u32) -> Res {
    if depth > MAX_DECODE_DEPTH {
        return Err("Too depth while decoding bson".to_owned());
    }
    let sz = r.i32()?;
    if sz < 5 {
        return Err(format!("Invalid bson document length {sz}"));
    }
    let mut t = Reader {
        data: r.bytes(i64::from(sz) - 5)?,
    };
    if r.byte()? != 0 {
        return Err("Invalid document end".to_owned());
    }
    // SAFETY: stack work on a live state; every slice pushed lies within the document.
    unsafe {
        ffi::luaL_checkstack(l, 16, std::ptr::null());
        ffi::lua_createtable(l, 0, 0);
        while !t.data.is_empty() {
            let bt = t.byte()?;
            let key = t.cstr()?;
            if array {
                ffi::lua_pushinteger(l, (strtol(key, 10).0 as i32).wrapping_add(1).into());
            } else {
                push_bytes(l, key);
            }
            match bt {
                T_REAL => ffi::lua_pushnumber(l, f64::from_bits(t.i64()? as u64)),
                T_BOOLEAN => ffi::lua_pushboolean(l, c_int::from(t.byte()? != 0)),
                T_STRING => {
                    let n = t.i32()?;
                    if n <= 0 {
                        return Err(format!("Invalid bson string , length = {n}"));
                    }
                    let s = t.bytes(n.into())?;
                    push_bytes(l, &s[..s.len() - 1]);
                }
                T_DOCUMENT => unpack_dict(l, &mut t, false, depth + 1)?,
                T_ARRAY => unpack_dict(l, &mut t, true, depth + 1)?,
                T_BINARY => {
                    let n = t.i32()?;
                    let sub = t.byte()?;
                    let data = t.bytes(n.into())?;
                    push_concat(l, &[&[0, T_BINARY, sub], data]);
                }
                T_OBJECTID => push_concat(l, &[&[0, T_OBJECTID], t.bytes(12)?]),
                T_DATE => {
                    let secs = (t.i64()? / 1000) as u32;
                    push_concat(l, &[&[0, T_DATE], &secs.to_le_bytes()]);
                }
                T_MINKEY | T_MAXKEY | T_NULL => push_bytes(l, &[0, bt]),
                T_REGEX => {
                    let pattern = t.cstr()?;
                    let options = t.cstr()?;
                    push_concat(l, &[&[0, T_REGEX], pattern, &[0], options, &[0]]);
                }
                T_INT32 => ffi::lua_pushinteger(l, t.i32()?.into()),
                T_TIMESTAMP => {
                    let raw = t.bytes(8)?; // increment, seconds
                    push_concat(l, &[&[0, T_TIMESTAMP], raw]);
                }
                T_INT64 => ffi::lua_pushinteger(l, t.i64()?),
                T_DBPOINTER | T_JSCODE | T_SYMBOL | T_CODEWS => {
                    let start = t.data;
                    let n = i64::from(t.i32()?);
                    let rest = match bt {
                        T_DBPOINTER => n + 12,
                        T_CODEWS => n - 4,
                        _ => n,
                    };
                    t.bytes(rest)?;
                    let used = start.len() - t.data.len();
                    push_concat(l, &[&[0, bt], &start[..used]]);
                }
                _ => return Err(format!("Invalid bson type : {bt}")),
            }
            ffi::lua_rawset(l, -3);
        }
    }
    Ok(())
}

/// The document of the userdata at stack index 1, bounded (full) or trusted (light).
///
/// # Safety
/// `l` must be a valid Lua state; index 1 holds a non-null userdata.
unsafe fn arg_document<'a>(l: *mut lua_State) -> Res<&'a [u8]> {
    // SAFETY: forwarded.
    unsafe { userdata_doc(l, 1) }
}

unsafe extern "C-unwind" fn l_decode(l: *mut lua_State) -> c_int {
    // SAFETY: the document slice borrows the userdata at index 1, which stays on the
    // stack; errors are raised once only the message is owned.
    unsafe {
        if ffi::lua_touserdata(l, 1).is_null() {
            return 0;
        }
        let r = arg_document(l).and_then(|doc| unpack_dict(l, &mut Reader { data: doc }, false, 0));
        if let Err(msg) = r {
            raise(l, msg);
        }
    }
    1
}

/// Size of a fixed-size field `makeindex` records (0: not replaceable, just skipped).
fn skip_field(r: &mut Reader, bt: u8) -> Res<usize> {
    Ok(match bt {
        T_INT64 | T_TIMESTAMP | T_DATE | T_REAL => 8,
        T_BOOLEAN => 1,
        T_OBJECTID => 12,
        T_INT32 => 4,
        T_JSCODE | T_SYMBOL | T_STRING => {
            let n = r.i32()?;
            r.bytes(n.into())?;
            0
        }
        T_CODEWS | T_ARRAY | T_DOCUMENT => {
            let n = r.i32()?;
            r.bytes(i64::from(n) - 4)?;
            0
        }
        T_BINARY => {
            let n = r.i32()?;
            r.bytes(i64::from(n) + 1)?;
            0
        }
        T_DBPOINTER => {
            let n = r.i32()?;
            r.bytes(i64::from(n) + 12)?;
            0
        }
        T_MINKEY | T_MAXKEY | T_NULL => 0,
        T_REGEX => {
            r.cstr()?;
            r.cstr()?;
            0
        }
        _ => return Err(format!("Invalid bson type : {bt}")),
    })
}

unsafe extern "C-unwind" fn l_makeindex(l: *mut lua_State) -> c_int {
    // SAFETY: index 1 is a `bson` userdata (checked) whose bytes stay alive on the stack;
    // errors are raised once only the message is owned.
    unsafe {
        ffi::luaL_checkudata(l, 1, META.as_ptr());
        ffi::lua_createtable(l, 0, 0);
        let r = (|| -> Res {
            let doc = arg_document(l)?;
            let mut r = Reader {
                data: &doc[4..doc.len() - 1],
            };
            while !r.data.is_empty() {
                let bt = r.byte()?;
                let key = r.cstr()?;
                let size = skip_field(&mut r, bt)?;
                if size > 0 {
                    let offset = doc.len() - 1 - r.data.len();
                    r.bytes(size as i64)?;
                    let id = i64::from(bt) | (offset as i64) << TYPE_SHIFT;
                    push_bytes(l, key);
                    ffi::lua_pushinteger(l, id);
                    ffi::lua_rawset(l, -3);
                }
            }
            Ok(())
        })();
        if let Err(msg) = r {
            raise(l, msg);
        }
        ffi::lua_setiuservalue(l, 1, 1);
        ffi::lua_settop(l, 1);
    }
    1
}

/// The `\0 type` string at index 3 for replacing a field of type `t`, checked.
///
/// # Safety
/// `l` must be a valid Lua state in a protected call.
unsafe fn replacement<'a>(l: *mut lua_State, t: u8, body_len: usize, what: &str) -> Res<&'a [u8]> {
    // SAFETY: argument check on a live state (raises before anything is owned).
    let data = unsafe { check_bytes(l, 3) };
    if data.len() < 6 || data[0] != 0 || data[1] != t {
        return Err(format!("Type mismatch, need bson type {t}"));
    }
    if data.len() != 2 + body_len {
        return Err(format!("Invalid {what}"));
    }
    Ok(&data[2..])
}

/// The new bytes of a field of type `t` from the value at index 3.
///
/// # Safety
/// `l` must be a valid Lua state in a protected call.
unsafe fn replace_bytes(l: *mut lua_State, t: u8) -> Res<([u8; 12], usize)> {
    let mut out = [0u8; 12];
    // SAFETY: argument reads on a live state; luaL_checknumber raises before anything is
    // owned.
    let n = unsafe {
        match t {
            T_REAL => {
                out[..8].copy_from_slice(&ffi::luaL_checknumber(l, 3).to_le_bytes());
                8
            }
            T_BOOLEAN => {
                out[0] = u8::from(ffi::lua_toboolean(l, 3) != 0);
                1
            }
            T_OBJECTID => {
                out.copy_from_slice(replacement(l, t, 12, "object id")?);
                12
            }
            T_DATE => {
                let b = replacement(l, t, 4, "date")?;
                out[..8].copy_from_slice(&(i64::from(le_u32(b)) * 1000).to_le_bytes());
                8
            }
            T_TIMESTAMP => {
                out[..8].copy_from_slice(replacement(l, t, 8, "timestamp")?);
                8
            }
            T_INT32 | T_INT64 => {
                if ffi::lua_isinteger(l, 3) == 0 {
                    let bits = if t == T_INT32 { 32 } else { 64 };
                    return Err(format!(
                        "{:.6} must be a {bits}bit integer ",
                        ffi::lua_tonumber(l, 3)
                    ));
                }
                let i = ffi::lua_tointeger(l, 3);
                if t == T_INT32 {
                    out[..4].copy_from_slice(&(i as i32).to_le_bytes());
                    4
                } else {
                    out[..8].copy_from_slice(&i.to_le_bytes());
                    8
                }
            }
            _ => return Err(format!("Can't replace type {t}")),
        }
    };
    Ok((out, n))
}

/// `doc.key = value` (`__newindex`): overwrites a field recorded by `makeindex`.
unsafe extern "C-unwind" fn l_replace(l: *mut lua_State) -> c_int {
    // SAFETY: index 1 is a `bson` userdata; the write stays inside its block (checked);
    // errors are raised once only the message is owned.
    unsafe {
        let p = ffi::luaL_checkudata(l, 1, META.as_ptr()) as *mut u8;
        let size = ffi::lua_rawlen(l, 1);
        ffi::lua_getiuservalue(l, 1, 1);
        if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
            raise(l, "call makeindex first".to_owned());
        }
        ffi::lua_pushvalue(l, 2);
        if ffi::lua_rawget(l, -2) != ffi::LUA_TNUMBER {
            let msg = match to_bytes(l, 2) {
                Some(b) => format!("Can't replace key : {}", String::from_utf8_lossy(b)),
                None => "Can't replace key : (null)".to_owned(),
            };
            raise(l, msg);
        }
        let id = ffi::lua_tointeger(l, -1);
        let t = (id & ((1 << TYPE_SHIFT) - 1)) as u8;
        let offset = (id >> TYPE_SHIFT) as usize;
        match replace_bytes(l, t) {
            Ok((bytes, n)) if offset + n <= size => {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(offset), n);
            }
            Ok(_) => raise(l, "Invalid bson index".to_owned()),
            Err(msg) => raise(l, msg),
        }
    }
    0
}

unsafe extern "C-unwind" fn l_tostring(l: *mut lua_State) -> c_int {
    // SAFETY: the userdata block has `rawlen` bytes.
    unsafe {
        let p = ffi::luaL_checkudata(l, 1, META.as_ptr()) as *const u8;
        push_bytes(l, std::slice::from_raw_parts(p, ffi::lua_rawlen(l, 1)));
    }
    1
}

unsafe extern "C-unwind" fn l_len(l: *mut lua_State) -> c_int {
    // SAFETY: stack reads on a live state.
    unsafe { ffi::lua_pushinteger(l, ffi::lua_rawlen(l, 1) as i64) };
    1
}

/// Sets the `bson` metatable (created on first use) on the value on top.
///
/// # Safety
/// `l` must be a valid Lua state.
unsafe fn set_meta(l: *mut lua_State) {
    // SAFETY: stack work on a live state; names are NUL-terminated literals.
    unsafe {
        if ffi::luaL_newmetatable(l, META.as_ptr()) != 0 {
            new_lib(l, &[(c"decode", l_decode), (c"makeindex", l_makeindex)]);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_pushcfunction(l, l_tostring);
            ffi::lua_setfield(l, -2, c"__tostring".as_ptr());
            ffi::lua_pushcfunction(l, l_len);
            ffi::lua_setfield(l, -2, c"__len".as_ptr());
            ffi::lua_pushcfunction(l, l_replace);
            ffi::lua_setfield(l, -2, c"__newindex".as_ptr());
        }
        ffi::lua_setmetatable(l, -2);
    }
}

// ---------------------------------------------------------------------------------------
// Value constructors and `type`
// ---------------------------------------------------------------------------------------

unsafe extern "C-unwind" fn l_to_lightuserdata(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state.
    unsafe { ffi::lua_pushlightuserdata(l, ffi::lua_touserdata(l, 1)) };
    1
}

unsafe extern "C-unwind" fn l_date(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned.
    unsafe {
        let d = ffi::luaL_checkinteger(l, 1) as i32;
        push_concat(l, &[&[0, T_DATE], &d.to_le_bytes()]);
    }
    1
}

unsafe extern "C-unwind" fn l_int64(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned.
    unsafe {
        let d = ffi::luaL_checkinteger(l, 1);
        push_concat(l, &[&[0, T_INT64], &d.to_le_bytes()]);
    }
    1
}

/// Increment used by `timestamp(t)` without an explicit one.
static TIMESTAMP_INC: AtomicU32 = AtomicU32::new(0);

unsafe extern "C-unwind" fn l_timestamp(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned.
    unsafe {
        let d = ffi::luaL_checkinteger(l, 1) as i32;
        let inc = if ffi::lua_type(l, 2) <= ffi::LUA_TNIL {
            TIMESTAMP_INC.fetch_add(1, Ordering::Relaxed)
        } else {
            ffi::lua_tointeger(l, 2) as u32
        };
        push_concat(
            l,
            &[&[0, T_TIMESTAMP], &inc.to_le_bytes(), &d.to_le_bytes()],
        );
    }
    1
}

unsafe extern "C-unwind" fn l_regex(l: *mut lua_State) -> c_int {
    // SAFETY: argument checks raise before anything is owned.
    unsafe {
        let pattern = check_bytes(l, 1);
        let options = if ffi::lua_type(l, 2) <= ffi::LUA_TNIL {
            &[][..]
        } else {
            check_bytes(l, 2)
        };
        push_concat(l, &[&[0, T_REGEX], pattern, &[0], options, &[0]]);
    }
    1
}

unsafe extern "C-unwind" fn l_binary(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned.
    unsafe {
        let data = check_bytes(l, 1);
        push_concat(l, &[&[0, T_BINARY, 0], data]);
    }
    1
}

/// Machine/process part of generated object ids and the shared counter.
fn oid_state() -> &'static ([u8; 5], AtomicU32) {
    static STATE: OnceLock<([u8; 5], AtomicU32)> = OnceLock::new();
    STATE.get_or_init(|| {
        let mut name = [0u8; 256];
        // SAFETY: gethostname writes at most `name.len()` bytes into our buffer.
        let ok = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0;
        let len = if ok {
            name.iter().position(|&b| b == 0).unwrap_or(name.len())
        } else {
            0
        };
        // FNV-1a over the host name
        let h = name[..len].iter().fold(0x811c_9dc5u32, |h, &b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let pid = std::process::id();
        let mut seed = [0u8; 4];
        if getrandom::fill(&mut seed).is_err() {
            seed = (h ^ now_secs() as u32).to_le_bytes();
        }
        let header = [
            h as u8,
            (h >> 8) as u8,
            (h >> 16) as u8,
            pid as u8,
            (pid >> 8) as u8,
        ];
        (header, AtomicU32::new(u32::from_le_bytes(seed)))
    })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Upstream's lenient hex digit: letters continue past `f`, anything else is 0.
fn hex_digit(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'z' => c - b'a' + 10,
        b'A'..=b'Z' => c - b'A' + 10,
        _ => 0,
    }
}

unsafe extern "C-unwind" fn l_objectid(l: *mut lua_State) -> c_int {
    let mut oid = [0u8; 14];
    oid[1] = T_OBJECTID;
    // SAFETY: stack work on a live state; the error text is the only owned value when
    // raised.
    unsafe {
        if ffi::lua_isstring(l, 1) != 0 {
            let s = to_bytes(l, 1).unwrap_or(&[]);
            if s.len() != 24 {
                let msg = format!("Invalid objectid {}", String::from_utf8_lossy(s));
                raise(l, msg);
            }
            for i in 0..12 {
                oid[i + 2] = (hex_digit(s[2 * i]) << 4) | hex_digit(s[2 * i + 1]);
            }
        } else {
            let (header, counter) = oid_state();
            let t = now_secs() as u32;
            let id = counter.fetch_add(1, Ordering::Relaxed);
            oid[2..6].copy_from_slice(&t.to_be_bytes());
            oid[6..11].copy_from_slice(header);
            oid[11..14].copy_from_slice(&id.to_be_bytes()[1..]);
        }
        push_bytes(l, &oid);
    }
    1
}

/// Pushes a type name.
///
/// # Safety
/// `l` must be a valid Lua state.
unsafe fn push_name(l: *mut lua_State, name: &str) {
    // SAFETY: forwarded.
    unsafe { push_bytes(l, name.as_bytes()) }
}

/// `type` for a `\0 t body` string: the name and the unpacked value(s).
///
/// # Safety
/// `l` must be a valid Lua state.
unsafe fn push_subtype(l: *mut lua_State, t: u8, body: &[u8]) -> Res<c_int> {
    // SAFETY: pushes on a live state.
    unsafe {
        Ok(match t {
            T_BINARY => {
                let Some((&sub, data)) = body.split_first() else {
                    return Err("Invalid binary".to_owned());
                };
                push_name(l, "binary");
                push_bytes(l, data);
                ffi::lua_pushinteger(l, sub.into());
                3
            }
            T_OBJECTID => {
                if body.len() != 12 {
                    return Err("Invalid object id".to_owned());
                }
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut out = [0u8; 24];
                for (i, b) in body.iter().enumerate() {
                    out[2 * i] = HEX[usize::from(b >> 4)];
                    out[2 * i + 1] = HEX[usize::from(b & 15)];
                }
                push_name(l, "objectid");
                push_bytes(l, &out);
                2
            }
            T_DATE => {
                if body.len() != 4 {
                    return Err("Invalid date".to_owned());
                }
                push_name(l, "date");
                ffi::lua_pushinteger(l, (le_u32(body) as i32).into());
                2
            }
            T_TIMESTAMP => {
                if body.len() != 8 {
                    return Err("Invalid timestamp".to_owned());
                }
                push_name(l, "timestamp");
                ffi::lua_pushinteger(l, le_u32(&body[4..]).into());
                ffi::lua_pushinteger(l, le_u32(body).into());
                3
            }
            T_REGEX => {
                let inner = body.split_last().map(|(_, inner)| inner);
                let z = inner.and_then(|s| s.iter().rposition(|&b| b == 0).map(|z| (s, z)));
                let Some((s, z)) = z else {
                    return Err("Invalid regex".to_owned());
                };
                push_name(l, "regex");
                push_bytes(l, &s[..z]);
                push_bytes(l, &s[z + 1..]);
                3
            }
            T_MINKEY => {
                push_name(l, "minkey");
                1
            }
            T_MAXKEY => {
                push_name(l, "maxkey");
                1
            }
            T_NULL => {
                push_name(l, "nil");
                1
            }
            T_JSCODE | T_DBPOINTER | T_SYMBOL | T_CODEWS => {
                push_name(l, "unsupported");
                push_bytes(l, body);
                2
            }
            T_INT64 => {
                if body.len() != 8 {
                    return Err("Invalid int64".to_owned());
                }
                let mut a = [0u8; 8];
                a.copy_from_slice(body);
                push_name(l, "int64");
                ffi::lua_pushinteger(l, i64::from_le_bytes(a));
                2
            }
            _ => return Err(format!("Invalid subtype {t}")),
        })
    }
}

unsafe extern "C-unwind" fn l_type(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state; errors are raised once only the message is
    // owned.
    unsafe {
        let name = match ffi::lua_type(l, 1) {
            ffi::LUA_TNUMBER => "number",
            ffi::LUA_TBOOLEAN => "boolean",
            ffi::LUA_TTABLE => "table",
            ffi::LUA_TNIL | ffi::LUA_TNONE => {
                push_name(l, "nil");
                return 1;
            }
            ffi::LUA_TSTRING => {
                let s = to_bytes(l, 1).unwrap_or(&[]);
                if s.len() >= 2 && s[0] == 0 {
                    match push_subtype(l, s[1], &s[2..]) {
                        Ok(n) => return n,
                        Err(msg) => raise(l, msg),
                    }
                }
                "string"
            }
            _ => {
                let msg = format!("Invalid type {}", type_name(l, 1));
                raise(l, msg)
            }
        };
        push_name(l, name);
        ffi::lua_pushvalue(l, 1);
    }
    2
}

/// `require "bson"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state; the names are NUL-terminated literals.
    unsafe {
        new_lib(
            l,
            &[
                (c"encode", l_encode),
                (c"encode_order", l_encode_order),
                (c"date", l_date),
                (c"timestamp", l_timestamp),
                (c"regex", l_regex),
                (c"binary", l_binary),
                (c"objectid", l_objectid),
                (c"int64", l_int64),
                (c"decode", l_decode),
                (c"to_lightuserdata", l_to_lightuserdata),
                (c"type", l_type),
            ],
        );
        for (name, t) in [
            (c"null", T_NULL),
            (c"minkey", T_MINKEY),
            (c"maxkey", T_MAXKEY),
        ] {
            push_bytes(l, &[0, t]);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::testvm::{TestVm, CHECKS};

    /// Test helper `mkdoc(str)`: a `bson` userdata holding exactly the given bytes.
    unsafe extern "C-unwind" fn mkdoc(l: *mut lua_State) -> c_int {
        // SAFETY: argument check, then a copy into a fresh userdata.
        unsafe {
            let s = check_bytes(l, 1);
            new_document(l, s);
        }
        1
    }

    const PRELUDE: &str = r#"
local function i32(n) return string.pack('<i4', n) end
"#;

    fn vm() -> TestVm {
        TestVm::new(&format!("{CHECKS}{PRELUDE}"), &[(c"mkdoc", mkdoc)]).with_module(c"bson", open)
    }

    #[test]
    fn pure_helpers() {
        assert!(utf8_ok(b"plain"));
        assert!(utf8_ok("h\u{e9}llo \u{4e2d} \u{1f600}".as_bytes()));
        assert!(utf8_ok(b"\xed\xa0\x80")); // surrogate: accepted like upstream
        assert!(!utf8_ok(b"\xc0\x80")); // overlong
        assert!(!utf8_ok(b"\xe4\xb8")); // truncated
        assert!(!utf8_ok(b"\x80"));
        assert!(!utf8_ok(b"\xf8\x88\x80\x80\x80"));
        assert!(!utf8_ok(b"\xf4\x90\x80\x80")); // > U+10FFFF
        let mut tmp = [0u8; 20];
        assert_eq!(num_key(0, &mut tmp), b"0");
        assert_eq!(num_key(1234, &mut tmp), b"1234");
        assert_eq!(num_key(u64::MAX, &mut tmp), b"18446744073709551615");
        assert_eq!(strtol(b"12", 10).0, 12);
        assert_eq!(strtol(b"-3x", 10).0, -3);
        assert_eq!(strtol(b"x", 10).0, 0);
        let mut r = Reader { data: b"ab\0\x01" };
        assert_eq!(r.cstr(), Ok(&b"ab"[..]));
        assert!(r.i32().is_err());
        assert_eq!(r.byte(), Ok(1));
        assert!(r.byte().is_err());
        assert!(r.bytes(-1).is_err());
        let mut r = Reader { data: b"abc" };
        assert!(r.cstr().is_err());
    }

    #[test]
    fn byte_exact_documents() {
        vm().check(
            r#"
            eq('\5\0\0\0\0', tostring(bson.encode {}))
            eq('\22\0\0\0\2hello\0\6\0\0\0world\0\0', tostring(bson.encode_order('hello', 'world')))
            eq('\22\0\0\0\2hello\0\6\0\0\0world\0\0', tostring(bson.encode { hello = 'world' }))
            eq('310000000442534f4e002600000002300008000000617765736f6d65000131003333333333331440'
              .. '1032',
              hex(tostring(bson.encode_order('BSON', { 'awesome', 5.05, 1986 }))):sub(1, 84))
            eq('\49\0\0\0\4BSON\0\38\0\0\0\2\48\0\8\0\0\0awesome\0\1\49\0\51\51\51\51\51\51\20\64'
              .. '\16\50\0\194\7\0\0\0\0', tostring(bson.encode_order('BSON', { 'awesome', 5.05, 1986 })))
            local d = bson.encode_order(
              'i', 1, 'I', 1 << 40, 'f', 0.5, 't', true, 'n', bson.null,
              'lo', bson.minkey, 'hi', bson.maxkey, 'd', bson.date(2), 'ts', bson.timestamp(3, 4),
              'r', bson.regex('a.b', 'im'), 'b', bson.binary('xy'),
              'o', bson.objectid('0123456789abcdef01234567'), 'q', bson.int64(5))
            eq(i32(#d) .. '\16i\0' .. i32(1)
              .. '\18I\0' .. string.pack('<i8', 1 << 40)
              .. '\1f\0' .. string.pack('<d', 0.5)
              .. '\8t\0\1' .. '\10n\0' .. '\255lo\0' .. '\127hi\0'
              .. '\9d\0' .. string.pack('<i8', 2000)
              .. '\17ts\0' .. i32(4) .. i32(3)
              .. '\11r\0a.b\0im\0'
              .. '\5b\0' .. i32(2) .. '\0xy'
              .. '\7o\0\1\35\69\103\137\171\205\239\1\35\69\103'
              .. '\18q\0' .. string.pack('<i8', 5)
              .. '\0', tostring(d))
            eq(#tostring(d), #d, '__len')
            -- embedded documents are copied verbatim
            local sub = bson.encode_order('a', 1)
            eq(i32(5 + 3 + #sub) .. '\3s\0' .. tostring(sub) .. '\0', tostring(bson.encode_order('s', sub)))
            eq(tostring(bson.encode_order('s', sub)), tostring(bson.encode_order('s', bson.to_lightuserdata(sub))))
            "#,
        );
    }

    #[test]
    fn round_trip_every_type() {
        vm().check(
            r#"
            local oid = bson.objectid()
            local src = {
              int = 42, neg = -7, big = math.maxinteger, small = math.mininteger, real = 3.25,
              inf = math.huge, str = 'hello', empty = '', utf = 'h\u{e9}\u{1f600}',
              yes = true, no = false, null = bson.null, minkey = bson.minkey, maxkey = bson.maxkey,
              date = bson.date(1700000000), ts = bson.timestamp(1700000000, 9),
              re = bson.regex('^a', 'i'), re2 = bson.regex('x'), bin = bson.binary('\0\1\2'),
              oid = oid, i64 = bson.int64(-3), arr = { 1, 'two', { 3 }, { x = 4 } },
              doc = { a = { b = { c = 'deep' } } }, emptydoc = {},
            }
            local t = bson.decode(bson.encode(src))
            for k, v in pairs(src) do
              if type(v) ~= 'table' and k ~= 'i64' then eq(v, t[k], k) end
            end
            eq(math.type(t.big), 'integer')
            eq(math.type(t.real), 'float')
            eq(-3, t.i64, 'int64 decodes as an integer')
            eq(4, #t.arr); eq(1, t.arr[1]); eq('two', t.arr[2]); eq(3, t.arr[3][1]); eq(4, t.arr[4].x)
            eq('deep', t.doc.a.b.c)
            eq(nil, next(t.emptydoc))
            -- method form and light userdata
            local b = bson.encode(src)
            eq('hello', b:decode().str)
            eq('hello', bson.decode(bson.to_lightuserdata(b)).str)
            -- a string is not a document
            eq(0, select('#', bson.decode('\5\0\0\0\0')))
            eq(0, select('#', bson.decode(nil)))
            -- encode_order keeps its order
            local o = bson.encode_order('z', 1, 'a', 2, 'm', 3)
            eq('\16z\0', tostring(o):sub(5, 7)); eq(2, o:decode().a)
            "#,
        );
    }

    #[test]
    fn type_names() {
        vm().check(
            r#"
            local function tv(...) return table.concat({ ... }, ',', 1, select('#', ...)) end
            local function T(v) return tv(select(2, pcall(function() return bson.type(v) end))) end
            local function names(v) local n = bson.type(v) return n end
            eq('number', names(1)); eq('boolean', names(true)); eq('table', names({}))
            eq('string', names('s')); eq('nil', names(nil)); eq('nil', names(bson.null))
            eq('minkey', names(bson.minkey)); eq('maxkey', names(bson.maxkey))
            local n, a, b = bson.type(bson.date(77)); eq('date', n); eq(77, a)
            n, a, b = bson.type(bson.timestamp(100, 5)); eq('timestamp', n); eq(100, a); eq(5, b)
            n, a, b = bson.type(bson.regex('p', 'o')); eq('regex', n); eq('p', a); eq('o', b)
            n, a, b = bson.type(bson.binary('xyz')); eq('binary', n); eq('xyz', a); eq(0, b)
            n, a = bson.type(bson.objectid('0123456789ABCDEF01234567'))
            eq('objectid', n); eq('0123456789abcdef01234567', a)
            n, a = bson.type(bson.int64(1 << 50)); eq('int64', n); eq(1 << 50, a)
            n, a = bson.type('\0\13code'); eq('unsupported', n); eq('code', a)
            fails('Invalid type function', bson.type, print)
            fails('Invalid subtype 99', bson.type, '\0\99')
            fails('Invalid date', bson.type, '\0\9ab')
            fails('Invalid regex', bson.type, '\0\11')
            fails('Invalid object id', bson.type, '\0\7short')
            -- generated ids differ and carry the current time
            local x, y = bson.objectid(), bson.objectid()
            assert(x ~= y); eq(14, #x)
            local secs = string.unpack('>I4', x, 3)
            assert(math.abs(secs - os.time()) < 5)
            fails('Invalid objectid abc', bson.objectid, 'abc')
            -- timestamps without an increment count up
            local i1 = string.unpack('<I4', bson.timestamp(1), 3)
            local i2 = string.unpack('<I4', bson.timestamp(1), 3)
            eq(i1 + 1, i2)
            "#,
        );
    }

    #[test]
    fn table_shapes() {
        vm().check(
            r#"
            -- __len gives an array through __index
            local arr = setmetatable({}, { __len = function() return 3 end,
              __index = function(_, i) return i * 10 end })
            local t = bson.decode(bson.encode { a = arr })
            eq(3, #t.a); eq(30, t.a[3])
            fails('__len should return integer', bson.encode,
              { a = setmetatable({}, { __len = function() return 1.5 end }) })
            -- __pairs gives a document, also at the top level
            local data = { k = 'v' }
            local obj = setmetatable({}, { __pairs = function() return next, data, nil end })
            eq('v', bson.decode(bson.encode { o = obj }).o.k)
            eq('v', bson.decode(bson.encode(obj)).k)
            -- raw arrays: first key 1 or within the border; else documents
            eq('table', type(bson.decode(bson.encode { a = { 1, 2 } }).a))
            local d = tostring(bson.encode { a = { 1, 2 } })
            eq('\4', d:sub(5, 5), 'array type')
            eq('\3', tostring(bson.encode { a = {} }):sub(5, 5), 'empty is a document')
            fails("Bson dictionary's key can't be number", bson.encode, { a = { [0] = 1 } })
            fails('Bson array has a hole', bson.encode,
              { a = setmetatable({ 1, nil, 3 }, { __len = function() return 3 end }) })
            fails("Invalid key type : boolean", bson.encode, { [true] = 1 })
            fails('Invalid value type : function', bson.encode, { f = print })
            fails('Invalid utf8 string', bson.encode, { s = '\255' })
            fails('Invalid utf8 string', bson.encode, { ['\255'] = 1 })
            fails('bad argument #1', bson.encode, 1)
            -- cycles hit the depth limit
            local c = {}
            c.c = c
            fails('Too depth while encoding bson', bson.encode, c)
            -- errors raised by metamethods pass through
            fails('boom', bson.encode, { a = setmetatable({}, { __pairs = function() error('boom') end }) })
            -- encode_order arguments
            fails('Invalid ordered dict', bson.encode_order, 'a')
            fails('Argument 1 need a string', bson.encode_order, {}, 1)
            fails('Argument 3 need a string', bson.encode_order, 'a', 1, true, 2)
            -- bad special values
            fails('Invalid subtype 99', bson.encode, { x = '\0\99' })
            fails('Invalid date', bson.encode, { x = '\0\9abc' })
            fails('Invalid timestamp', bson.encode, { x = '\0\17abc' })
            fails('Invalid int64', bson.encode, { x = '\0\18abc' })
            fails('Invalid object id', bson.encode, { x = '\0\7abc' })
            fails('Invalid regex', bson.encode, { x = '\0\11ab' })
            fails('Invalid binary', bson.encode, { x = '\0\5' })
            fails('Invalid bson document length', bson.encode, { x = mkdoc('\99\0\0\0\0') })
            -- the module still works after errors
            eq(1, bson.decode(bson.encode { a = 1 }).a)
            "#,
        );
    }

    #[test]
    fn makeindex_and_replace() {
        vm().check(
            r#"
            local b = bson.encode_order('i', 1, 'I', 1 << 40, 'f', 1.5, 't', true,
              'd', bson.date(10), 'ts', bson.timestamp(10, 1), 'o', bson.objectid(), 's', 'str')
            fails('call makeindex first', function() b.i = 2 end)
            eq(b, b:makeindex())
            b.i = 7; b.I = 1 << 41; b.f = 2.5; b.t = false
            b.d = bson.date(20); b.ts = bson.timestamp(30, 2)
            local oid = bson.objectid('aaaaaaaaaaaaaaaaaaaaaaaa'); b.o = oid
            local t = b:decode()
            eq(7, t.i); eq(1 << 41, t.I); eq(2.5, t.f); eq(false, t.t)
            eq(bson.date(20), t.d); eq(bson.timestamp(30, 2), t.ts); eq(oid, t.o); eq('str', t.s)
            fails("Can't replace key : s", function() b.s = 'x' end)
            fails("Can't replace key : zz", function() b.zz = 1 end)
            fails('must be a 32bit integer', function() b.i = 1.5 end)
            fails('must be a 64bit integer', function() b.I = 'x' end)
            fails('Type mismatch, need bson type 9', function() b.d = bson.timestamp(1) end)
            fails('Type mismatch, need bson type 7', function() b.o = 'plain string' end)
            fails('Invalid date', function() b.d = '\0\9abcde' end)
            "#,
        );
    }

    #[test]
    fn bad_documents_raise() {
        vm().check(
            r#"
            local full = tostring(bson.encode_order('a', 1, 's', 'str', 'sub', { x = { 1, 2 } },
              'b', bson.binary('bin'), 'r', bson.regex('p', 'o'), 'o', bson.objectid(),
              'd', bson.date(5), 'ts', bson.timestamp(5), 'f', 0.25, 'q', 1 << 40,
              'n', bson.null, 'c', mkdoc(i32(14) .. '\13c\0' .. i32(2) .. 'x\0\0')))
            eq('x\0', (select(2, bson.type(bson.decode(mkdoc(full)).c.c))):sub(5), 'js code kept raw')
            local failures = 0
            for n = 5, #full - 1 do
              -- truncated, with the prefix and terminator fixed up so the inner reader runs out
              local doc = mkdoc(i32(n) .. full:sub(5, n - 1) .. '\0')
              local ok, e = pcall(bson.decode, doc)
              if not ok then
                failures = failures + 1
                assert(tostring(e):find('Invalid', 1, true), e)
              end
              pcall(doc.makeindex, doc)
              -- plain truncation: the length prefix no longer fits the block
              fails('Invalid bson', bson.decode, mkdoc(full:sub(1, n)))
            end
            assert(failures > #full / 2, 'too few truncations detected: ' .. failures)
            fails('Invalid bson block', bson.decode, mkdoc('\5\0'))
            fails('Invalid bson document length 4', bson.decode, mkdoc(i32(4) .. '\0'))
            fails('Invalid bson document length -1', bson.decode, mkdoc(i32(-1) .. '\0'))
            fails('Invalid document end', bson.decode, mkdoc(i32(5) .. '\1'))
            fails('Invalid bson type : 99', bson.decode, mkdoc(i32(8) .. '\99k\0\0'))
            fails('Invalid bson type : 99', function() mkdoc(i32(8) .. '\99k\0\0'):makeindex() end)
            fails('Invalid bson block : cstring', bson.decode, mkdoc(i32(7) .. '\16k\0'))
            fails('Invalid bson string , length = 0', bson.decode,
              mkdoc(i32(12) .. '\2k\0' .. i32(0) .. '\0'))
            fails('Invalid bson block', bson.decode, mkdoc(i32(16) .. '\2k\0' .. i32(100) .. 'abcd\0'))
            fails('Invalid bson block', bson.decode, mkdoc(i32(16) .. '\5k\0' .. i32(-8) .. '\0abc\0'))
            -- nested documents whose length overruns the parent
            fails('Invalid bson block', bson.decode, mkdoc(i32(13) .. '\3k\0' .. i32(50) .. '\0\0'))
            -- hostile nesting is bounded
            local deep = '\0'
            for i = 1, 300 do deep = i32(#deep + 4 + 3 + 1) .. '\3k\0' .. deep .. '\0' end
            fails('Too depth while decoding bson', bson.decode, mkdoc(deep))
            -- random garbage never crashes
            math.randomseed(7)
            for i = 1, 2000 do
              local n = math.random(0, 40)
              local bytes = {}
              for j = 1, n do
                bytes[j] = string.char(math.random(0, 3) == 0 and math.random(0, 20) or math.random(0, 255))
              end
              local doc = mkdoc(i32(n + 5) .. table.concat(bytes) .. '\0')
              pcall(bson.decode, doc)
              pcall(doc.makeindex, doc)
            end
            "#,
        );
    }
}
