//! `skynet.socketdriver`: the socket API of a service (listen, connect, start, send ...),
//! the decoder of PTYPE_SOCKET messages, and the receive buffer helpers
//! `skynet.socket` builds its reads on.
//!
//! A receive buffer is a full userdata holding a queue of DATA payloads; `push` takes a
//! payload over, the pops copy bytes out into Lua strings and free payloads as they
//! empty. The `pool` argument upstream uses for its free list is accepted and checked
//! but not needed here.

use crate::context::Context;
use crate::lua::raise::{
    arg_bytes, arg_integer, arg_opt_integer, arg_type, lua_fn, protect, push_fmt, raise,
    try_push_bytes, Lossy, Raise,
};
use crate::lua::stack::{self as lua, push_bytes, to_bytes, type_name};
use crate::message::{self, Payload};
use crate::socket::record;
use crate::socket::{self, Priority, SendBuffer};
use mlua::ffi::{self, lua_State};
use std::collections::VecDeque;
use std::ffi::{c_int, c_void, CStr};

const BACKLOG: i32 = 32;
const BUFFER_META: &CStr = c"skynet.socketdriver.buffer";

/// Buffered DATA payloads of one connection.
#[derive(Default)]
struct RecvBuffer {
    chunks: VecDeque<Payload>,
    /// Bytes of the front chunk already consumed.
    offset: usize,
    size: usize,
}

impl RecvBuffer {
    fn chunk(&self, i: usize) -> &[u8] {
        self.chunks[i].bytes()
    }

    /// Removes `n` bytes (n <= size) from the front, appending them to `out`.
    fn take(&mut self, mut n: usize, out: &mut Vec<u8>) {
        self.size -= n;
        while n > 0 {
            let front = &self.chunk(0)[self.offset..];
            let k = front.len().min(n);
            out.extend_from_slice(&front[..k]);
            n -= k;
            self.offset += k;
            if self.offset == self.chunks[0].len() {
                self.chunks.pop_front();
                self.offset = 0;
            }
        }
    }

    /// Byte index (from the front) where `sep` starts, if it is buffered.
    fn find(&self, sep: &[u8]) -> Option<usize> {
        if sep.is_empty() || self.size < sep.len() {
            return None;
        }
        let mut flat = Vec::with_capacity(self.size);
        for i in 0..self.chunks.len() {
            let c = self.chunk(i);
            flat.extend_from_slice(if i == 0 { &c[self.offset..] } else { c });
        }
        flat.windows(sep.len()).position(|w| w == sep)
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.offset = 0;
        self.size = 0;
    }
}

unsafe fn context<'a>(l: *mut lua_State) -> &'a Context {
    // SAFETY: `open` sets upvalue 1 of the functions that need it to the service's
    // Context, which outlives its VM.
    unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Context) }
}

/// The buffer at `idx`, or the error with upstream's text.
unsafe fn buffer<'a>(
    l: *mut lua_State,
    idx: c_int,
    message: &'static str,
) -> Result<&'a mut RecvBuffer, Raise> {
    // SAFETY: luaL_testudata checks the metatable, so the block holds a RecvBuffer.
    unsafe {
        let p = ffi::luaL_testudata(l, idx, BUFFER_META.as_ptr()) as *mut RecvBuffer;
        p.as_mut().ok_or_else(|| raise!("{message}"))
    }
}

unsafe extern "C-unwind" fn buffer_gc(l: *mut lua_State) -> c_int {
    // SAFETY: __gc of a RecvBuffer userdata, run once by Lua.
    unsafe {
        let p = ffi::lua_touserdata(l, 1) as *mut RecvBuffer;
        if !p.is_null() {
            std::ptr::drop_in_place(p);
        }
    }
    0
}

unsafe extern "C-unwind" fn new_buffer(l: *mut lua_State) -> c_int {
    // SAFETY: the userdata block is sized and aligned for RecvBuffer and initialised
    // before Lua can see it; __gc drops it.
    unsafe {
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<RecvBuffer>(), 0) as *mut RecvBuffer;
        p.write(RecvBuffer::default());
        if ffi::luaL_newmetatable(l, BUFFER_META.as_ptr()) != 0 {
            ffi::lua_pushcfunction(l, buffer_gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        }
        ffi::lua_setmetatable(l, -2);
    }
    1
}

unsafe fn push(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: every check passes before the payload is taken over.
    unsafe {
        let b = buffer(l, 1, "need buffer object at param 1")?;
        arg_type(l, 2, ffi::LUA_TTABLE)?;
        let p = ffi::lua_touserdata(l, 3) as *mut u8;
        if p.is_null() {
            return Err(raise!("need message block at param 3"));
        }
        let sz = arg_integer(l, 4)?.max(0) as usize;
        b.chunks.push_back(Payload::from_raw(p, sz));
        b.size += sz;
        ffi::lua_pushinteger(l, b.size as ffi::lua_Integer);
    }
    Ok(1)
}

