//! Small helpers over the raw Lua C API shared by every native module.
//!
//! Native modules talk to Lua through `mlua::ffi` directly: the functions Lua code sees
//! must return exactly upstream's values (a function that "returns nothing" must push
//! nothing) and raise exactly upstream's error texts, which the high-level API would
//! reshape. Lua errors unwind with `longjmp`, which must not cross a frame that owns
//! anything: native functions raise through [`super::raise`].

use mlua::ffi::{self, lua_State};
use std::ffi::{c_char, c_int, CStr};

pub type CFunction = unsafe extern "C-unwind" fn(*mut lua_State) -> c_int;

/// Pushes `bytes` as a Lua string (binary safe).
///
/// # Safety
/// `l` must be a valid Lua state with room for one more stack slot.
pub unsafe fn push_bytes(l: *mut lua_State, bytes: &[u8]) {
    // SAFETY: the pointer/length pair describes `bytes`, which Lua copies.
    unsafe { ffi::lua_pushlstring(l, bytes.as_ptr() as *const c_char, bytes.len()) };
}

/// Borrows the string (or number, converted in place) at `idx`, if it is one.
///
/// # Safety
/// `l` must be a valid Lua state; the slice lives as long as the value stays on the stack.
pub unsafe fn to_bytes<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a [u8]> {
    let mut len = 0usize;
    // SAFETY: lua_tolstring returns null or a pointer to `len` bytes owned by Lua.
    let p = unsafe { ffi::lua_tolstring(l, idx, &mut len) };
    if p.is_null() {
        None
    } else {
        // SAFETY: see above; Lua keeps the string alive while it is on the stack.
        Some(unsafe { std::slice::from_raw_parts(p as *const u8, len) })
    }
}

/// `luaL_checklstring` as a byte slice, for a function that owns nothing yet (a body
/// uses [`super::raise::arg_bytes`]).
///
/// # Safety
/// As [`to_bytes`]; raises a Lua error when the argument is not a string.
pub unsafe fn check_bytes<'a>(l: *mut lua_State, idx: c_int) -> &'a [u8] {
    let mut len = 0usize;
    // SAFETY: luaL_checklstring either returns a valid pointer or raises.
    let p = unsafe { ffi::luaL_checklstring(l, idx, &mut len) };
    // SAFETY: Lua owns `len` bytes at `p` while the value stays on the stack.
    unsafe { std::slice::from_raw_parts(p as *const u8, len) }
}

/// The type name of the value at `idx` (`luaL_typename`).
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn type_name(l: *mut lua_State, idx: c_int) -> &'static str {
    // SAFETY: lua_typename returns one of Lua's static ASCII type names for any tag.
    unsafe { CStr::from_ptr(ffi::lua_typename(l, ffi::lua_type(l, idx))) }
        .to_str()
        .unwrap_or("?")
}

/// Creates a table holding `funcs` and leaves it on the stack (`luaL_newlib`).
///
/// # Safety
/// `l` must be a valid Lua state; the names must be NUL-terminated.
pub unsafe fn new_lib(l: *mut lua_State, funcs: &[(&CStr, CFunction)]) {
    // SAFETY: plain stack manipulation on a valid state.
    unsafe {
        ffi::lua_createtable(l, 0, funcs.len() as c_int);
        for (name, f) in funcs {
            ffi::lua_pushcfunction(l, *f);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
    }
}

/// Sets `package.preload[name] = open`, so `require(name)` finds a built-in module
/// before any file on `package.cpath`.
///
/// # Safety
/// `l` must be a valid Lua state with the package library open.
pub unsafe fn preload(l: *mut lua_State, name: &CStr, open: CFunction) {
    // SAFETY: plain stack manipulation on a valid state.
    unsafe {
        ffi::luaL_getsubtable(l, ffi::LUA_REGISTRYINDEX, c"_PRELOAD".as_ptr());
        ffi::lua_pushcfunction(l, open);
        ffi::lua_setfield(l, -2, name.as_ptr());
        ffi::lua_pop(l, 1);
    }
}

/// The message handler for callbacks and the loader: a string error becomes a
/// traceback; anything else becomes `(no error message)`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn traceback(l: *mut lua_State) -> c_int {
    // SAFETY: called by Lua as a message handler with the error at index 1.
    unsafe {
        let msg = ffi::lua_tolstring(l, 1, std::ptr::null_mut());
        if msg.is_null() {
            ffi::lua_pushstring(l, c"(no error message)".as_ptr());
        } else {
            ffi::luaL_traceback(l, l, msg, 1);
        }
    }
    1
}
