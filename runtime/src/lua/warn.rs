//! Warnings and panics for a state made without `luaL_newstate` (the interpreter's,
//! which runs on the services' allocator): the behaviour stock lauxlib gives its states.
//! Warnings start off; `warn("@on")` and `warn("@off")` switch them; a warning goes to
//! stderr as `Lua warning: <pieces>\n`, its pieces joined. An error outside any
//! protected call prints `PANIC: unprotected error in call to Lua API (<message>)`.

use mlua::ffi::{self, lua_State};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::io::Write;

/// Installs the panic function and the warning function (off) on `l`.
///
/// # Safety
/// `l` is a valid state.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: `l` is valid; the warning functions get `l` back as their userdata.
    unsafe {
        ffi::lua_atpanic(l, panic);
        ffi::lua_setwarnf(l, Some(warn_off), l.cast());
    }
}

unsafe extern "C-unwind" fn panic(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls this with the error object on top of a valid state.
    let msg = unsafe { super::stack::to_bytes(l, -1) };
    let msg = msg.map_or_else(
        || "error object is not a string".into(),
        String::from_utf8_lossy,
    );
    eprintln!("PANIC: unprotected error in call to Lua API ({msg})");
    0
}

/// A control message (`@on`, `@off`, or another `@...`, ignored) switches the function;
/// true when `msg` was one.
///
/// # Safety
/// `ud` is the state the function was installed on; `msg` a C string.
unsafe fn control(ud: *mut c_void, msg: *const c_char, tocont: c_int) -> bool {
    // SAFETY: Lua passes a NUL-terminated message.
    let text = unsafe { CStr::from_ptr(msg) }.to_bytes();
    if tocont != 0 || text.first() != Some(&b'@') {
        return false;
    }
    let next: ffi::lua_WarnFunction = match text {
        b"@off" => warn_off,
        b"@on" => warn_on,
        _ => return true,
    };
    // SAFETY: `ud` is the state (see `install`).
    unsafe { ffi::lua_setwarnf(ud.cast(), Some(next), ud) };
    true
}

unsafe extern "C-unwind" fn warn_off(ud: *mut c_void, msg: *const c_char, tocont: c_int) {
    // SAFETY: passed on from Lua.
    unsafe { control(ud, msg, tocont) };
}

unsafe extern "C-unwind" fn warn_on(ud: *mut c_void, msg: *const c_char, tocont: c_int) {
    // SAFETY: passed on from Lua.
    if unsafe { control(ud, msg, tocont) } {
        return;
    }
    let _ = std::io::stderr().write_all(b"Lua warning: ");
    // SAFETY: passed on from Lua.
    unsafe { warn_piece(ud, msg, tocont) };
}

unsafe extern "C-unwind" fn warn_piece(ud: *mut c_void, msg: *const c_char, tocont: c_int) {
    // SAFETY: Lua passes a NUL-terminated message.
    let text = unsafe { CStr::from_ptr(msg) }.to_bytes();
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text);
    let next: ffi::lua_WarnFunction = if tocont != 0 {
        warn_piece
    } else {
        let _ = err.write_all(b"\n");
        warn_on
    };
    // SAFETY: `ud` is the state (see `install`).
    unsafe { ffi::lua_setwarnf(ud.cast(), Some(next), ud) };
}
