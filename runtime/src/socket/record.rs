//! The PTYPE_SOCKET payload record.
//!
//! The socket server tells a service about one socket event with a PTYPE_SOCKET message
//! (source 0, session 0) whose payload is a [`SocketMessage`] record, laid out as
//! upstream's `struct skynet_socket_message` (`{i32 type, i32 id, i32 ud, pointer
//! buffer}`, [`RECORD_SIZE`] = 24 bytes on 64-bit targets), possibly followed by inline
//! string bytes:
//!
//! | event | `ud` | `buffer` | after the record |
//! |---|---|---|---|
//! | [`DATA`] | byte count | heap payload of `ud` bytes | nothing |
//! | [`UDP`] | payload size | heap payload: `ud` bytes, then the sender address (socket.md §2.3) | nothing |
//! | [`CONNECT`], [`ACCEPT`], [`ERROR`] | per socket.md §2.1 | null | the string, at most [`MAX_TEXT`] bytes, no terminator |
//! | [`CLOSE`], [`WARNING`] | 0 / kilobytes pending | null | nothing |
//!
//! So the message size is `RECORD_SIZE + string length` (just `RECORD_SIZE` when there is
//! no string). A DATA/UDP buffer comes from [`crate::message::payload_alloc`] and belongs
//! to whoever holds the message: the receiving service passes it on (`socketdriver.push`,
//! `netpack.filter`) or frees it.
//!
//! This file is the only place that knows the layout: the socket server describes what
//! happened with an [`Event`], the node turns it into a message with
//! [`Event::into_message`] when it delivers it, and `socketdriver.unpack`,
//! `netpack.filter` and the message log (`LOGON`) read the records back with
//! [`decode`]; [`free_buffer`] frees the buffer of a record nobody received. It knows
//! nothing above [`crate::message`]: it does not deliver anything itself.

use crate::message::{payload_alloc, payload_free, Message, Payload, PTYPE_SOCKET};
use std::ptr;

/// Event types (the `type` field; `socket.lua` indexes its handler table with them).
pub const DATA: i32 = 1;
pub const CONNECT: i32 = 2;
pub const CLOSE: i32 = 3;
pub const ACCEPT: i32 = 4;
pub const ERROR: i32 = 5;
pub const UDP: i32 = 6;
pub const WARNING: i32 = 7;

/// Longest string carried by CONNECT/ACCEPT/ERROR; longer ones are cut.
pub const MAX_TEXT: usize = 128;

/// The record at the start of every PTYPE_SOCKET payload.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketMessage {
    /// The event type ([`DATA`] ... [`WARNING`]).
    pub kind: i32,
    /// The socket id (for ACCEPT: the listening socket).
    pub id: i32,
    /// Event-dependent integer: byte count, port, new connection id, kilobytes.
    pub ud: i32,
    /// DATA/UDP: the heap payload; otherwise null (a string may follow the record).
    pub buffer: *mut u8,
}

/// Size of the record, hence of a message with no inline string.
pub const RECORD_SIZE: usize = std::mem::size_of::<SocketMessage>();

/// A socket event before it is encoded; it owns its DATA/UDP buffer, so dropping an
/// undelivered event frees it.
#[derive(Debug)]
pub struct Event {
    kind: i32,
    id: i32,
    ud: i32,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Empty,
    Buffer(Payload),
    Text(Vec<u8>),
}

fn text(s: &[u8]) -> Body {
    Body::Text(s[..s.len().min(MAX_TEXT)].to_vec())
}

