//! Remote routing: sends to a global name, or to a handle of another harbor, are handed
//! to the `harbor` service, which knows the names and the links to other nodes.
//!
//! The hand-off is a PTYPE_SYSTEM message to the harbor service; source and session
//! travel in the message itself. Its payload is the original payload grown in place by
//! a [`TRAILER`]: the destination handle (u32 little-endian, 0 for a name), the original
//! type, the name's length and the name padded to [`GLOBALNAME_LENGTH`]. Growing the
//! buffer (realloc) instead of copying it leaves a remote message with one copy on its
//! way out, the one into the socket frame.

use crate::context;
use crate::message::{self, Message, Payload, PTYPE_SYSTEM};
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};

pub const GLOBALNAME_LENGTH: usize = 16;
const TRAILER: usize = 4 + 1 + 1 + GLOBALNAME_LENGTH;

/// The harbor service (0 before it starts: remote messages are then dropped).
static REMOTE: AtomicU32 = AtomicU32::new(0);

pub fn start(harbor_service: u32) {
    REMOTE.store(harbor_service, Ordering::Release);
}

/// Where a remote message goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Handle(u32),
    Name(Vec<u8>),
}

/// A decoded hand-off: the original message's target, type and payload.
#[derive(Debug)]
pub struct Remote {
    pub target: Target,
    pub ptype: u8,
    pub payload: Payload,
}

fn trailer(handle: u32, name: &[u8], ptype: u8) -> [u8; TRAILER] {
    let name = &name[..name.len().min(GLOBALNAME_LENGTH)];
    let mut trailer = [0u8; TRAILER];
    trailer[..4].copy_from_slice(&handle.to_le_bytes());
    trailer[4] = ptype;
    trailer[5] = name.len() as u8;
    trailer[6..6 + name.len()].copy_from_slice(name);
    trailer
}

fn hand_off(handle: u32, name: &[u8], msg: Message) {
    let remote = REMOTE.load(Ordering::Acquire);
    if remote == 0 {
        return;
    }
    let trailer = trailer(handle, name, msg.ptype());
    let (source, session, len) = (msg.source, msg.session, msg.len());
    let raw = msg.into_payload().into_raw();
    // SAFETY: `raw` is null or the live payload buffer we just took over from the
    // message; realloc keeps its `len` bytes and returns a buffer of len + TRAILER.
    let grown = unsafe { message::payload_realloc(raw, len + TRAILER) };
    // SAFETY: `grown` has room for len + TRAILER bytes, and a local array cannot
    // overlap the heap buffer.
    unsafe { ptr::copy_nonoverlapping(trailer.as_ptr(), grown.add(len), TRAILER) };
    // SAFETY: `grown` is a live payload buffer whose len + TRAILER bytes are all
    // initialised (the payload, then the trailer), and nothing else owns it.
    let payload = unsafe { Payload::from_raw(grown, len + TRAILER) };
    context::deliver(remote, Message::new(source, session, PTYPE_SYSTEM, payload));
}

/// Hands `msg` for the global name `name` to the harbor service.
pub fn send_name(name: &[u8], msg: Message) {
    hand_off(0, name, msg);
}

/// Hands `msg` for the remote handle `dest` to the harbor service.
pub fn send_handle(dest: u32, msg: Message) {
    hand_off(dest, &[], msg);
}

/// Takes a hand-off apart; gives the message back if it is too short to be one.
pub fn decode(msg: Message) -> Result<Remote, Message> {
    let len = msg.len();
    if len < TRAILER {
        return Err(msg);
    }
    let trailer = &msg.bytes()[len - TRAILER..];
    let handle = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let ptype = trailer[4];
    let name_len = (trailer[5] as usize).min(GLOBALNAME_LENGTH);
    let target = match name_len {
        0 => Target::Handle(handle),
        n => Target::Name(trailer[6..6 + n].to_vec()),
    };
    let raw = msg.into_payload().into_raw();
    // SAFETY: `raw` is the live buffer the message owned, holding `len` initialised
    // bytes; the payload keeps the first len - TRAILER of them and frees the buffer.
    let payload = unsafe { Payload::from_raw(raw, len - TRAILER) };
    Ok(Remote {
        target,
        ptype,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(handle: u32, name: &[u8], ptype: u8, bytes: &[u8]) -> Message {
        let mut all = bytes.to_vec();
        all.extend_from_slice(&trailer(handle, name, ptype));
        Message::new(7, 9, PTYPE_SYSTEM, Payload::copy_of(&all))
    }

    #[test]
    fn a_hand_off_gives_back_target_type_and_payload() {
        let r = decode(wrap(0x0200_0008, b"", 3, b"hello")).expect("a hand-off");
        assert_eq!(r.target, Target::Handle(0x0200_0008));
        assert_eq!((r.ptype, r.payload.bytes()), (3, &b"hello"[..]));
        let r = decode(wrap(0, b"LOG", 0, b"")).expect("a hand-off");
        assert_eq!(r.target, Target::Name(b"LOG".to_vec()));
        assert!(r.payload.is_empty());
    }

    #[test]
    fn a_short_system_message_is_not_a_hand_off() {
        let m = Message::new(1, 0, PTYPE_SYSTEM, Payload::copy_of(b"short"));
        assert!(decode(m).is_err());
    }
}