unsafe fn pop(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work; the bytes taken out are pushed without raising.
    unsafe {
        let b = buffer(l, 1, "Need buffer object at param 1")?;
        let sz = arg_integer(l, 3)?;
        if sz <= 0 || b.size < sz as usize {
            ffi::lua_pushnil(l);
        } else {
            let mut out = Vec::with_capacity(sz as usize);
            b.take(sz as usize, &mut out);
            try_push_bytes(l, &out)?;
        }
        ffi::lua_pushinteger(l, b.size as ffi::lua_Integer);
    }
    Ok(2)
}

unsafe fn readall(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: as pop.
    unsafe {
        let b = buffer(l, 1, "Need buffer object at param 1")?;
        let mut out = Vec::with_capacity(b.size);
        b.take(b.size, &mut out);
        try_push_bytes(l, &out)?;
    }
    Ok(1)
}

unsafe fn readline(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: as pop; the separator stays on the stack.
    unsafe {
        let b = buffer(l, 1, "Need buffer object at param 1")?;
        let check_only = ffi::lua_type(l, 2) != ffi::LUA_TTABLE;
        let sep = arg_bytes(l, 3)?;
        let Some(at) = b.find(sep) else {
            return Ok(0);
        };
        if check_only {
            ffi::lua_pushboolean(l, 1);
            return Ok(1);
        }
        let mut out = Vec::with_capacity(at + sep.len());
        b.take(at + sep.len(), &mut out);
        try_push_bytes(l, &out[..at])?;
    }
    Ok(1)
}

unsafe fn clear(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: as pop.
    unsafe {
        if ffi::lua_isnoneornil(l, 1) == 0 {
            buffer(l, 1, "Need buffer object at param 1")?.clear();
        }
    }
    Ok(0)
}

unsafe extern "C-unwind" fn drop_data(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned; the pointer is a
    // DATA/UDP payload the caller owns and gives up here.
    unsafe {
        let p = ffi::lua_touserdata(l, 1) as *mut u8;
        ffi::luaL_checkinteger(l, 2);
        message::payload_free(p);
    }
    0
}

unsafe extern "C-unwind" fn str2p(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned; the new payload goes
    // to Lua as a light userdata the caller owns (pushing one allocates nothing).
    unsafe {
        let s = lua::check_bytes(l, 1);
        let p = message::payload_from(s);
        ffi::lua_pushlightuserdata(l, p as *mut c_void);
        ffi::lua_pushinteger(l, s.len() as ffi::lua_Integer);
    }
    2
}

unsafe fn header(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a stack read; pushing a number allocates nothing.
    unsafe {
        let s = arg_bytes(l, 1)?;
        if s.is_empty() || s.len() > 4 {
            return Err(raise!("Invalid read {}", Lossy(s)));
        }
        let v = s.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32);
        ffi::lua_pushinteger(l, v as ffi::lua_Integer);
    }
    Ok(1)
}

unsafe extern "C-unwind" fn unpack(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned; the argument is a
    // PTYPE_SOCKET payload of `sz` bytes (the dispatch contract of the "socket" protocol).
    unsafe {
        let p = ffi::lua_touserdata(l, 1) as *const u8;
        let sz = ffi::luaL_checkinteger(l, 2).max(0) as usize;
        if p.is_null() {
            return 0;
        }
        push_unpacked(l, std::slice::from_raw_parts(p, sz))
    }
}

/// Host and port from `(addr [, port])` at `idx`.
unsafe fn address(l: *mut lua_State, idx: c_int) -> Result<(String, u16), Raise> {
    // SAFETY: stack reads; the address string stays on the stack.
    unsafe {
        let addr = String::from_utf8_lossy(arg_bytes(l, idx)?);
        if ffi::lua_isnoneornil(l, idx + 1) != 0 {
            socket::parse_address(&addr).map_err(|e| raise!("{e}"))
        } else {
            let port = arg_opt_integer(l, idx + 1, 0)? as u16;
            Ok((addr.into_owned(), port))
        }
    }
}

unsafe fn connect(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on the service's VM; pushing a number allocates nothing.
    unsafe {
        let (host, port) = address(l, 1)?;
        if port == 0 {
            return Err(raise!("Invalid port"));
        }
        let id = if host.len() >= 232 {
            crate::logging::error(
                context(l).handle,
                format!("socket-server error: Invalid addr {host}."),
            );
            -1
        } else {
            socket::connect(context(l).handle, &host, port)
        };
        ffi::lua_pushinteger(l, id as ffi::lua_Integer);
    }
    Ok(1)
}

