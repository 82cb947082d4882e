//! `skynet_socket.h`: the socket calls of a C service or Lua C module, on the core's
//! socket server (`socket/`). Events come back as PTYPE_SOCKET messages whose payload
//! is upstream's `struct skynet_socket_message` (`socket/record.rs` lays it out).
//!
//! A `struct socket_sendbuffer` of type MEMORY hands its `malloc` buffer over (freed
//! once written, or at once when the send fails), RAWPOINTER is copied; OBJECT (user
//! objects with their own free and size functions) has no counterpart in this core and
//! is refused with -1, the buffer left to the caller.

use super::{context, guard, text};
use crate::context::Context;
use crate::message::{payload_alloc, payload_free, Payload};
use crate::socket::record::{self, SocketMessage};
use crate::socket::{self, Priority, SendBuffer};
use std::ffi::{c_char, c_int, c_void};
use std::net::SocketAddr;

const BUFFER_MEMORY: c_int = 0;
const BUFFER_RAWPOINTER: c_int = 2;

/// Upstream's `struct socket_sendbuffer`.
#[repr(C)]
pub struct SocketSendBuffer {
    id: c_int,
    kind: c_int,
    buffer: *const c_void,
    sz: usize,
}

/// The bytes to write, taken over or copied per the buffer's type; None for OBJECT.
///
/// # Safety
/// `b.buffer` as its type says: a `malloc` buffer of `sz` bytes handed over (MEMORY)
/// or `sz` readable bytes (RAWPOINTER).
unsafe fn take(b: &SocketSendBuffer) -> Option<SendBuffer> {
    match b.kind {
        // SAFETY: guaranteed by the caller.
        BUFFER_MEMORY => Some(SendBuffer::Payload(unsafe {
            Payload::from_raw(b.buffer as *mut u8, b.sz)
        })),
        BUFFER_RAWPOINTER if b.buffer.is_null() => Some(SendBuffer::Bytes(Vec::new())),
        // SAFETY: guaranteed by the caller.
        BUFFER_RAWPOINTER => Some(SendBuffer::Bytes(
            unsafe { std::slice::from_raw_parts(b.buffer as *const u8, b.sz) }.to_vec(),
        )),
        _ => None,
    }
}

fn sent(ok: bool) -> c_int {
    if ok {
        0
    } else {
        -1
    }
}

/// # Safety
/// `buffer` a readable send buffer as `take` requires.
unsafe fn send_buffer(buffer: *const SocketSendBuffer, priority: Priority) -> c_int {
    guard(-1, || {
        // SAFETY: guaranteed by the caller.
        let Some(b) = (unsafe { buffer.as_ref() }) else {
            return -1;
        };
        // SAFETY: guaranteed by the caller.
        match unsafe { take(b) } {
            Some(bytes) => sent(socket::send(b.id, bytes, priority)),
            None => -1,
        }
    })
}

/// `skynet_socket_sendbuffer`: 0, or -1 when the socket is gone (the buffer freed).
///
/// # Safety
/// As `take`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_sendbuffer(
    _ctx: *const Context,
    buffer: *const SocketSendBuffer,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { send_buffer(buffer, Priority::High) }
}

/// `skynet_socket_sendbuffer_lowpriority`.
///
/// # Safety
/// As `take`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_sendbuffer_lowpriority(
    _ctx: *const Context,
    buffer: *const SocketSendBuffer,
) -> c_int {
    // SAFETY: forwarded.
    unsafe { send_buffer(buffer, Priority::Low) }
}

/// The owner handle, host text and port of a socket call; None for a null context or
/// a port out of range.
///
/// # Safety
/// `ctx` as in `context`; `host` null or NUL-terminated.
unsafe fn target(
    ctx: *const Context,
    host: *const c_char,
    port: c_int,
) -> Option<(u32, String, u16)> {
    // SAFETY: guaranteed by the caller.
    let owner = unsafe { context(ctx) }?.handle;
    // SAFETY: guaranteed by the caller.
    let host = unsafe { text(host) }.unwrap_or_default().into_owned();
    Some((owner, host, u16::try_from(port).ok()?))
}

