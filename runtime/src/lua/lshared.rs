//! The patched Lua's sharing API (vendor/lua-src, `lshared.h`), declared once.
//!
//! Shared prototypes, strings and templates belong to no collector and are never freed;
//! a state may use them only when its string-hash seed equals that of the state that
//! shared them (see [`super::codecache::hash_seed`]).

use mlua::ffi::lua_State;
use std::ffi::{c_int, c_uint, c_void};

/// A table layout made by `lua_maketemplate` (opaque; never freed).
#[repr(C)]
pub struct Template {
    _opaque: [u8; 0],
}

/// A shared table tree made by `lua_sharetable` (opaque; freed by
/// `lua_freesharedtable` once its state is closed).
#[repr(C)]
pub struct SharedTable {
    _opaque: [u8; 0],
}

unsafe extern "C" {
    /// Makes the prototype tree of the Lua function on the top of the stack shared.
    pub fn lua_shareproto(l: *mut lua_State) -> *const c_void;
    /// Pushes a new closure of a shared main-chunk prototype (first upvalue `_G`).
    pub fn lua_pushsharedproto(l: *mut lua_State, proto: *const c_void);
    /// Shares the string keys of the table on top and of the tables it holds.
    pub fn lua_sharekeys(l: *mut lua_State);
    /// Shares the state's reserved words and metamethod names.
    pub fn lua_sharefixed(l: *mut lua_State);
    /// The seed of the state's string hashes.
    pub fn lua_hashseed(l: *mut lua_State) -> c_uint;
    /// A template of the table on top; null when it has an array part or a non-string key.
    pub fn lua_maketemplate(l: *mut lua_State) -> *mut Template;
    /// Pushes a table laid out as `tp`; 0 (nothing pushed) when the seeds differ.
    pub fn lua_pushtemplate(l: *mut lua_State, tp: *const Template) -> c_int;
}

unsafe extern "C-unwind" {
    /// Raises unless the table on top may be shared (no metatable, no function with
    /// upvalues, no userdata or thread anywhere in its tree).
    pub fn lua_checkshare(l: *mut lua_State);
}

unsafe extern "C" {
    /// Makes the checked table on top, and its tree, shared and read-only; stops the
    /// state's collector. Run under the code cache's lock (one writer of the string set).
    pub fn lua_sharetable(l: *mut lua_State) -> *mut SharedTable;
    /// Pushes the shared table; 0 when `l` must make a copy of its own from it.
    pub fn lua_pushsharedtable(l: *mut lua_State, st: *const SharedTable) -> c_int;
    /// Frees the handle once its state is closed.
    pub fn lua_freesharedtable(st: *mut SharedTable);
    /// Whether the value at `idx` is a shared table.
    pub fn lua_issharedtable(l: *mut lua_State, idx: c_int) -> c_int;
}
