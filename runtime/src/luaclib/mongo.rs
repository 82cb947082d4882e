//! `skynet.mongo.driver`: the wire-protocol helpers under `skynet.db.mongo`.
//!
//! * `op_msg(request_id, flags, doc)` builds a complete OP_MSG request (header, flag bits,
//!   one kind-0 section holding the BSON document `doc`, a `bson` userdata or a light
//!   userdata pointing at BSON bytes).
//! * `length(str4)` decodes the little-endian message length prefix and returns the
//!   number of bytes still to read.
//! * `reply(msg)` checks a server reply (without its length prefix) and returns
//!   `true, response_to, doc` where `doc` is a light userdata pointing into `msg`, or
//!   `false` when the message is too short to hold a header.
//!
//! All integers on the wire are little-endian `i32`.

use crate::lua::raise::{arg_bytes, arg_integer, lua_fn, raise, Raise};
use crate::lua::stack::{new_lib, push_bytes};
use mlua::ffi::{self, lua_State};
use std::ffi::c_int;

const OP_MSG: i32 = 2013;
const FLAG_CHECKSUM_PRESENT: i32 = 1;
const FLAG_MORE_TO_COME: i32 = 1 << 1;
/// `request_id, response_to, opcode, flags` (the length prefix is not included).
const REPLY_HEADER: usize = 16;

