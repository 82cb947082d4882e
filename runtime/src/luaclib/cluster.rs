//! `skynet.cluster.core`: the byte format of cluster links (others.md §4).
//!
//! A link carries packets framed as a 2-byte big-endian length and a body; integers inside
//! bodies are little-endian u32. A message of [`MULTI_PART`] bytes or more travels as a
//! header packet announcing its size, then parts of at most `MULTI_PART` bytes that all
//! carry the request's session. Responses follow the same idea with their own type byte.
//!
//! A framed string over [`SMALL_FRAME`] bytes is built once, in memory from the VM's own
//! allocator, and handed to Lua as an external string ([`push_frame`]): the message bytes
//! are copied exactly once, from the payload into the string Lua keeps. A smaller one is
//! assembled on the stack and copied, which costs less than a second allocation.
//!
//! Requests free the message buffer they are given (always, errors included); responses
//! never do, because the buffer belongs to the caller (clusterd answers with a buffer
//! `skynet.rawcall` returned, which the framework frees).

use crate::lua::raise::{arg_integer, arg_type, lua_fn, raise, Lossy, Raise};
use crate::lua::stack::{self as lua, push_bytes, to_bytes};
use crate::message::{payload_alloc, payload_free};
use mlua::ffi::{self, lua_State};
use std::ffi::{c_char, c_int};
use std::{ptr, slice};

/// Size of one part of a large message, and the smallest message sent in parts.
const MULTI_PART: usize = 0x8000;

/// Request kinds: the first byte of a request body.
const REQ_NUMBER: u8 = 0;
const REQ_MULTI_NUMBER: u8 = 1;
const REQ_PART: u8 = 2;
const REQ_LAST_PART: u8 = 3;
const REQ_TRACE: u8 = 4;
const REQ_MULTI_NUMBER_PUSH: u8 = 0x41;
const REQ_NAME: u8 = 0x80;
const REQ_MULTI_NAME: u8 = 0x81;
const REQ_MULTI_NAME_PUSH: u8 = 0xc1;

/// Response types: the byte after the session.
const RESP_ERROR: u8 = 0;
const RESP_OK: u8 = 1;
const RESP_MULTI_BEGIN: u8 = 2;
const RESP_MULTI_PART: u8 = 3;
const RESP_MULTI_END: u8 = 4;

/// Frames up to this size are assembled on the stack and copied into Lua; a larger one
/// is worth the allocation that saves that second copy.
const SMALL_FRAME: usize = 512;

/// Pushes `len(head + body)` as a big-endian u16, then `head`, then `body`, as one Lua
/// string. The caller keeps the frame under 64 KiB.
///
/// # Safety
/// `l` must be a valid Lua state with a free stack slot. May raise a memory error; the
/// caller's frames must own nothing with a destructor (raw buffers only leak).
unsafe fn push_frame(l: *mut lua_State, head: &[u8], body: &[u8]) -> Result<(), Raise> {
    let size = head.len() + body.len();
    debug_assert!(size <= 0xffff);
    let len = size + 2;
    if len <= SMALL_FRAME {
        let mut frame = [0u8; SMALL_FRAME];
        frame[..2].copy_from_slice(&(size as u16).to_be_bytes());
        frame[2..2 + head.len()].copy_from_slice(head);
        frame[2 + head.len()..len].copy_from_slice(body);
        // SAFETY: Lua copies the bytes; the array is plain data.
        unsafe { push_bytes(l, &frame[..len]) };
        return Ok(());
    }
    let mut ud = ptr::null_mut();
    // SAFETY: the block comes from the VM's allocator with room for the frame and the
    // NUL Lua wants after an external string; once pushed, Lua owns it and frees it with
    // the same allocator (also when making the string fails).
    unsafe {
        let alloc = ffi::lua_getallocf(l, &mut ud);
        let s = alloc(ud, ptr::null_mut(), 0, len + 1) as *mut u8;
        if s.is_null() {
            return Err(raise!("not enough memory"));
        }
        let prefix = (size as u16).to_be_bytes();
        ptr::copy_nonoverlapping(prefix.as_ptr(), s, 2);
        ptr::copy_nonoverlapping(head.as_ptr(), s.add(2), head.len());
        ptr::copy_nonoverlapping(body.as_ptr(), s.add(2 + head.len()), body.len());
        *s.add(len) = 0;
        ffi::lua_pushexternalstring(l, s as *const c_char, len, Some(alloc), ud);
    }
    Ok(())
}

