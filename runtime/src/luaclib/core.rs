//! `skynet.core`: the service's view of the core — send, redirect, the text commands,
//! the callback, logging, tracing, time, and the serializer (re-exported from `seri`).
//!
//! Functions that need the service get its Context through upvalue 1 (a light userdata
//! set from the registry key `skynet_context` when the module opens).

use super::seri;
use crate::command;
use crate::context::{self, Context};
use crate::handle::HANDLE_REMOTE_SHIFT;
use crate::lua::host::host;
use crate::lua::stack::{self as lua, push_bytes, raise, to_bytes, type_name};
use crate::message::{self, Message, Payload};
use crate::send::{self, Destination, SendError};
use crate::{logging, strtol, timer};
use mlua::ffi::{self, lua_State};
use std::ffi::{c_int, CStr};

/// The service behind the running function (upvalue 1).
unsafe fn context<'a>(l: *mut lua_State) -> &'a Context {
    // SAFETY: `open` sets upvalue 1 of every function to the service's Context, which
    // outlives its VM.
    unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Context) }
}

unsafe extern "C-unwind" fn callback(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned; the rest is stack work
    // on the service's own VM.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TFUNCTION);
        let forward = ffi::lua_toboolean(l, 2) != 0;
        ffi::lua_settop(l, 1);
        host(l).set_callback(l, forward);
    }
    0
}

/// Reads the destination argument: a handle or an address string.
unsafe fn destination<'a>(l: *mut lua_State, idx: c_int) -> Destination<'a> {
    // SAFETY: stack reads; errors raise before anything is owned.
    unsafe {
        let h = ffi::lua_tointegerx(l, idx, std::ptr::null_mut()) as u32;
        if h != 0 {
            return Destination::Handle(h);
        }
        if ffi::lua_type(l, idx) == ffi::LUA_TNUMBER {
            raise(l, "Invalid service address 0".to_owned());
        }
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => Destination::Name(to_bytes(l, idx).unwrap_or(b"")),
            _ => {
                let t = type_name(l, idx);
                raise(
                    l,
                    format!("dest address type ({t}) must be a string or number."),
                )
            }
        }
    }
}

/// `send`/`redirect` after the address: type, session, message [, size].
unsafe fn send_message(l: *mut lua_State, source: u32, idx_type: c_int) -> c_int {
    // SAFETY: argument checks run first and raise with nothing owned; after that the
    // only owned value (the payload) is handed to `send::send`.
    unsafe {
        let ctx = context(l);
        let dest = destination(l, 1);
        let ptype = ffi::luaL_checkinteger(l, idx_type) as i32;
        let alloc_session = ffi::lua_isnil(l, idx_type + 1) != 0;
        let session = match alloc_session {
            true => 0,
            false => ffi::luaL_checkinteger(l, idx_type + 1) as i32,
        };
        let payload = match ffi::lua_type(l, idx_type + 2) {
            ffi::LUA_TSTRING => match to_bytes(l, idx_type + 2).unwrap_or(b"") {
                [] => Payload::NULL,
                bytes => Payload::copy_of(bytes),
            },
            ffi::LUA_TLIGHTUSERDATA => {
                let p = ffi::lua_touserdata(l, idx_type + 2) as *mut u8;
                let size = ffi::luaL_checkinteger(l, idx_type + 3) as c_int;
                Payload::from_raw(p, size.max(0) as usize)
            }
            _ => {
                let t = type_name(l, idx_type + 2);
                raise(l, format!("invalid param {t}"))
            }
        };
        let msg = Message::new(source, session, (ptype & 0xff) as u8, payload);
        match send::send(ctx, dest, msg, alloc_session) {
            Ok(session) => {
                ffi::lua_pushinteger(l, session as ffi::lua_Integer);
                1
            }
            Err(SendError::TooLarge) => {
                ffi::lua_pushboolean(l, 0);
                1
            }
            Err(SendError::NoDestination) => 0,
        }
    }
}

unsafe extern "C-unwind" fn send(l: *mut lua_State) -> c_int {
    // SAFETY: see send_message.
    unsafe { send_message(l, 0, 2) }
}

unsafe extern "C-unwind" fn redirect(l: *mut lua_State) -> c_int {
    // SAFETY: see send_message.
    unsafe {
        let source = ffi::luaL_checkinteger(l, 2) as u32;
        send_message(l, source, 3)
    }
}

