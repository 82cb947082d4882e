//! A Lua value as a pattern, as every lpeg function takes its pattern arguments: a
//! pattern as is, a string, a number, a boolean, a function (a match-time capture) or a
//! table (a grammar). Apart from `pattern`, because a table needs `grammar`, which is
//! built on `pattern`.

use super::grammar;
use super::pattern::{self, Pattern};
use super::tree::{Kind, Node};
use crate::lua::raise::{raise, Raise};
use mlua::ffi::{self, lua_State};
use std::ffi::c_int;

/// The argument at `idx` as a pattern, converting (in place, on the stack) a value
/// that stands for one.
///
/// # Safety
/// `l` must be a valid Lua state; `idx` an existing argument slot.
pub unsafe fn get<'a>(l: *mut lua_State, idx: c_int) -> Result<&'a Pattern, Raise> {
    // SAFETY: stack work; every new pattern replaces the argument, which keeps it.
    unsafe {
        let idx = ffi::lua_absindex(l, idx);
        if let Some(p) = pattern::test(l, idx) {
            return Ok(p);
        }
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => {
                let s = crate::lua::stack::to_bytes(l, idx).unwrap_or(&[]);
                ffi::lua_pushnil(l);
                pattern::push(l, pattern::literal(s), 0)?;
            }
            ffi::LUA_TNUMBER => {
                let mut isnum = 0;
                let n = ffi::lua_tointegerx(l, idx, &mut isnum);
                if isnum == 0 {
                    return Err(raise!("number has no integer representation"));
                }
                ffi::lua_pushnil(l);
                pattern::push(l, pattern::any(n)?, 0)?;
            }
            ffi::LUA_TBOOLEAN => {
                let kind = if ffi::lua_toboolean(l, idx) != 0 {
                    Kind::True
                } else {
                    Kind::False
                };
                ffi::lua_pushnil(l);
                pattern::push(l, Node::new(kind), 0)?;
            }
            ffi::LUA_TFUNCTION => {
                pattern::push_ktable1(l, idx);
                pattern::push(l, Node::new(Kind::RunTime(1, Node::leaf_true())), 1)?;
            }
            ffi::LUA_TTABLE => grammar::build(l, idx)?,
            _ => return Err(Raise::Type(idx, c"pattern")),
        }
        ffi::lua_replace(l, idx);
        pattern::test(l, idx).ok_or_else(|| raise!("pattern expected"))
    }
}