fn size_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Event {
    /// DATA: `size` bytes read from socket `id`, in `buffer`.
    pub fn data(id: i32, buffer: Payload, size: usize) -> Event {
        Event {
            kind: DATA,
            id,
            ud: size_i32(size),
            body: Body::Buffer(buffer),
        }
    }

    /// UDP: a datagram of `size` bytes, followed in `buffer` by the sender address.
    pub fn udp(id: i32, buffer: Payload, size: usize) -> Event {
        Event {
            kind: UDP,
            id,
            ud: size_i32(size),
            body: Body::Buffer(buffer),
        }
    }

    /// CONNECT with its string (local ip, peer ip, `start`, `transfer`, `binding`).
    pub fn connect(id: i32, ud: i32, what: &str) -> Event {
        Event {
            kind: CONNECT,
            id,
            ud,
            body: text(what.as_bytes()),
        }
    }

    /// CLOSE.
    pub fn close(id: i32) -> Event {
        Event {
            kind: CLOSE,
            id,
            ud: 0,
            body: Body::Empty,
        }
    }

    /// ACCEPT on listening socket `id` of connection `new_id` from `peer` (`ip:port`).
    pub fn accept(id: i32, new_id: i32, peer: &str) -> Event {
        Event {
            kind: ACCEPT,
            id,
            ud: new_id,
            body: text(peer.as_bytes()),
        }
    }

    /// ERROR with its text.
    pub fn error(id: i32, what: &str) -> Event {
        Event {
            kind: ERROR,
            id,
            ud: 0,
            body: text(what.as_bytes()),
        }
    }

    /// WARNING: `kb` kilobytes pending, or 0 once drained.
    pub fn warning(id: i32, kb: i32) -> Event {
        Event {
            kind: WARNING,
            id,
            ud: kb,
            body: Body::Empty,
        }
    }

    /// The event type.
    pub fn kind(&self) -> i32 {
        self.kind
    }

    /// Encodes the event as a PTYPE_SOCKET payload; the record takes over the DATA/UDP
    /// buffer.
    pub fn encode(self) -> Payload {
        let Event { kind, id, ud, body } = self;
        let (buffer, inline) = match body {
            Body::Empty => (ptr::null_mut(), Vec::new()),
            Body::Buffer(b) => (b.into_raw(), Vec::new()),
            Body::Text(t) => (ptr::null_mut(), t),
        };
        let size = RECORD_SIZE + inline.len();
        let p = payload_alloc(size);
        // SAFETY: `p` is a fresh buffer of `size` bytes: the record fits at its start
        // (written unaligned, so no alignment is assumed) and `inline` right after it.
        unsafe {
            ptr::write_unaligned(
                p.cast::<SocketMessage>(),
                SocketMessage {
                    kind,
                    id,
                    ud,
                    buffer,
                },
            );
            ptr::copy_nonoverlapping(inline.as_ptr(), p.add(RECORD_SIZE), inline.len());
        }
        // SAFETY: `p` is a live buffer of `size` bytes from payload_alloc, written above,
        // that nothing else owns.
        unsafe { Payload::from_raw(p, size) }
    }

    /// The PTYPE_SOCKET message (source 0, session 0) that tells a service of the event.
    pub fn into_message(self) -> Message {
        Message::new(0, 0, PTYPE_SOCKET, self.encode())
    }
}

/// A decoded record, borrowing the payload it was read from.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub kind: i32,
    pub id: i32,
    pub ud: i32,
    /// DATA/UDP: the heap buffer (owned by whoever holds the message); else null.
    pub buffer: *mut u8,
    /// The inline string (empty when `buffer` is set or nothing follows the record).
    pub text: &'a [u8],
}

/// Reads the record at the start of `payload` (a whole PTYPE_SOCKET payload). None when
/// it is shorter than a record.
pub fn decode(payload: &[u8]) -> Option<Record<'_>> {
    if payload.len() < RECORD_SIZE {
        return None;
    }
    // SAFETY: `payload` holds at least RECORD_SIZE bytes; the read is unaligned and every
    // bit pattern is a valid SocketMessage (integers and a raw pointer).
    let m = unsafe { ptr::read_unaligned(payload.as_ptr().cast::<SocketMessage>()) };
    let text = if m.buffer.is_null() {
        &payload[RECORD_SIZE..]
    } else {
        &[]
    };
    Some(Record {
        kind: m.kind,
        id: m.id,
        ud: m.ud,
        buffer: m.buffer,
        text,
    })
}