fn le_i32(b: &[u8]) -> i32 {
    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// What `reply` found in a server message.
#[derive(Debug, PartialEq)]
enum Reply {
    /// Shorter than a header.
    Short,
    /// `response_to` and the offset of the single document.
    Doc(i32, usize),
}

/// Validates a reply; `Err` holds upstream's error text.
fn parse_reply(data: &[u8]) -> Result<Reply, String> {
    if data.len() < REPLY_HEADER {
        return Ok(Reply::Short);
    }
    let response_to = le_i32(&data[4..]);
    let opcode = le_i32(&data[8..]);
    let flags = le_i32(&data[12..]);
    if opcode != OP_MSG {
        return Err(format!("Unsupported opcode:{opcode}"));
    }
    if flags != 0 {
        if flags & FLAG_CHECKSUM_PRESENT != 0 {
            return Err("Unsupported OP_MSG flag checksumPresent".to_owned());
        }
        if flags ^ FLAG_MORE_TO_COME != 0 {
            return Err(format!("Unsupported OP_MSG flag:{flags}"));
        }
    }
    let body = &data[REPLY_HEADER..];
    let Some((&kind, doc)) = body.split_first() else {
        return Err("Unsupported OP_MSG reply: no section".to_owned());
    };
    if kind != 0 {
        return Err(format!("Unsupported OP_MSG payload type: {kind}"));
    }
    if doc.len() < 4 || le_i32(doc) as i64 != doc.len() as i64 {
        return Err("Unsupported OP_MSG reply: >1 section".to_owned());
    }
    Ok(Reply::Doc(response_to, REPLY_HEADER + 1))
}

/// The OP_MSG header for a document of `doc_len` bytes.
fn op_msg_header(request_id: i32, flags: i32, doc_len: i32) -> [u8; 21] {
    let mut h = [0u8; 21];
    h[0..4].copy_from_slice(&(21i32.wrapping_add(doc_len)).to_le_bytes());
    h[4..8].copy_from_slice(&request_id.to_le_bytes());
    // response_to stays 0
    h[12..16].copy_from_slice(&OP_MSG.to_le_bytes());
    h[16..20].copy_from_slice(&flags.to_le_bytes());
    // h[20]: section kind 0
    h
}

unsafe fn l_reply(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the reply string stays on the stack while it is read.
    unsafe {
        let data = arg_bytes(l, 1)?;
        match parse_reply(data) {
            Ok(Reply::Short) => {
                ffi::lua_pushboolean(l, 0);
                Ok(1)
            }
            Ok(Reply::Doc(id, off)) => {
                ffi::lua_pushboolean(l, 1);
                ffi::lua_pushinteger(l, id.into());
                // The pointer stays valid while the caller keeps the reply string.
                ffi::lua_pushlightuserdata(l, data.as_ptr().add(off) as *mut _);
                Ok(3)
            }
            Err(msg) => Err(raise!("{msg}")),
        }
    }
}

unsafe fn l_length(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the string stays on the stack while it is read.
    unsafe {
        let data = arg_bytes(l, 1)?;
        if data.len() < 4 {
            return Err(raise!("Invalid length prefix ({} bytes)", data.len()));
        }
        ffi::lua_pushinteger(l, (i64::from(le_i32(data))) - 4);
    }
    Ok(1)
}

unsafe fn l_op_msg(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the document pointer is read within the bounds of its userdata (full
    // userdata) or as the caller promises (light userdata pointing at a BSON document).
    unsafe {
        let id = arg_integer(l, 1)? as i32;
        let flags = arg_integer(l, 2)? as i32;
        let doc = ffi::lua_touserdata(l, 3) as *const u8;
        if doc.is_null() {
            return Err(raise!("opmsg require cmd document"));
        }
        let full = ffi::lua_type(l, 3) == ffi::LUA_TUSERDATA;
        let avail = ffi::lua_rawlen(l, 3);
        if full && avail < 4 {
            return Err(raise!("Invalid bson document"));
        }
        let len = le_i32(std::slice::from_raw_parts(doc, 4));
        if len < 5 || (full && len as usize > avail) {
            return Err(raise!("Invalid bson document length {len}"));
        }
        let header = op_msg_header(id, flags, len);
        push_bytes(l, &header);
        push_bytes(l, std::slice::from_raw_parts(doc, len as usize));
        ffi::lua_concat(l, 2);
    }
    Ok(1)
}

/// `require "skynet.mongo.driver"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state; the names are NUL-terminated literals.
    unsafe {
        new_lib(
            l,
            &[
                (c"reply", lua_fn!(l_reply)),
                (c"length", lua_fn!(l_length)),
                (c"op_msg", lua_fn!(l_op_msg)),
            ],
        );
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::testvm::{TestVm, CHECKS};
    use crate::luaclib::bson;

    const PRELUDE: &str = r#"
local function i32(n) return string.pack('<i4', n) end
"#;

    fn vm() -> TestVm {
        TestVm::new(&format!("{CHECKS}{PRELUDE}"), &[])
            .with_module(c"driver", open)
            .with_module(c"bson", bson::open)
    }

    #[test]
    fn op_msg_bytes() {
        vm().check(
            r#"
            local doc = bson.encode_order('ping', 1)
            local d = tostring(doc)
            local m = driver.op_msg(7, 2, doc)
            eq(i32(21 + #d) .. i32(7) .. i32(0) .. i32(2013) .. i32(2) .. '\0' .. d, m)
            eq(m, driver.op_msg(7, 2, bson.to_lightuserdata(doc)))
            fails('opmsg require cmd document', driver.op_msg, 1, 0, nil)
            fails('opmsg require cmd document', driver.op_msg, 1, 0, 'str')
            fails('number expected', driver.op_msg, 'x', 0, doc)
            "#,
        );
    }

    #[test]
    fn length_prefix() {
        vm().check(
            r#"
            eq(96, driver.length(i32(100)))
            eq(-4, driver.length(i32(0) .. 'junk'))
            fails('Invalid length prefix', driver.length, 'ab')
            "#,
        );
    }

    #[test]
    fn reply_parsing() {
        vm().check(
            r#"
            local d = tostring(bson.encode_order('ok', 1))
            local function msg(resp, op, flags, kind, body)
              return i32(99) .. i32(resp) .. i32(op) .. i32(flags) .. kind .. body
            end
            local ok, id, doc = driver.reply(msg(42, 2013, 0, '\0', d))
            eq(true, ok); eq(42, id); eq('userdata', type(doc))
            eq(1, bson.decode(doc).ok)
            ok, id = driver.reply(msg(43, 2013, 2, '\0', d))
            eq(true, ok); eq(43, id)
            eq(false, driver.reply(string.rep('\0', 15)))
            eq(1, select('#', driver.reply('')))
            fails('Unsupported opcode:1', driver.reply, msg(1, 1, 0, '\0', d))
            fails('Unsupported OP_MSG flag checksumPresent', driver.reply, msg(1, 2013, 1, '\0', d))
            fails('Unsupported OP_MSG flag:65538', driver.reply, msg(1, 2013, 65538, '\0', d))
            fails('Unsupported OP_MSG payload type: 1', driver.reply, msg(1, 2013, 0, '\1', d))
            fails('Unsupported OP_MSG reply: >1 section', driver.reply, msg(1, 2013, 0, '\0', d .. d))
            fails('Unsupported OP_MSG reply: >1 section', driver.reply, msg(1, 2013, 0, '\0', 'ab'))
            fails('Unsupported OP_MSG reply', driver.reply, msg(1, 2013, 0, '', ''))
            "#,
        );
    }
}