/// `skynet_socket_listen`: the new socket id, or -1.
///
/// # Safety
/// As `target`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_listen(
    ctx: *const Context,
    host: *const c_char,
    port: c_int,
    backlog: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: guaranteed by the caller.
        let Some((owner, host, port)) = (unsafe { target(ctx, host, port) }) else {
            return -1;
        };
        socket::listen(owner, &host, port, backlog).unwrap_or(-1)
    })
}

/// `skynet_socket_connect`: the new socket id (CONNECT or ERROR follows), or -1.
///
/// # Safety
/// As `target`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_connect(
    ctx: *const Context,
    host: *const c_char,
    port: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: guaranteed by the caller.
        match unsafe { target(ctx, host, port) } {
            Some((owner, host, port)) => socket::connect(owner, &host, port),
            None => -1,
        }
    })
}

/// `skynet_socket_bind`: wraps an OS descriptor; the socket id.
///
/// # Safety
/// As `context`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_bind(ctx: *const Context, fd: c_int) -> c_int {
    // SAFETY: guaranteed by the caller.
    guard(-1, || match unsafe { context(ctx) } {
        Some(c) => socket::bind(c.handle, fd),
        None => -1,
    })
}

/// Runs `f` with the caller's handle (nothing for a null context).
///
/// # Safety
/// As `context`.
unsafe fn with_owner(ctx: *const Context, f: impl FnOnce(u32)) {
    // SAFETY: guaranteed by the caller.
    if let Some(c) = unsafe { context(ctx) } {
        guard((), || f(c.handle));
    }
}

/// `skynet_socket_close`.
///
/// # Safety
/// As `context`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_close(ctx: *const Context, id: c_int) {
    // SAFETY: forwarded.
    unsafe { with_owner(ctx, |owner| socket::close(owner, id)) }
}

/// `skynet_socket_shutdown`.
///
/// # Safety
/// As `context`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_shutdown(ctx: *const Context, id: c_int) {
    // SAFETY: forwarded.
    unsafe { with_owner(ctx, |owner| socket::shutdown(owner, id)) }
}

/// `skynet_socket_start`: reading on (and the socket's events) for the caller.
///
/// # Safety
/// As `context`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_start(ctx: *const Context, id: c_int) {
    // SAFETY: forwarded.
    unsafe { with_owner(ctx, |owner| socket::start_socket(owner, id)) }
}

/// `skynet_socket_pause`.
///
/// # Safety
/// As `context`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_pause(ctx: *const Context, id: c_int) {
    // SAFETY: forwarded.
    unsafe { with_owner(ctx, |_| socket::pause(id)) }
}

/// `skynet_socket_nodelay`.
///
/// # Safety
/// As `context`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_nodelay(ctx: *const Context, id: c_int) {
    // SAFETY: forwarded.
    unsafe { with_owner(ctx, |_| socket::nodelay(id)) }
}

/// `skynet_socket_udp`: a UDP socket bound to `addr:port` (null `addr`: unbound).
///
/// # Safety
/// As `target`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_udp(
    ctx: *const Context,
    addr: *const c_char,
    port: c_int,
) -> c_int {
    guard(-1, || {
        let bound = !addr.is_null();
        // SAFETY: guaranteed by the caller.
        let Some((owner, host, port)) = (unsafe { target(ctx, addr, port) }) else {
            return -1;
        };
        let local = bound.then_some((host.as_str(), port));
        socket::udp(owner, local).unwrap_or(-1)
    })
}

/// `skynet_socket_udp_connect`: sets the default peer; 0 or -1.
///
/// # Safety
/// As `target`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_udp_connect(
    ctx: *const Context,
    id: c_int,
    addr: *const c_char,
    port: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: guaranteed by the caller.
        match unsafe { target(ctx, addr, port) } {
            Some((_, host, port)) if socket::udp_connect(id, &host, port).is_ok() => 0,
            _ => -1,
        }
    })
}

/// `skynet_socket_udp_dial`: a UDP socket whose default peer is `addr:port`.
///
/// # Safety
/// As `target`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_udp_dial(
    ctx: *const Context,
    addr: *const c_char,
    port: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: guaranteed by the caller.
        match unsafe { target(ctx, addr, port) } {
            Some((owner, host, port)) => socket::udp_dial(owner, &host, port).unwrap_or(-1),
            None => -1,
        }
    })
}