unsafe fn listen(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: as connect.
    unsafe {
        let (host, port) = address(l, 1)?;
        let backlog = arg_opt_integer(l, 3, BACKLOG as ffi::lua_Integer)? as i32;
        let id = socket::listen(context(l).handle, &host, port, backlog)
            .map_err(|_| raise!("Listen error"))?;
        ffi::lua_pushinteger(l, id as ffi::lua_Integer);
    }
    Ok(1)
}

unsafe fn id_arg(l: *mut lua_State) -> i32 {
    // SAFETY: luaL_checkinteger raises on a bad argument; every caller owns nothing yet.
    unsafe { ffi::luaL_checkinteger(l, 1) as i32 }
}

unsafe extern "C-unwind" fn close(l: *mut lua_State) -> c_int {
    // SAFETY: argument check, then a queued request.
    unsafe { socket::close(context(l).handle, id_arg(l)) };
    0
}

unsafe extern "C-unwind" fn shutdown(l: *mut lua_State) -> c_int {
    // SAFETY: as close.
    unsafe { socket::shutdown(context(l).handle, id_arg(l)) };
    0
}

unsafe extern "C-unwind" fn start(l: *mut lua_State) -> c_int {
    // SAFETY: as close.
    unsafe { socket::start_socket(context(l).handle, id_arg(l)) };
    0
}

unsafe extern "C-unwind" fn pause(l: *mut lua_State) -> c_int {
    // SAFETY: as close.
    unsafe { socket::pause(id_arg(l)) };
    0
}

unsafe extern "C-unwind" fn nodelay(l: *mut lua_State) -> c_int {
    // SAFETY: as close.
    unsafe { socket::nodelay(id_arg(l)) };
    0
}

unsafe extern "C-unwind" fn bind(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned; then a queued request.
    unsafe {
        let fd = ffi::luaL_checkinteger(l, 1) as i32;
        let id = socket::bind(context(l).handle, fd);
        ffi::lua_pushinteger(l, id as ffi::lua_Integer);
    }
    1
}

/// The send buffer forms of §3.3 at `idx`.
unsafe fn send_buffer(l: *mut lua_State, idx: c_int) -> Result<SendBuffer, Raise> {
    // SAFETY: stack reads; a full userdata is read within its size, a light one is a
    // payload the caller hands over once every check passed.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => Ok(SendBuffer::Bytes(to_bytes(l, idx).unwrap_or(b"").to_vec())),
            ffi::LUA_TLIGHTUSERDATA => {
                let p = ffi::lua_touserdata(l, idx) as *mut u8;
                let sz = arg_integer(l, idx + 1)?;
                if sz < 0 {
                    return Err(raise!("Invalid size of user object"));
                }
                Ok(SendBuffer::Payload(Payload::from_raw(p, sz as usize)))
            }
            ffi::LUA_TUSERDATA => {
                let p = ffi::lua_touserdata(l, idx) as *const u8;
                let raw = ffi::lua_rawlen(l, idx) as ffi::lua_Integer;
                let sz = arg_opt_integer(l, idx + 1, raw)?.clamp(0, raw) as usize;
                Ok(SendBuffer::Bytes(
                    std::slice::from_raw_parts(p, sz).to_vec(),
                ))
            }
            ffi::LUA_TTABLE => {
                // Every element is checked before the buffer exists; a raw table walk
                // runs no Lua code.
                let mut n = 1;
                while ffi::lua_geti(l, idx, n) != ffi::LUA_TNIL {
                    arg_bytes(l, -1)?;
                    ffi::lua_pop(l, 1);
                    n += 1;
                }
                ffi::lua_pop(l, 1);
                let mut out = Vec::new();
                for i in 1..n {
                    ffi::lua_geti(l, idx, i);
                    out.extend_from_slice(to_bytes(l, -1).unwrap_or(b""));
                    ffi::lua_pop(l, 1);
                }
                Ok(SendBuffer::Bytes(out))
            }
            _ => Err(raise!("invalid param {}", type_name(l, idx))),
        }
    }
}

unsafe fn send_with(l: *mut lua_State, priority: Priority) -> Result<c_int, Raise> {
    // SAFETY: stack reads; pushing a boolean allocates nothing.
    unsafe {
        let id = arg_integer(l, 1)? as i32;
        let buf = send_buffer(l, 2)?;
        ffi::lua_pushboolean(l, socket::send(id, buf, priority) as c_int);
    }
    Ok(1)
}