impl Record<'_> {
    /// The `ud` bytes of a DATA/UDP buffer (empty when there is none).
    ///
    /// # Safety
    /// `buffer` must be null or a live buffer of at least `ud` bytes (as the socket server
    /// makes them), not freed while the slice is used.
    pub unsafe fn data(&self) -> &[u8] {
        if self.buffer.is_null() || self.ud <= 0 {
            return &[];
        }
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(self.buffer, self.ud as usize) }
    }

    /// The sender address after a UDP datagram (7 bytes for IPv4, 19 for IPv6), or None
    /// for other events or an unknown protocol byte.
    ///
    /// # Safety
    /// For UDP, `buffer` must be a live buffer of `ud` bytes followed by the address.
    pub unsafe fn udp_address(&self) -> Option<&[u8]> {
        if self.kind != UDP || self.buffer.is_null() || self.ud < 0 {
            return None;
        }
        // SAFETY: the caller guarantees the address follows the `ud` payload bytes; its
        // first byte tells its length.
        unsafe {
            let at = self.buffer.add(self.ud as usize);
            let len = match *at {
                1 => 1 + 2 + 4,
                2 => 1 + 2 + 16,
                _ => return None,
            };
            Some(std::slice::from_raw_parts(at, len))
        }
    }
}

/// Frees the DATA/UDP buffer a record owns (the record itself stays with its payload).
///
/// # Safety
/// `payload` must be a PTYPE_SOCKET payload whose buffer has not been freed or handed on;
/// the buffer must not be used afterwards.
pub unsafe fn free_buffer(payload: &[u8]) {
    if let Some(r) = decode(payload) {
        if r.kind == DATA || r.kind == UDP {
            // SAFETY: guaranteed by the caller; payload_free accepts null.
            unsafe { payload_free(r.buffer) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::payload_from;

    #[test]
    fn layout() {
        #[cfg(target_pointer_width = "64")]
        assert_eq!(RECORD_SIZE, 24);
        assert_eq!(std::mem::offset_of!(SocketMessage, id), 4);
        assert_eq!(std::mem::offset_of!(SocketMessage, ud), 8);
    }

    #[test]
    fn data_round_trip() {
        // SAFETY: the buffer comes from payload_from and is freed once, below.
        unsafe {
            let p = Event::data(7, Payload::from_raw(payload_from(b"abc"), 3), 3).encode();
            assert_eq!(p.len(), RECORD_SIZE);
            let r = decode(p.bytes()).expect("record");
            assert_eq!((r.kind, r.id, r.ud), (DATA, 7, 3));
            assert!(r.text.is_empty());
            assert_eq!(r.data(), b"abc");
            assert!(r.udp_address().is_none());
            free_buffer(p.bytes());
        }
    }

    #[test]
    fn text_round_trip_and_truncation() {
        let p = Event::accept(3, 9, "1.2.3.4:80").encode();
        assert_eq!(p.len(), RECORD_SIZE + 10);
        let r = decode(p.bytes()).expect("record");
        assert_eq!(
            (r.kind, r.id, r.ud, r.text),
            (ACCEPT, 3, 9, &b"1.2.3.4:80"[..])
        );
        assert!(r.buffer.is_null());

        let long = "x".repeat(300);
        let p = Event::error(1, &long).encode();
        assert_eq!(p.len(), RECORD_SIZE + MAX_TEXT);
        assert_eq!(decode(p.bytes()).expect("record").text.len(), MAX_TEXT);

        let p = Event::close(4).encode();
        let r = decode(p.bytes()).expect("record");
        assert_eq!((r.kind, r.id, r.ud, r.text), (CLOSE, 4, 0, &b""[..]));
        assert!(decode(&p.bytes()[..RECORD_SIZE - 1]).is_none());
    }

    #[test]
    fn udp_address() {
        let mut buf = b"hey".to_vec();
        buf.extend_from_slice(&[1, 0x1f, 0x90, 127, 0, 0, 1]);
        // SAFETY: as in data_round_trip.
        unsafe {
            let p = Event::udp(2, Payload::copy_of(&buf), 3).encode();
            let r = decode(p.bytes()).expect("record");
            assert_eq!(r.data(), b"hey");
            assert_eq!(r.udp_address(), Some(&buf[3..]));
            free_buffer(p.bytes());
        }
    }

    #[test]
    fn into_message() {
        let m = Event::connect(5, 80, "start").into_message();
        assert_eq!((m.source, m.session, m.ptype()), (0, 0, PTYPE_SOCKET));
        assert_eq!(m.bytes().len(), RECORD_SIZE + 5);
        let r = decode(m.bytes()).expect("record");
        assert_eq!(
            (r.kind, r.id, r.ud, r.text),
            (CONNECT, 5, 80, &b"start"[..])
        );
    }
}