/// `skynet_socket_udp_listen`: a UDP socket bound to `addr:port`.
///
/// # Safety
/// As `target`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_udp_listen(
    ctx: *const Context,
    addr: *const c_char,
    port: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: guaranteed by the caller.
        match unsafe { target(ctx, addr, port) } {
            Some((owner, host, port)) => socket::udp_listen(owner, &host, port).unwrap_or(-1),
            None => -1,
        }
    })
}

/// The length of the binary UDP address at `p` (from its protocol byte), 0 if none.
///
/// # Safety
/// `p` null or readable for its first byte.
unsafe fn udp_address_len(p: *const u8) -> usize {
    // SAFETY: guaranteed by the caller.
    match unsafe { p.as_ref() } {
        Some(1) => 7,
        Some(2) => 19,
        _ => 0,
    }
}

/// `skynet_socket_udp_sendbuffer`: sends to a binary UDP address (as
/// `skynet_socket_udp_address` gives); 0, or -1 (the buffer freed).
///
/// # Safety
/// `address` a binary UDP address; `buffer` as `take`.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_udp_sendbuffer(
    _ctx: *const Context,
    address: *const c_char,
    buffer: *const SocketSendBuffer,
) -> c_int {
    guard(-1, || {
        // SAFETY: guaranteed by the caller.
        let Some(b) = (unsafe { buffer.as_ref() }) else {
            return -1;
        };
        // SAFETY: guaranteed by the caller.
        let Some(bytes) = (unsafe { take(b) }) else {
            return -1;
        };
        let p = address as *const u8;
        // SAFETY: the address holds as many bytes as its protocol byte says.
        let to: Option<SocketAddr> = unsafe {
            let len = udp_address_len(p);
            (len > 0).then(|| std::slice::from_raw_parts(p, len))
        }
        .and_then(socket::decode_udp_address);
        match to {
            Some(to) => sent(socket::udp_send(b.id, to, bytes)),
            None => -1,
        }
    })
}

/// `skynet_socket_udp_address`: the sender address of a UDP event and its size, or
/// null for any other event.
///
/// # Safety
/// `msg` a PTYPE_SOCKET record the caller received; `addrsz` null or writable.
#[no_mangle]
pub unsafe extern "C" fn skynet_socket_udp_address(
    msg: *const SocketMessage,
    addrsz: *mut c_int,
) -> *const c_char {
    // SAFETY: guaranteed by the caller.
    let Some(m) = (unsafe { msg.as_ref() }) else {
        return std::ptr::null();
    };
    if m.kind != record::UDP || m.buffer.is_null() || m.ud < 0 {
        return std::ptr::null();
    }
    // SAFETY: a UDP record's buffer holds `ud` bytes and then the sender address.
    let address = unsafe { m.buffer.add(m.ud as usize) };
    // SAFETY: as above, the address's protocol byte is there.
    let len = unsafe { udp_address_len(address) };
    if len == 0 {
        return std::ptr::null();
    }
    if !addrsz.is_null() {
        // SAFETY: guaranteed by the caller.
        unsafe { *addrsz = len as c_int };
    }
    address as *const c_char
}

/// Upstream's `struct socket_info`: one node of the list `skynet_socket_info` returns.
#[repr(C)]
pub struct SocketInfo {
    id: c_int,
    kind: c_int,
    opaque: u64,
    read: u64,
    write: u64,
    rtime: u64,
    wtime: u64,
    wbuffer: i64,
    reading: u8,
    writing: u8,
    name: [c_char; 128],
    next: *mut SocketInfo,
}

fn info_kind(kind: &str) -> c_int {
    match kind {
        "LISTEN" => 1,
        "TCP" => 2,
        "UDP" => 3,
        "BIND" => 4,
        "CLOSING" => 5,
        _ => 0,
    }
}