unsafe extern "C-unwind" fn genid(l: *mut lua_State) -> c_int {
    // SAFETY: stack push on a live VM.
    unsafe {
        let session = context(l).new_session();
        ffi::lua_pushinteger(l, session as ffi::lua_Integer);
    }
    1
}

/// Runs a text command with the optional second argument as its parameter.
unsafe fn run_command(l: *mut lua_State, param: Option<String>) -> Option<String> {
    // SAFETY: luaL_checklstring raises before anything is owned.
    let cmd = unsafe { lua::check_bytes(l, 1) };
    let cmd = String::from_utf8_lossy(cmd);
    // SAFETY: see `context`.
    command::run(unsafe { context(l) }, &cmd, param.as_deref())
}

unsafe extern "C-unwind" fn lcommand(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned; then stack pushes.
    unsafe {
        lua::check_bytes(l, 1);
        let param = if ffi::lua_gettop(l) == 2 {
            Some(String::from_utf8_lossy(lua::check_bytes(l, 2)).into_owned())
        } else {
            None
        };
        match run_command(l, param) {
            Some(r) => {
                push_bytes(l, r.as_bytes());
                1
            }
            None => 0,
        }
    }
}

unsafe extern "C-unwind" fn intcommand(l: *mut lua_State) -> c_int {
    // SAFETY: argument checks raise before anything is owned; `result` is dropped
    // before the only later raise.
    unsafe {
        lua::check_bytes(l, 1);
        let param = if ffi::lua_gettop(l) == 2 {
            if ffi::lua_isnumber(l, 2) != 0 {
                let n = ffi::luaL_checkinteger(l, 2) as i32;
                Some(n.to_string())
            } else {
                Some(String::from_utf8_lossy(lua::check_bytes(l, 2)).into_owned())
            }
        } else {
            None
        };
        let Some(result) = run_command(l, param) else {
            return 0;
        };
        if result.is_empty() {
            ffi::lua_pushinteger(l, 0);
        } else if let Some(i) = strtol::whole(result.as_bytes()) {
            ffi::lua_pushinteger(l, i);
        } else if let Ok(f) = result.trim_start().parse::<f64>() {
            ffi::lua_pushnumber(l, f);
        } else {
            raise(l, format!("Invalid result {result}"));
        }
        1
    }
}

unsafe extern "C-unwind" fn addresscommand(l: *mut lua_State) -> c_int {
    // SAFETY: as lcommand.
    unsafe {
        lua::check_bytes(l, 1);
        let param = if ffi::lua_gettop(l) == 2 {
            Some(String::from_utf8_lossy(lua::check_bytes(l, 2)).into_owned())
        } else {
            None
        };
        let Some(result) = run_command(l, param) else {
            return 0;
        };
        let hex = result
            .strip_prefix(':')
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
        match hex.and_then(|h| u32::from_str_radix(h, 16).ok()) {
            Some(h) => {
                ffi::lua_pushinteger(l, h as ffi::lua_Integer);
                1
            }
            None => 0,
        }
    }
}

unsafe extern "C-unwind" fn error(l: *mut lua_State) -> c_int {
    // SAFETY: luaL_tolstring may run __tostring (which may raise) before anything Rust
    // owns is created; the joined text is built afterwards.
    unsafe {
        let n = ffi::lua_gettop(l).max(1);
        ffi::lua_settop(l, n);
        for i in 1..=n {
            ffi::luaL_tolstring(l, i, std::ptr::null_mut());
        }
        let mut text = Vec::new();
        for i in 1..=n {
            if i > 1 {
                text.push(b' ');
            }
            text.extend_from_slice(to_bytes(l, n + i).unwrap_or(b""));
        }
        logging::error(context(l).handle, text);
    }
    0
}

unsafe extern "C-unwind" fn harbor(l: *mut lua_State) -> c_int {
    // SAFETY: argument check then pushes.
    unsafe {
        let h = ffi::luaL_checkinteger(l, 1) as u32;
        let id = h >> HANDLE_REMOTE_SHIFT;
        ffi::lua_pushinteger(l, id as ffi::lua_Integer);
        ffi::lua_pushboolean(l, context::handles().is_remote(h) as c_int);
    }
    2
}

unsafe extern "C-unwind" fn tostring(l: *mut lua_State) -> c_int {
    // SAFETY: argument checks raise before anything is owned; the bytes are copied by
    // lua_pushlstring while the caller's buffer is alive.
    unsafe {
        if ffi::lua_isnoneornil(l, 1) != 0 {
            return 0;
        }
        let p = ffi::lua_touserdata(l, 1) as *const u8;
        let sz = ffi::luaL_checkinteger(l, 2).max(0) as usize;
        if p.is_null() {
            ffi::lua_pushstring(l, c"".as_ptr());
        } else {
            push_bytes(l, std::slice::from_raw_parts(p, sz));
        }
    }
    1
}

