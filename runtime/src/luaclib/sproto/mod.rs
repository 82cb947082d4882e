//! `sproto.core`: the native half of sproto (cloudwu/sproto), the protocol most skynet
//! games speak (others.md §10). Upstream's `sproto.lua` and ours drive it the same way.
//!
//! * [`schema`]: the binary schema `sprotoparser` produces, read into types and
//!   protocols;
//! * [`encode`] / [`decode`]: a message between a Lua table and its wire bytes, reading
//!   and writing the table directly (no per-field callback or allocation);
//! * [`pack`]: the 0-packing of messages on the wire;
//! * [`buffer`]: the Lua-owned output buffer the encoder and packer write into;
//! * [`names`]: each VM's field names as Lua strings, so fields are looked up by a
//!   string value rather than a C string;
//! * [`bindings`]: the Lua functions, with upstream's arguments, results and error
//!   texts, and the 16 process-wide schema slots of `saveproto` / `loadproto`.
//!
//! Schemas and their types reach Lua as light userdata, as upstream's do: a schema
//! lives until `deleteproto`, and a type pointer is only good while its schema lives
//! (`sproto.lua` keeps the schema object alive for that).

mod bindings;
mod buffer;
mod decode;
mod encode;
mod names;
mod pack;
mod schema;

pub use bindings::open;

use crate::lua::raise::{raise, Lossy, Raise};
use std::ffi::CStr;

/// Nesting of structs past which encode and decode give up (upstream's).
const MAX_DEPTH: usize = 64;

/// Why an encode or decode stopped; becomes upstream's error text.
#[derive(Clone, Copy, Debug)]
pub enum Fault<'s> {
    TooLarge,
    TooDeep,
    StackOverflow,
    Decode,
    /// A value of the wrong Lua type: `what` is "an integer", "a boolean", "a string".
    NotA {
        what: &'static str,
        ty: &'s CStr,
        field: &'s CStr,
        index: i64,
        got: &'static CStr,
    },
    NotTable {
        ty: &'s CStr,
        field: &'s CStr,
        got: &'static CStr,
    },
    NoMainIndex(i32, &'s CStr),
    NoMapKey(&'s CStr),
    NoMapValue(&'s CStr),
}

impl From<Fault<'_>> for Raise {
    fn from(fault: Fault<'_>) -> Raise {
        match fault {
            Fault::TooLarge => raise!("object is too large (>{})", buffer::MAX_SIZE),
            Fault::TooDeep => raise!("The table is too deep"),
            Fault::StackOverflow => raise!("stack overflow"),
            Fault::Decode => raise!("decode error"),
            Fault::NotA {
                what,
                ty,
                field,
                index,
                got,
            } => raise!(
                "{}.{}[{index}] is not {what} (Is a {})",
                Lossy(ty.to_bytes()),
                Lossy(field.to_bytes()),
                Lossy(got.to_bytes())
            ),
            Fault::NotTable { ty, field, got } => raise!(
                "{}.{}(1) should be a table or an userdata with metamethods (Is a {})",
                Lossy(ty.to_bytes()),
                Lossy(field.to_bytes()),
                Lossy(got.to_bytes())
            ),
            Fault::NoMainIndex(tag, field) => {
                raise!(
                    "Can't find main index (tag={tag}) in [{}]",
                    Lossy(field.to_bytes())
                )
            }
            Fault::NoMapKey(field) => {
                raise!("Can't find key field in [{}]", Lossy(field.to_bytes()))
            }
            Fault::NoMapValue(field) => {
                raise!("Can't find value field in [{}]", Lossy(field.to_bytes()))
            }
        }
    }
}

#[cfg(test)]
mod tests;
