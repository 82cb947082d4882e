//! Remote routing: sends to a global name, or to a handle of another harbor, are handed
//! to the `harbor` service, which knows the names and the links to other nodes.
//!
//! The hand-off is a PTYPE_SYSTEM message to the harbor service whose payload is a
//! [`Remote`] header followed by the original payload; source and session travel in the
//! message itself.

use crate::context;
use crate::message::{Message, Payload, PTYPE_SYSTEM};
use std::sync::atomic::{AtomicU32, Ordering};

pub const GLOBALNAME_LENGTH: usize = 16;
const HEADER: usize = 4 + 1 + 1 + GLOBALNAME_LENGTH;

/// The harbor service (0 before it starts: remote messages are then dropped).
static REMOTE: AtomicU32 = AtomicU32::new(0);

pub fn start(harbor_service: u32) {
    REMOTE.store(harbor_service, Ordering::Release);
}

/// Where a remote message goes.
pub enum Target {
    Handle(u32),
    Name(Vec<u8>),
}

/// A decoded hand-off.
pub struct Remote {
    pub target: Target,
    pub ptype: u8,
    pub payload: Vec<u8>,
}

fn hand_off(handle: u32, name: &[u8], msg: Message) {
    let remote = REMOTE.load(Ordering::Acquire);
    if remote == 0 {
        return;
    }
    let name = &name[..name.len().min(GLOBALNAME_LENGTH)];
    let mut buf = Vec::with_capacity(HEADER + msg.len());
    buf.extend_from_slice(&handle.to_le_bytes());
    buf.push(msg.ptype());
    buf.push(name.len() as u8);
    let mut padded = [0u8; GLOBALNAME_LENGTH];
    padded[..name.len()].copy_from_slice(name);
    buf.extend_from_slice(&padded);
    buf.extend_from_slice(msg.bytes());
    let wrapped = Message::new(
        msg.source,
        msg.session,
        PTYPE_SYSTEM,
        Payload::copy_of(&buf),
    );
    context::deliver(remote, wrapped);
}

/// Hands `msg` for the global name `name` to the harbor service.
pub fn send_name(name: &[u8], msg: Message) {
    hand_off(0, name, msg);
}

/// Hands `msg` for the remote handle `dest` to the harbor service.
pub fn send_handle(dest: u32, msg: Message) {
    hand_off(dest, &[], msg);
}

/// Decodes a hand-off payload; None if it is not one.
pub fn decode(bytes: &[u8]) -> Option<Remote> {
    if bytes.len() < HEADER {
        return None;
    }
    let handle = u32::from_le_bytes(bytes[0..4].try_into().ok()?);
    let ptype = bytes[4];
    let name_len = (bytes[5] as usize).min(GLOBALNAME_LENGTH);
    let target = if name_len > 0 {
        Target::Name(bytes[6..6 + name_len].to_vec())
    } else {
        Target::Handle(handle)
    };
    Some(Remote {
        target,
        ptype,
        payload: bytes[HEADER..].to_vec(),
    })
}