unsafe extern "C-unwind" fn trash(l: *mut lua_State) -> c_int {
    // SAFETY: a light userdata handed to trash is a payload the caller owns; freeing it
    // is the point of the call.
    unsafe {
        match ffi::lua_type(l, 1) {
            ffi::LUA_TSTRING => {}
            ffi::LUA_TLIGHTUSERDATA => {
                ffi::luaL_checkinteger(l, 2);
                message::payload_free(ffi::lua_touserdata(l, 1) as *mut u8);
            }
            _ => {
                let t = type_name(l, 1);
                raise(l, format!("skynet.trash invalid param {t}"))
            }
        }
    }
    0
}

unsafe extern "C-unwind" fn now(l: *mut lua_State) -> c_int {
    // SAFETY: one push.
    unsafe { ffi::lua_pushinteger(l, timer::now() as ffi::lua_Integer) };
    1
}

unsafe extern "C-unwind" fn hpc(l: *mut lua_State) -> c_int {
    // SAFETY: one push.
    unsafe { ffi::lua_pushinteger(l, timer::hpc() as ffi::lua_Integer) };
    1
}

unsafe extern "C-unwind" fn trace(l: *mut lua_State) -> c_int {
    // SAFETY: argument checks raise before anything is owned; the debug API only reads
    // the stack of a thread kept alive by the argument slot.
    unsafe {
        let tag = String::from_utf8_lossy(lua::check_bytes(l, 1)).into_owned();
        let user = String::from_utf8_lossy(lua::check_bytes(l, 2)).into_owned();
        let mut line = format!("<TRACE {tag}> {} {user}", timer::hpc());
        if ffi::lua_isnoneornil(l, 3) == 0 {
            let (co, level) = if ffi::lua_type(l, 3) == ffi::LUA_TTHREAD {
                (
                    ffi::lua_tothread(l, 3),
                    ffi::luaL_optinteger(l, 4, 1) as c_int,
                )
            } else {
                (l, ffi::luaL_optinteger(l, 3, 1) as c_int)
            };
            let mut frames = Vec::new();
            let mut ar: ffi::lua_Debug = std::mem::zeroed();
            let mut lv = level;
            while frames.len() < 3 && ffi::lua_getstack(co, lv, &mut ar) != 0 {
                ffi::lua_getinfo(co, c"Sl".as_ptr(), &mut ar);
                if ar.currentline >= 0 {
                    let src = CStr::from_ptr(ar.source).to_string_lossy();
                    frames.push(format!("{src}:{}", ar.currentline));
                }
                lv += 1;
            }
            if !frames.is_empty() {
                line.push_str(" : ");
                line.push_str(&frames.join(" "));
            }
        }
        logging::error(context(l).handle, line);
    }
    0
}

const FUNCS: &[(&CStr, lua::CFunction)] = &[
    (c"send", send),
    (c"genid", genid),
    (c"redirect", redirect),
    (c"command", lcommand),
    (c"intcommand", intcommand),
    (c"addresscommand", addresscommand),
    (c"error", error),
    (c"harbor", harbor),
    (c"callback", callback),
    (c"trace", trace),
];

const PLAIN: &[(&CStr, lua::CFunction)] = &[
    (c"tostring", tostring),
    (c"pack", seri::pack),
    (c"unpack", seri::unpack),
    (c"packstring", seri::packstring),
    (c"trash", trash),
    (c"now", now),
    (c"hpc", hpc),
];

/// `require "skynet.core"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live VM; the error raises with nothing owned.
    unsafe {
        ffi::lua_createtable(l, 0, (FUNCS.len() + PLAIN.len()) as c_int);
        if ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"skynet_context".as_ptr())
            != ffi::LUA_TLIGHTUSERDATA
        {
            ffi::lua_pushstring(l, c"Init skynet context first".as_ptr());
            lua::raise_top(l);
        }
        let ctx = ffi::lua_touserdata(l, -1);
        ffi::lua_pop(l, 1);
        for (name, f) in FUNCS {
            ffi::lua_pushlightuserdata(l, ctx);
            ffi::lua_pushcclosure(l, *f, 1);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        for (name, f) in PLAIN {
            ffi::lua_pushcfunction(l, *f);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
    }
    1
}
