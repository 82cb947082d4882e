//! Field names as Lua strings, per VM. `lua_getfield` with a C string looks the name up
//! in Lua's string table every time (a cache probe and a `strcmp` when lucky, a hash
//! and a search when not); encode and decode instead index the table with a string
//! value fetched by the field's slot from an array of the schema's names.
//!
//! The arrays live in one table shared by the `encode` and `decode` closures of a VM
//! (an upvalue), keyed by the schema's address, each holding the schema's unique id at
//! index 0 (an address can be reused by a later schema). The table's values are weak:
//! a collection drops the arrays, which are rebuilt on next use, so schemas freed long
//! ago leave nothing behind.

use super::schema::Schema;
use mlua::ffi::{self, lua_State};
use std::ffi::c_int;

/// Makes the (empty, weak-valued) table of name arrays and leaves it on the stack.
///
/// # Safety
/// `l` is a valid state with room for three slots.
pub unsafe fn new_cache(l: *mut lua_State) {
    // SAFETY: pushes on a valid state.
    unsafe {
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushstring(l, c"v".as_ptr());
        ffi::lua_setfield(l, -2, c"__mode".as_ptr());
        ffi::lua_setmetatable(l, -2);
    }
}

/// Pushes the name array of `schema` from the cache at `cache` (made if missing);
/// returns its stack index.
///
/// # Safety
/// `l` is a valid state; `cache` is a stack or upvalue index of a table from
/// [`new_cache`].
pub unsafe fn push(l: *mut lua_State, cache: c_int, schema: &Schema) -> c_int {
    let key = (schema as *const Schema).cast_mut().cast();
    // SAFETY: stack work on a valid state.
    unsafe {
        if ffi::lua_rawgetp(l, cache, key) == ffi::LUA_TTABLE {
            ffi::lua_rawgeti(l, -1, 0);
            let id = ffi::lua_tointegerx(l, -1, std::ptr::null_mut());
            ffi::lua_settop(l, -2);
            if id as u64 == schema.id {
                return ffi::lua_gettop(l);
            }
        }
        ffi::lua_settop(l, -2);
        let n = schema.fields().count();
        ffi::lua_createtable(l, n as c_int, 1);
        ffi::lua_pushinteger(l, schema.id as ffi::lua_Integer);
        ffi::lua_rawseti(l, -2, 0);
        for f in schema.fields() {
            ffi::lua_pushstring(l, f.name.as_ptr());
            ffi::lua_rawseti(l, -2, f.slot.into());
        }
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawsetp(l, cache, key);
        ffi::lua_gettop(l)
    }
}