/// `skynet_socket_info`: a `malloc`ed list of the live sockets (free it with
/// `socket_info_release`), null when there are none.
#[no_mangle]
pub extern "C" fn skynet_socket_info() -> *mut SocketInfo {
    guard(std::ptr::null_mut(), || {
        let mut list: *mut SocketInfo = std::ptr::null_mut();
        for s in socket::info().iter().rev() {
            let node = payload_alloc(std::mem::size_of::<SocketInfo>()) as *mut SocketInfo;
            let mut name = [0 as c_char; 128];
            let text = s.peer.as_deref().or(s.sock.as_deref()).unwrap_or("");
            for (d, &b) in name.iter_mut().zip(text.as_bytes().iter().take(127)) {
                *d = b as c_char;
            }
            let read = if s.kind == "LISTEN" {
                s.accepted
            } else {
                s.read
            };
            let info = SocketInfo {
                id: s.id,
                kind: info_kind(s.kind),
                opaque: s.owner as u64,
                read,
                write: s.write,
                rtime: s.rtime,
                wtime: s.wtime,
                wbuffer: s.wbuffer as i64,
                reading: s.reading as u8,
                writing: s.writing as u8,
                name,
                next: list,
            };
            // SAFETY: a fresh malloc block of the struct's size, aligned as malloc's are.
            unsafe { node.write(info) };
            list = node;
        }
        list
    })
}

/// `socket_info_release`: frees a list from `skynet_socket_info`.
///
/// # Safety
/// `si` null or a list from `skynet_socket_info`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn socket_info_release(mut si: *mut SocketInfo) {
    while !si.is_null() {
        // SAFETY: each node is a live block of the list, freed once.
        unsafe {
            let next = (*si).next;
            payload_free(si as *mut u8);
            si = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::encode_udp_address;

    #[test]
    fn udp_address_follows_the_datagram() {
        let from: SocketAddr = "127.0.0.1:23099".parse().unwrap();
        let mut bytes = b"datagram".to_vec();
        bytes.extend_from_slice(&encode_udp_address(&from));
        let msg = record::Event::udp(5, Payload::copy_of(&bytes), 8).into_message();
        let rec = msg.data() as *const SocketMessage;
        let mut size = 0;
        // SAFETY: `rec` is the record at the start of a live PTYPE_SOCKET message.
        let addr = unsafe { skynet_socket_udp_address(rec, &mut size) };
        assert_eq!(size, 7);
        // SAFETY: the address holds `size` bytes inside the message's buffer.
        let addr = unsafe { std::slice::from_raw_parts(addr as *const u8, size as usize) };
        assert_eq!(socket::decode_udp_address(addr), Some(from));
        // SAFETY: as above; the buffer is freed once, with the message.
        unsafe { record::free_buffer(msg.bytes()) };
    }

    #[test]
    fn udp_address_of_another_event_is_null() {
        let msg = record::Event::close(5).into_message();
        let mut size = -1;
        // SAFETY: a live CLOSE record.
        let addr = unsafe { skynet_socket_udp_address(msg.data() as *const _, &mut size) };
        assert!(addr.is_null());
        assert_eq!(size, -1);
    }

    #[test]
    fn send_buffers_are_taken_copied_or_refused() {
        let p = payload_alloc(3);
        // SAFETY: a fresh block of 3 bytes.
        unsafe { p.copy_from(b"abc".as_ptr(), 3) };
        let memory = SocketSendBuffer {
            id: 1,
            kind: BUFFER_MEMORY,
            buffer: p as *const c_void,
            sz: 3,
        };
        // SAFETY: a malloc buffer of 3 bytes, handed over.
        let taken = unsafe { take(&memory) }.unwrap();
        assert!(matches!(&taken, SendBuffer::Payload(b) if b.as_ptr() == p));
        let raw = SocketSendBuffer {
            kind: BUFFER_RAWPOINTER,
            ..memory
        };
        // SAFETY: `p` is alive (owned by `taken`) and 3 bytes long.
        let copied = unsafe { take(&raw) }.unwrap();
        assert!(matches!(&copied, SendBuffer::Bytes(v) if v == b"abc"));
        let object = SocketSendBuffer { kind: 1, ..raw };
        // SAFETY: refused without reading the buffer.
        assert!(unsafe { take(&object) }.is_none());
    }
}