/// A small fixed header: at most a kind, a name and three u32.
struct Head {
    len: usize,
    bytes: [u8; 2 + 255 + 12],
}

impl Head {
    fn new() -> Head {
        Head {
            len: 0,
            bytes: [0; 2 + 255 + 12],
        }
    }

    fn byte(mut self, b: u8) -> Head {
        self.bytes[self.len] = b;
        self.len += 1;
        self
    }

    fn u32(mut self, n: u32) -> Head {
        self.bytes[self.len..self.len + 4].copy_from_slice(&n.to_le_bytes());
        self.len += 4;
        self
    }

    fn name(mut self, name: &[u8]) -> Head {
        self.bytes[self.len] = name.len() as u8;
        self.bytes[self.len + 1..self.len + 1 + name.len()].copy_from_slice(name);
        self.len += 1 + name.len();
        self
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Where a request goes: a handle or a registered name.
enum Addr<'a> {
    Handle(u32),
    Name(&'a [u8]),
}

/// Reads the address argument (slot 1) as upstream does.
unsafe fn request_addr<'a>(l: *mut lua_State) -> Result<Addr<'a>, Raise> {
    // SAFETY: reads of a live stack slot; the name lives while the argument does.
    unsafe {
        if ffi::lua_type(l, 1) == ffi::LUA_TNUMBER {
            return Ok(Addr::Handle(
                ffi::lua_tointegerx(l, 1, ptr::null_mut()) as u32
            ));
        }
        match to_bytes(l, 1) {
            None => Err(raise!(
                "name is not a string, it's a {}",
                lua::type_name(l, 1)
            )),
            Some(name) if name.is_empty() || name.len() > 255 => {
                let shown = name.split(|&b| b == 0).next().unwrap_or_default();
                Err(raise!(
                    "name length is invalid, must be between 1 and 255 characters: {}",
                    Lossy(shown)
                ))
            }
            Some(name) => Ok(Addr::Name(name)),
        }
    }
}

/// Pushes the request's first packet: the whole message, or the header of a large one.
unsafe fn push_request_head(
    l: *mut lua_State,
    addr: &Addr<'_>,
    session: u32,
    msg: &[u8],
    push: bool,
) -> Result<(), Raise> {
    let wire_session = if push { 0 } else { session };
    let head = if msg.len() < MULTI_PART {
        match *addr {
            Addr::Handle(h) => Head::new().byte(REQ_NUMBER).u32(h).u32(wire_session),
            Addr::Name(n) => Head::new().byte(REQ_NAME).name(n).u32(wire_session),
        }
    } else {
        let size = msg.len() as u32;
        match *addr {
            Addr::Handle(h) => {
                let kind = if push {
                    REQ_MULTI_NUMBER_PUSH
                } else {
                    REQ_MULTI_NUMBER
                };
                Head::new().byte(kind).u32(h).u32(session).u32(size)
            }
            Addr::Name(n) => {
                let kind = if push {
                    REQ_MULTI_NAME_PUSH
                } else {
                    REQ_MULTI_NAME
                };
                Head::new().byte(kind).name(n).u32(session).u32(size)
            }
        }
    };
    let body = if msg.len() < MULTI_PART { msg } else { &[] };
    // SAFETY: forwarded; the frame is at most 0x7fff + 6 + 255 bytes.
    unsafe { push_frame(l, head.as_bytes(), body) }
}

/// Pushes a table of the parts of a large request.
unsafe fn push_request_parts(l: *mut lua_State, session: u32, msg: &[u8]) -> Result<(), Raise> {
    let parts = msg.chunks(MULTI_PART);
    let count = parts.len();
    // SAFETY: stack work on a live state; each frame is at most 0x8000 + 5 bytes.
    unsafe {
        ffi::lua_createtable(l, count as c_int, 0);
        for (i, part) in parts.enumerate() {
            let kind = if i + 1 == count {
                REQ_LAST_PART
            } else {
                REQ_PART
            };
            push_frame(l, Head::new().byte(kind).u32(session).as_bytes(), part)?;
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
        }
    }
    Ok(())
}

/// `packrequest(addr, session, msg, sz)` and `packpush(...)`: the framed request, the
/// next session and, for a large message, the table of its parts. Frees `msg`.
unsafe fn pack(l: *mut lua_State, push: bool) -> Result<c_int, Raise> {
    // SAFETY: `msg, sz` is a payload handed over by the caller (skynet.pack's result), read
    // while alive and freed exactly once on every path after the null check.
    unsafe {
        let msg = ffi::lua_touserdata(l, 3) as *mut u8;
        if msg.is_null() {
            return Err(raise!("Invalid request message"));
        }
        let result = pack_owned(l, msg, push);
        payload_free(msg);
        result
    }
}

/// [`pack`] once `msg` is known to be a buffer; the caller frees it.
unsafe fn pack_owned(l: *mut lua_State, msg: *const u8, push: bool) -> Result<c_int, Raise> {
    // SAFETY: `msg` holds `sz` bytes (the caller's contract, as upstream); stack work.
    unsafe {
        let sz = arg_integer(l, 4)? as u32 as usize;
        let session = arg_integer(l, 2)? as c_int;
        if session <= 0 {
            return Err(raise!("Invalid request session {session}"));
        }
        let addr = request_addr(l)?;
        let bytes = slice::from_raw_parts(msg, sz);
        push_request_head(l, &addr, session as u32, bytes, push)?;
        let next = match session as u32 + 1 {
            n if n > i32::MAX as u32 => 1,
            n => n,
        };
        ffi::lua_pushinteger(l, next as ffi::lua_Integer);
        if sz < MULTI_PART {
            return Ok(2);
        }
        push_request_parts(l, session as u32, bytes)?;
        Ok(3)
    }
}

unsafe fn packrequest(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: forwarded.
    unsafe { pack(l, false) }
}

unsafe fn packpush(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: forwarded.
    unsafe { pack(l, true) }
}

/// `packtrace(tag)`: a trace packet naming the tag of the request that follows.
unsafe fn packtrace(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the tag lives on the stack during the call.
    unsafe {
        let tag = crate::lua::raise::arg_bytes(l, 1)?;
        if tag.len() > MULTI_PART {
            return Err(raise!("trace tag is too long : {}", tag.len()));
        }
        push_frame(l, &[REQ_TRACE], tag)?;
    }
    Ok(1)
}

/// Pushes a fresh payload holding `bytes` and its size.
unsafe fn push_buffer(l: *mut lua_State, bytes: &[u8]) {
    let p = crate::message::payload_from(bytes);
    // SAFETY: pushing a light userdata and an integer allocates nothing.
    unsafe {
        ffi::lua_pushlightuserdata(l, p.cast());
        ffi::lua_pushinteger(l, bytes.len() as ffi::lua_Integer);
    }
}

/// Kinds 0 and 0x80: `addr, session, msg, sz` (and `nil, true` for a push).
unsafe fn unpack_single(l: *mut lua_State, b: &[u8], named: bool) -> Result<c_int, Raise> {
    let n = b.len();
    // SAFETY: stack work; the name is pushed before the buffer exists.
    unsafe {
        let at = if named {
            if n < 2 || n < b[1] as usize + 6 {
                return Err(raise!("Invalid cluster message (size={n})"));
            }
            let name_end = 2 + b[1] as usize;
            push_bytes(l, &b[2..name_end]);
            name_end
        } else {
            if n < 9 {
                return Err(raise!("Invalid cluster message (size={n})"));
            }
            ffi::lua_pushinteger(l, u32_at(b, 1) as ffi::lua_Integer);
            5
        };
        let session = u32_at(b, at);
        ffi::lua_pushinteger(l, session as ffi::lua_Integer);
        push_buffer(l, &b[at + 4..]);
        if session != 0 {
            return Ok(4);
        }
        ffi::lua_pushnil(l);
        ffi::lua_pushboolean(l, 1);
    }
    Ok(6)
}

/// Kinds 1/0x41/0x81/0xc1: `addr, session, nil, size, true, is_push`.
unsafe fn unpack_multi(l: *mut lua_State, b: &[u8], named: bool) -> Result<c_int, Raise> {
    let n = b.len();
    let push = b[0] & 0x40 != 0;
    // SAFETY: stack work.
    unsafe {
        let at = if named {
            if n < 2 || n < b[1] as usize + 10 {
                return Err(raise!("Invalid cluster message (size={n})"));
            }
            push_bytes(l, &b[2..2 + b[1] as usize]);
            2 + b[1] as usize
        } else {
            if n != 13 {
                return Err(raise!(
                    "Invalid cluster message size {n} (multi req must be 13)"
                ));
            }
            ffi::lua_pushinteger(l, u32_at(b, 1) as ffi::lua_Integer);
            5
        };
        ffi::lua_pushinteger(l, u32_at(b, at) as ffi::lua_Integer);
        ffi::lua_pushnil(l);
        ffi::lua_pushinteger(l, u32_at(b, at + 4) as ffi::lua_Integer);
        ffi::lua_pushboolean(l, 1);
        ffi::lua_pushboolean(l, push as c_int);
    }
    Ok(6)
}

/// Kinds 2/3: `false, session, msg, sz, more`.
unsafe fn unpack_part(l: *mut lua_State, b: &[u8]) -> Result<c_int, Raise> {
    if b.len() < 5 {
        return Err(raise!("Invalid cluster multi part message"));
    }
    // SAFETY: stack work.
    unsafe {
        ffi::lua_pushboolean(l, 0);
        ffi::lua_pushinteger(l, u32_at(b, 1) as ffi::lua_Integer);
        push_buffer(l, &b[5..]);
        ffi::lua_pushboolean(l, (b[0] == REQ_PART) as c_int);
    }
    Ok(5)
}

/// `unpackrequest(body)` / `unpackrequest(ptr, sz)`.
unsafe fn unpackrequest(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a light userdata argument addresses `sz` readable bytes (the dispatch
    // contract of a client message); a string lives on the stack during the call.
    unsafe {
        let body: &[u8] = if ffi::lua_type(l, 1) == ffi::LUA_TLIGHTUSERDATA {
            let p = ffi::lua_touserdata(l, 1) as *const u8;
            let sz = arg_integer(l, 2)? as c_int;
            if sz < 0 || (p.is_null() && sz > 0) {
                return Err(raise!("Invalid cluster message (size={sz})"));
            }
            if sz == 0 {
                &[]
            } else {
                slice::from_raw_parts(p, sz as usize)
            }
        } else {
            crate::lua::raise::arg_bytes(l, 1)?
        };
        let Some(&kind) = body.first() else {
            return Err(raise!("Invalid req package. size == 0"));
        };
        match kind {
            REQ_NUMBER => unpack_single(l, body, false),
            REQ_NAME => unpack_single(l, body, true),
            REQ_MULTI_NUMBER | REQ_MULTI_NUMBER_PUSH => unpack_multi(l, body, false),
            REQ_MULTI_NAME | REQ_MULTI_NAME_PUSH => unpack_multi(l, body, true),
            REQ_PART | REQ_LAST_PART => unpack_part(l, body),
            REQ_TRACE => {
                push_bytes(l, &body[1..]);
                Ok(1)
            }
            // Upstream prints the byte as a signed char.
            _ => Err(raise!("Invalid req package type {}", kind as i8)),
        }
    }
}

/// `packresponse(session, ok, msg [, sz])`: one framed string, or for an ok message over
/// `MULTI_PART` bytes a table of the begin frame and the parts. Never frees `msg`.
unsafe fn packresponse(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a light userdata argument addresses `sz` readable bytes (the caller's
    // contract, as upstream); a string lives on the stack. Stack work.
    unsafe {
        let session = arg_integer(l, 1)? as u32;
        let ok = ffi::lua_toboolean(l, 2) != 0;
        let msg: &[u8] = if ffi::lua_type(l, 3) == ffi::LUA_TSTRING {
            to_bytes(l, 3).unwrap_or_default()
        } else {
            let p = ffi::lua_touserdata(l, 3) as *const u8;
            let sz = arg_integer(l, 4)? as usize;
            if p.is_null() || sz == 0 {
                &[]
            } else {
                slice::from_raw_parts(p, sz)
            }
        };
        if !ok {
            let cut = &msg[..msg.len().min(MULTI_PART)];
            push_frame(l, Head::new().u32(session).byte(RESP_ERROR).as_bytes(), cut)?;
            return Ok(1);
        }
        if msg.len() <= MULTI_PART {
            push_frame(l, Head::new().u32(session).byte(RESP_OK).as_bytes(), msg)?;
            return Ok(1);
        }
        let parts = msg.chunks(MULTI_PART);
        let count = parts.len();
        ffi::lua_createtable(l, count as c_int + 1, 0);
        let begin = Head::new()
            .u32(session)
            .byte(RESP_MULTI_BEGIN)
            .u32(msg.len() as u32);
        push_frame(l, begin.as_bytes(), &[])?;
        ffi::lua_rawseti(l, -2, 1);
        for (i, part) in parts.enumerate() {
            let kind = if i + 1 == count {
                RESP_MULTI_END
            } else {
                RESP_MULTI_PART
            };
            push_frame(l, Head::new().u32(session).byte(kind).as_bytes(), part)?;
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 2);
        }
    }
    Ok(1)
}

/// `unpackresponse(body)`: `session, ok, msg [, more]`, or nothing for a body it cannot
/// read.
unsafe fn unpackresponse(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the body lives on the stack during the call; stack work.
    unsafe {
        let b = crate::lua::raise::arg_bytes(l, 1)?;
        if b.len() < 5 {
            return Ok(0);
        }
        let rest = &b[5..];
        match b[4] {
            RESP_ERROR | RESP_OK | RESP_MULTI_END => {
                ffi::lua_pushinteger(l, u32_at(b, 0) as ffi::lua_Integer);
                ffi::lua_pushboolean(l, (b[4] != RESP_ERROR) as c_int);
                push_bytes(l, rest);
                Ok(3)
            }
            RESP_MULTI_BEGIN if b.len() == 9 => {
                ffi::lua_pushinteger(l, u32_at(b, 0) as ffi::lua_Integer);
                ffi::lua_pushboolean(l, 1);
                ffi::lua_pushinteger(l, u32_at(b, 5) as ffi::lua_Integer);
                ffi::lua_pushboolean(l, 1);
                Ok(4)
            }
            RESP_MULTI_PART => {
                ffi::lua_pushinteger(l, u32_at(b, 0) as ffi::lua_Integer);
                ffi::lua_pushboolean(l, 1);
                push_bytes(l, rest);
                ffi::lua_pushboolean(l, 1);
                Ok(4)
            }
            _ => Ok(0),
        }
    }
}

/// `append(t, msg, sz)`: `t[#t+1]` = the bytes of `msg` as a string, and frees `msg`;
/// `append(t, nil, v)` stores `v`.
unsafe fn append(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: `msg, sz` is a payload handed over by the caller (unpackrequest's result);
    // it is copied into Lua before it is freed. Stack work.
    unsafe {
        arg_type(l, 1, ffi::LUA_TTABLE)?;
        let n = ffi::lua_rawlen(l, 1) as ffi::lua_Integer;
        if ffi::lua_isnil(l, 2) != 0 {
            ffi::lua_settop(l, 3);
            ffi::lua_seti(l, 1, n + 1);
            return Ok(0);
        }
        let p = ffi::lua_touserdata(l, 2) as *mut u8;
        if p.is_null() {
            return Err(raise!("Need lightuserdata"));
        }
        let sz = arg_integer(l, 3)? as c_int;
        let bytes = if sz <= 0 {
            &[][..]
        } else {
            slice::from_raw_parts(p, sz as usize)
        };
        push_bytes(l, bytes);
        payload_free(p);
        ffi::lua_seti(l, 1, n + 1);
    }
    Ok(0)
}

/// `concat(t)`: `t[1]` is the expected size, `t[2..]` strings; their concatenation as a
/// new payload `ptr, sz`, or nothing when the sizes disagree.
unsafe fn concat(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work; the strings stay on the stack while they are copied, and the
    // buffer is allocated only once nothing can raise.
    unsafe {
        if ffi::lua_istable(l, 1) == 0 || ffi::lua_geti(l, 1, 1) != ffi::LUA_TNUMBER {
            return Ok(0);
        }
        let want = ffi::lua_tointegerx(l, -1, ptr::null_mut()) as c_int;
        ffi::lua_settop(l, 1);
        if want < 0 {
            return Ok(0);
        }
        let want = want as usize;
        let mut have = 0usize;
        let mut idx = 2;
        loop {
            ffi::luaL_checkstack(l, 1, c"too many parts".as_ptr());
            if ffi::lua_geti(l, 1, idx) != ffi::LUA_TSTRING {
                break;
            }
            have += ffi::lua_rawlen(l, -1);
            if have > want {
                return Ok(0);
            }
            idx += 1;
        }
        if have != want {
            return Ok(0);
        }
        let buffer = payload_alloc(want);
        let mut at = 0;
        for i in 2..idx {
            let part = to_bytes(l, i as c_int).unwrap_or_default();
            ptr::copy_nonoverlapping(part.as_ptr(), buffer.add(at), part.len());
            at += part.len();
        }
        ffi::lua_settop(l, 0);
        ffi::lua_pushlightuserdata(l, buffer.cast());
        ffi::lua_pushinteger(l, want as ffi::lua_Integer);
    }
    Ok(2)
}

/// `isname(v)`: true for a string starting with `@`, else nothing.
unsafe extern "C-unwind" fn isname(l: *mut lua_State) -> c_int {
    // SAFETY: a read of a live stack slot and one push.
    unsafe {
        match to_bytes(l, 1) {
            Some([b'@', ..]) => {
                ffi::lua_pushboolean(l, 1);
                1
            }
            _ => 0,
        }
    }
}

/// `nodename()`: the host name, every byte a C `char` would call `<= ' '` made `_`, then
/// the pid.
unsafe extern "C-unwind" fn nodename(l: *mut lua_State) -> c_int {
    let mut host = [0u8; 256];
    // SAFETY: gethostname writes at most the given length into our buffer.
    let found = unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) } == 0;
    let pid = std::process::id();
    let name = if found {
        let end = host.iter().position(|&b| b == 0).unwrap_or(host.len());
        for b in &mut host[..end] {
            // A signed char: bytes from 0x80 are negative, so below ' ' too.
            if *b <= b' ' || *b >= 0x80 {
                *b = b'_';
            }
        }
        &host[..end]
    } else {
        b"noname"
    };
    // SAFETY: push_fmt formats inline and owns no heap memory.
    unsafe { crate::lua::raise::push_fmt(l, format_args!("{}{pid}", Lossy(name))) };
    1
}

/// `require "skynet.cluster.core"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state.
    unsafe {
        lua::new_lib(
            l,
            &[
                (c"packrequest", lua_fn!(packrequest)),
                (c"packpush", lua_fn!(packpush)),
                (c"packtrace", lua_fn!(packtrace)),
                (c"unpackrequest", lua_fn!(unpackrequest)),
                (c"packresponse", lua_fn!(packresponse)),
                (c"unpackresponse", lua_fn!(unpackresponse)),
                (c"append", lua_fn!(append)),
                (c"concat", lua_fn!(concat)),
                (c"isname", isname),
                (c"nodename", nodename),
            ],
        );
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::testvm::{TestVm, CHECKS};
    use crate::message::payload_from;

    /// `buf(s)`: a payload holding `s`, as `ptr, sz` (what skynet.pack hands out).
    unsafe extern "C-unwind" fn buf(l: *mut lua_State) -> c_int {
        // SAFETY: called by Lua with a valid state.
        unsafe {
            let bytes = lua::check_bytes(l, 1);
            ffi::lua_pushlightuserdata(l, payload_from(bytes).cast());
            ffi::lua_pushinteger(l, bytes.len() as ffi::lua_Integer);
        }
        2
    }

    /// `take(p, sz)`: the bytes of a payload as a string; frees it.
    unsafe extern "C-unwind" fn take(l: *mut lua_State) -> c_int {
        // SAFETY: the tests pass live payloads with their sizes, once each.
        unsafe {
            let p = ffi::lua_touserdata(l, 1) as *mut u8;
            let n = ffi::luaL_checkinteger(l, 2) as usize;
            push_bytes(
                l,
                if n == 0 {
                    &[]
                } else {
                    slice::from_raw_parts(p, n)
                },
            );
            payload_free(p);
        }
        1
    }

    const PRELUDE: &str = r#"
local c = cluster
local function u32(n) return string.pack('<I4', n) end
local function frame(s) return string.pack('>I2', #s) .. s end
"#;

    fn vm() -> TestVm {
        TestVm::new(
            &format!("{CHECKS}{PRELUDE}"),
            &[(c"buf", buf), (c"take", take)],
        )
        .with_module(c"cluster", open)
    }

    #[test]
    fn small_requests_by_handle_and_name() {
        vm().check(
            r#"
local req, nxt, parts = c.packrequest(0x01020304, 7, buf('hello'))
eq(hex(frame('\0' .. u32(0x01020304) .. u32(7) .. 'hello')), hex(req), 'number req')
eq(8, nxt) eq(nil, parts)
req, nxt = c.packpush(3, 7, buf('x'))
eq(hex(frame('\0' .. u32(3) .. u32(0) .. 'x')), hex(req), 'push session 0') eq(8, nxt)
req = c.packrequest('@sdb', 9, buf('m'))
eq(hex(frame('\x80\4@sdb' .. u32(9) .. 'm')), hex(req), 'name req')
req = c.packpush('sdb', 9, buf(''))
eq(hex(frame('\x80\3sdb' .. u32(0))), hex(req), 'name push')
local _, wrap = c.packrequest(1, 0x7fffffff, buf('a'))
eq(1, wrap, 'session wraps')
"#,
        );
    }

    #[test]
    fn large_requests_go_in_parts() {
        vm().check(
            r#"
local msg = string.rep('a', 0x8000) .. string.rep('b', 0x8000) .. 'c'
local req, nxt, parts = c.packrequest(5, 3, buf(msg))
eq(hex(frame('\1' .. u32(5) .. u32(3) .. u32(#msg))), hex(req), 'multi head') eq(4, nxt)
eq(3, #parts)
eq(frame('\2' .. u32(3) .. string.rep('a', 0x8000)), parts[1], 'part 1')
eq(frame('\2' .. u32(3) .. string.rep('b', 0x8000)), parts[2], 'part 2')
eq(frame('\3' .. u32(3) .. 'c'), parts[3], 'last part')
req, nxt, parts = c.packpush('@n', 3, buf(string.rep('z', 0x8000)))
eq(hex(frame('\xc1\2@n' .. u32(3) .. u32(0x8000))), hex(req), 'multi name push')
eq(1, #parts) eq(frame('\3' .. u32(3) .. string.rep('z', 0x8000)), parts[1])
req = c.packpush(1, 3, buf(string.rep('z', 0x8000)))
eq(0x41, req:byte(3), 'multi number push')
req = c.packrequest('@n', 3, buf(string.rep('z', 0x8000)))
eq(0x81, req:byte(3), 'multi name req')
"#,
        );
    }

    #[test]
    fn request_errors() {
        vm().check(
            r#"
fails('Invalid request message', c.packrequest, 1, 1, nil, 0)
fails('Invalid request session 0', c.packrequest, 1, 0, buf('x'))
fails('Invalid request session -3', c.packpush, 1, -3, buf('x'))
fails("name is not a string, it's a table", c.packrequest, {}, 1, buf('x'))
fails('name length is invalid, must be between 1 and 255 characters: ', c.packrequest, '', 1, buf('x'))
fails('must be between 1 and 255 characters: ' .. string.rep('n', 256), c.packrequest, string.rep('n', 256), 1, buf('x'))
fails('trace tag is too long : 32769', c.packtrace, string.rep('t', 0x8001))
eq(frame('\4tag'), c.packtrace('tag'))
"#,
        );
    }

    #[test]
    fn unpack_round_trips() {
        vm().check(
            r#"
local function body(s) return s:sub(3) end
local a, s, p, n, pad, push = c.unpackrequest(body(c.packrequest(9, 4, buf('hi'))))
eq(9, a) eq(4, s) eq('hi', take(p, n)) eq(nil, pad) eq(nil, push)
a, s, p, n, pad, push = c.unpackrequest(body(c.packpush('@x', 4, buf('yo'))))
eq('@x', a) eq(0, s) eq('yo', take(p, n)) eq(nil, pad) eq(true, push)
local req, _, parts = c.packpush(2, 6, buf(string.rep('q', 0x8001)))
a, s, p, n, pad, push = c.unpackrequest(body(req))
eq(2, a) eq(6, s) eq(nil, p) eq(0x8001, n) eq(true, pad) eq(true, push)
a, s, p, n, pad = c.unpackrequest(body(parts[1]))
eq(false, a) eq(6, s) eq(0x8000, n) eq(true, pad)
local t = { 0x8001 }
c.append(t, p, n)
a, s, p, n, pad = c.unpackrequest(body(parts[2]))
eq(false, pad) eq(1, n)
c.append(t, p, n)
local all, size = c.concat(t)
eq(string.rep('q', 0x8001), take(all, size))
req = c.packrequest('@nm', 6, buf(string.rep('q', 0x8000)))
a, s, p, n, pad, push = c.unpackrequest(body(req))
eq('@nm', a) eq(6, s) eq(0x8000, n) eq(false, push)
eq('tag', c.unpackrequest(body(c.packtrace('tag'))))
local bp, bn = buf(body(c.packrequest(1, 2, buf('ptr'))))
a, s, p, n = c.unpackrequest(bp, bn)
take(bp, bn)
eq(1, a) eq('ptr', take(p, n))
"#,
        );
    }

    #[test]
    fn unpack_errors() {
        vm().check(
            r#"
fails('Invalid req package. size == 0', c.unpackrequest, '')
fails('Invalid cluster message (size=8)', c.unpackrequest, '\0' .. string.rep('x', 7))
fails('Invalid cluster message (size=5)', c.unpackrequest, '\x80\9abc')
fails('Invalid cluster message (size=1)', c.unpackrequest, '\x81')
fails('Invalid cluster message size 12 (multi req must be 13)', c.unpackrequest, '\1' .. string.rep('x', 11))
fails('Invalid cluster multi part message', c.unpackrequest, '\2abc')
fails('Invalid req package type 9', c.unpackrequest, '\9abcdef')
fails('Invalid req package type -112', c.unpackrequest, '\x90abcdef')
"#,
        );
    }

    #[test]
    fn responses() {
        vm().check(
            r#"
eq(frame(u32(5) .. '\1ok'), c.packresponse(5, true, 'ok'))
eq(frame(u32(5) .. '\0bad'), c.packresponse(5, false, 'bad'))
for n = 500, 520 do -- both sides of SMALL_FRAME
  local m = string.rep('s', n)
  eq(frame(u32(3) .. '\1' .. m), c.packresponse(3, true, m), 'response of ' .. n)
end
local p, n = buf('ptrmsg')
eq(frame(u32(6) .. '\1ptrmsg'), c.packresponse(6, true, p, n))
eq('ptrmsg', take(p, n), 'the message is not freed')
eq(frame(u32(1) .. '\1' .. string.rep('e', 0x8000)), c.packresponse(1, true, string.rep('e', 0x8000)))
eq(frame(u32(1) .. '\0' .. string.rep('e', 0x8000)), c.packresponse(1, false, string.rep('e', 0x9000)), 'error cut')
local t = c.packresponse(2, true, string.rep('r', 0x8001))
eq(3, #t)
eq(frame(u32(2) .. '\2' .. u32(0x8001)), t[1])
eq(frame(u32(2) .. '\3' .. string.rep('r', 0x8000)), t[2])
eq(frame(u32(2) .. '\4r'), t[3])
local s, ok, v, pad = c.unpackresponse(t[1]:sub(3)) eq(2, s) eq(true, ok) eq(0x8001, v) eq(true, pad)
s, ok, v, pad = c.unpackresponse(t[2]:sub(3)) eq(0x8000, #v) eq(true, pad)
s, ok, v, pad = c.unpackresponse(t[3]:sub(3)) eq('r', v) eq(nil, pad)
s, ok, v = c.unpackresponse(c.packresponse(9, false, 'no'):sub(3)) eq(9, s) eq(false, ok) eq('no', v)
eq(0, select('#', c.unpackresponse('abcd')))
eq(0, select('#', c.unpackresponse(u32(1) .. '\2abc')))
eq(0, select('#', c.unpackresponse(u32(1) .. '\7abc')))
"#,
        );
    }

    #[test]
    fn helpers() {
        vm().check(
            r#"
local t = {}
c.append(t, nil, 42) eq(42, t[1])
fails('Need lightuserdata', c.append, t, 'str', 1)
eq(0, select('#', c.concat('x')))
eq(0, select('#', c.concat({ 'x' })))
eq(0, select('#', c.concat({ 3, 'ab' })))
eq(0, select('#', c.concat({ 1, 'ab' })))
local p, n = c.concat({ 0 }) eq(0, n) take(p, n)
eq(true, c.isname('@x')) eq(nil, c.isname('x')) eq(nil, c.isname(5))
local name = c.nodename()
assert(name:match('%d+$') and not name:find('[%s]'), name)
"#,
        );
    }
}