unsafe fn send(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: forwarded.
    unsafe { send_with(l, Priority::High) }
}

unsafe fn lsend(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: forwarded.
    unsafe { send_with(l, Priority::Low) }
}

/// Pushes a table of the IPs, as text.
unsafe fn push_ips(l: *mut lua_State, ips: &[std::net::IpAddr]) {
    // SAFETY: stack work; the text is formatted inline, so this frame owns nothing.
    unsafe {
        ffi::lua_createtable(l, ips.len() as c_int, 0);
        for (i, ip) in ips.iter().enumerate() {
            push_fmt(l, format_args!("{ip}"));
            ffi::lua_rawseti(l, -2, (i + 1) as ffi::lua_Integer);
        }
    }
}

unsafe fn resolve(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a stack read; the table is built under `protect` while the list is owned
    // here.
    unsafe {
        let host = String::from_utf8_lossy(arg_bytes(l, 1)?);
        let ips = socket::resolve_all(&host).map_err(|e| raise!("{e}"))?;
        protect(l, &ips[..], push_ips)?;
    }
    Ok(1)
}

unsafe fn udp(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on the service's VM; pushing a number allocates nothing.
    unsafe {
        let local = if ffi::lua_isnoneornil(l, 1) != 0 {
            None
        } else {
            Some(address(l, 1)?)
        };
        let id = socket::udp(
            context(l).handle,
            local.as_ref().map(|(h, p)| (h.as_str(), *p)),
        )
        .map_err(|_| raise!("udp init failed"))?;
        ffi::lua_pushinteger(l, id as ffi::lua_Integer);
    }
    Ok(1)
}

unsafe fn udp_connect(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack reads.
    unsafe {
        let id = arg_integer(l, 1)? as i32;
        let (host, port) = address(l, 2)?;
        socket::udp_connect(id, &host, port).map_err(|_| raise!("udp connect failed"))?;
    }
    Ok(0)
}

/// `udp_dial` and `udp_listen`: a new socket from `(addr [, port])`.
unsafe fn new_udp(
    l: *mut lua_State,
    make: fn(u32, &str, u16) -> std::io::Result<i32>,
    failure: &'static str,
    port_needed: bool,
) -> Result<c_int, Raise> {
    // SAFETY: as udp.
    unsafe {
        let (host, port) = address(l, 1)?;
        if port_needed && port == 0 {
            return Err(raise!("Invalid port"));
        }
        let id = make(context(l).handle, &host, port).map_err(|_| raise!("{failure}"))?;
        ffi::lua_pushinteger(l, id as ffi::lua_Integer);
    }
    Ok(1)
}

unsafe fn udp_dial(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: forwarded.
    unsafe { new_udp(l, socket::udp_dial, "udp dial host failed", false) }
}

unsafe fn udp_listen(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: forwarded.
    unsafe { new_udp(l, socket::udp_listen, "udp listen host failed", true) }
}

unsafe fn udp_send(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack reads; the buffer is taken over once every check passed.
    unsafe {
        let id = arg_integer(l, 1)? as i32;
        let to = socket::decode_udp_address(arg_bytes(l, 2)?);
        let buf = send_buffer(l, 3)?;
        let sent = match to {
            Some(to) => socket::udp_send(id, to, buf),
            None => false,
        };
        ffi::lua_pushboolean(l, sent as c_int);
    }
    Ok(1)
}

unsafe fn udp_address(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a stack read; the text is formatted inline.
    unsafe {
        let Some(addr) = socket::decode_udp_address(arg_bytes(l, 1)?) else {
            return Err(raise!("Invalid udp address"));
        };
        push_fmt(l, format_args!("{}", addr.ip()));
        ffi::lua_pushinteger(l, addr.port() as ffi::lua_Integer);
    }
    Ok(2)
}

unsafe fn set_int(l: *mut lua_State, key: &CStr, v: i64) {
    // SAFETY: the table is on top.
    unsafe {
        ffi::lua_pushinteger(l, v);
        ffi::lua_setfield(l, -2, key.as_ptr());
    }
}

unsafe fn set_str(l: *mut lua_State, key: &CStr, v: &str) {
    // SAFETY: the table is on top.
    unsafe {
        push_bytes(l, v.as_bytes());
        ffi::lua_setfield(l, -2, key.as_ptr());
    }
}

