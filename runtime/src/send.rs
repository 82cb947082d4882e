//! Sending from a service: [`send`] resolves the destination (a handle, `:hex`, a local
//! `.name`, or a global name for the harbor), takes a session when asked, checks the
//! size and routes the message to a local queue or to the harbor.

use crate::context::{self, Context};
use crate::message::{Message, MAX_PAYLOAD};
use crate::{harbor, logging, strtol};

/// Where a message goes.
pub enum Destination<'a> {
    Handle(u32),
    Name(&'a [u8]),
}

/// Why a send failed.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// Unknown or dead destination (upstream's -1).
    NoDestination,
    /// Payload too large (upstream's -2).
    TooLarge,
}

/// Sends `msg` from `ctx` to `dest`. A source of 0 becomes `ctx`; with `alloc_session`
/// the message gets a fresh session of `ctx` (after the destination resolved, as
/// upstream). Returns the session.
pub fn send(
    ctx: &Context,
    dest: Destination,
    mut msg: Message,
    alloc_session: bool,
) -> Result<i32, SendError> {
    if msg.len() > MAX_PAYLOAD {
        let to = match dest {
            Destination::Handle(h) => format!("{h:x}"),
            Destination::Name(n) => String::from_utf8_lossy(n).into_owned(),
        };
        logging::error(
            ctx.handle,
            format!("error: The message to {to} is too large"),
        );
        return Err(SendError::TooLarge);
    }
    // An unknown local name fails before a session is taken, as upstream.
    let dest = match dest {
        Destination::Handle(h) => Ok(h),
        Destination::Name(name) => match name.first() {
            Some(b':') => Ok(strtol::hex_handle(&name[1..])),
            Some(b'.') => match context::handles().find_name(&name[1..]) {
                0 => return Err(SendError::NoDestination),
                h => Ok(h),
            },
            _ => Err(name),
        },
    };
    if alloc_session {
        msg.session = ctx.new_session();
    }
    if msg.source == 0 {
        msg.source = ctx.handle;
    }
    let session = msg.session;
    let dest = match dest {
        Ok(h) => h,
        Err(global_name) => {
            harbor::send_name(global_name, msg);
            return Ok(session);
        }
    };
    if dest == 0 {
        if !msg.data().is_null() {
            logging::error(ctx.handle, "error: Destination address can't be 0");
            return Err(SendError::NoDestination);
        }
        return Ok(session);
    }
    if context::handles().is_remote(dest) {
        harbor::send_handle(dest, msg);
        return Ok(session);
    }
    match context::deliver(dest, msg) {
        true => Ok(session),
        false => Err(SendError::NoDestination),
    }
}

/// Converts `:hex` or `.name` to a handle (0 when it cannot), logging upstream's errors.
pub fn query_name(ctx_handle: u32, name: &str) -> u32 {
    match name.as_bytes().first() {
        Some(b':') => strtol::hex_handle(&name.as_bytes()[1..]),
        Some(b'.') => context::handles().find_name(&name.as_bytes()[1..]),
        _ => {
            logging::error(
                ctx_handle,
                format!("error: Don't support query global name {name}"),
            );
            0
        }
    }
}