/// Pushes the table `info` returns.
unsafe fn push_info(l: *mut lua_State, all: &[socket::SocketInfo]) {
    // SAFETY: stack work; every string pushed is borrowed, so this frame owns nothing.
    unsafe {
        ffi::lua_createtable(l, all.len() as c_int, 0);
        for (i, s) in all.iter().enumerate() {
            ffi::lua_newtable(l);
            set_int(l, c"id", s.id as i64);
            set_int(l, c"address", s.owner as i64);
            set_str(l, c"type", s.kind);
            set_int(l, c"rtime", s.rtime as i64);
            if s.kind == "LISTEN" {
                set_int(l, c"accept", s.accepted as i64);
                if let Some(a) = &s.sock {
                    set_str(l, c"sock", a);
                }
            } else {
                set_int(l, c"read", s.read as i64);
                set_int(l, c"write", s.write as i64);
                set_int(l, c"wbuffer", s.wbuffer as i64);
                set_int(l, c"wtime", s.wtime as i64);
                ffi::lua_pushboolean(l, s.reading as c_int);
                ffi::lua_setfield(l, -2, c"reading".as_ptr());
                ffi::lua_pushboolean(l, s.writing as c_int);
                ffi::lua_setfield(l, -2, c"writing".as_ptr());
                if let Some(p) = &s.peer {
                    set_str(l, c"peer", p);
                }
            }
            ffi::lua_rawseti(l, -2, (i + 1) as ffi::lua_Integer);
        }
    }
}

unsafe fn info(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the table is built under `protect` while the list is owned here.
    unsafe { protect(l, &socket::info()[..], push_info)? };
    Ok(1)
}

/// `require "skynet.socketdriver"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live VM; this frame owns nothing when it raises.
    unsafe {
        lua::new_lib(
            l,
            &[
                (c"buffer", new_buffer),
                (c"push", lua_fn!(push)),
                (c"pop", lua_fn!(pop)),
                (c"drop", drop_data),
                (c"readall", lua_fn!(readall)),
                (c"clear", lua_fn!(clear)),
                (c"readline", lua_fn!(readline)),
                (c"str2p", str2p),
                (c"header", lua_fn!(header)),
                (c"unpack", unpack),
                (c"resolve", lua_fn!(resolve)),
                (c"udp_address", lua_fn!(udp_address)),
                (c"info", lua_fn!(info)),
                (c"udp_send", lua_fn!(udp_send)),
                (c"udp_connect", lua_fn!(udp_connect)),
            ],
        );
        if ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"skynet_context".as_ptr())
            != ffi::LUA_TLIGHTUSERDATA
        {
            raise!("Init skynet context first").raise(l);
        }
        let ctx = ffi::lua_touserdata(l, -1);
        ffi::lua_pop(l, 1);
        let with_context: &[(&CStr, lua::CFunction)] = &[
            (c"connect", lua_fn!(connect)),
            (c"close", close),
            (c"shutdown", shutdown),
            (c"listen", lua_fn!(listen)),
            (c"send", lua_fn!(send)),
            (c"lsend", lua_fn!(lsend)),
            (c"bind", bind),
            (c"start", start),
            (c"pause", pause),
            (c"nodelay", nodelay),
            (c"udp", lua_fn!(udp)),
            (c"udp_dial", lua_fn!(udp_dial)),
            (c"udp_listen", lua_fn!(udp_listen)),
        ];
        for (name, f) in with_context {
            ffi::lua_pushlightuserdata(l, ctx);
            ffi::lua_pushcclosure(l, *f, 1);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
    }
    1
}
/// Pushes `socketdriver.unpack`'s results for `payload`: `type, id, ud, data` plus the
/// address string for UDP. `data` is the inline string for CONNECT/ACCEPT/ERROR, a light
/// userdata for the others (null for CLOSE/WARNING). Returns the number of values.
///
/// # Safety
/// `l` must be a valid Lua state; a DATA/UDP buffer must be live (see [`Record::data`]).
unsafe fn push_unpacked(l: *mut lua_State, payload: &[u8]) -> c_int {
    let Some(r) = record::decode(payload) else {
        return 0;
    };
    // SAFETY: plain pushes on a live state; nothing Rust-owned is alive if one raises.
    unsafe {
        ffi::lua_pushinteger(l, r.kind as ffi::lua_Integer);
        ffi::lua_pushinteger(l, r.id as ffi::lua_Integer);
        ffi::lua_pushinteger(l, r.ud as ffi::lua_Integer);
        match r.kind {
            record::CONNECT | record::ACCEPT | record::ERROR if r.buffer.is_null() => {
                push_bytes(l, r.text)
            }
            _ => ffi::lua_pushlightuserdata(l, r.buffer.cast()),
        }
        if let Some(addr) = r.udp_address() {
            push_bytes(l, addr);
            return 5;
        }
    }
    4
}
