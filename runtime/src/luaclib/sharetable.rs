//! `skynet.sharetable.core`: configuration tables that every service reads in place.
//!
//! `matrix(source, ...)` runs `source` (`"@file"` or Lua text) in a state of its own, the
//! matrix, and makes the table it returns, with everything in it, shared and read-only
//! through the patched Lua (`lua_sharetable`, vendor/lua-src): the one copy of the tree
//! is then pushed as it is into any VM by `clone`, and no VM's collector marks or frees
//! it. A write to it raises `attempt to change a shared table`, or Lua's "attempt to
//! change a table value" for an assignment.
//!
//! Ownership: the box `matrix` returns owns the matrix state and the handle of its tree
//! (`getptr`, the light userdata sent to other services). The sharetable service closes
//! it once no service holds that version (upstream's protocol); `close` forgets the
//! handle first, so `clone` refuses a closed or unknown pointer with `Not a shared
//! table` instead of reading freed memory.
//!
//! A VM that made its own copy of one of the tree's strings before the tree was shared
//! must not see the shared string too (short strings are equal only by identity): it
//! gets a copy of the tree made with its own strings, as it gets a private copy of a
//! shared prototype.

use crate::lua::codecache;
use crate::lua::lshared::{
    lua_checkshare, lua_freesharedtable, lua_issharedtable, lua_pushsharedtable, lua_sharetable,
    SharedTable,
};
use crate::lua::raise::{arg_bytes, arg_type, arg_udata, lua_fn, raise, Raise};
use crate::lua::stack as lua;
use mlua::ffi::{self, lua_State};
use std::collections::HashSet;
use std::ffi::{c_int, c_void, CStr};
use std::sync::{Mutex, MutexGuard, OnceLock};

const BOX: &CStr = c"BOXMATRIXSTATE";

/// Deepest nesting a private copy follows.
const MAX_DEPTH: c_int = 200;

/// The handles of the trees alive, so `clone` knows a pointer before using it.
fn live() -> MutexGuard<'static, HashSet<usize>> {
    static LIVE: OnceLock<Mutex<HashSet<usize>>> = OnceLock::new();
    let set = LIVE.get_or_init(|| Mutex::new(HashSet::new()));
    match set.lock() {
        Ok(set) => set,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The box's block: the matrix state and its tree, both null once closed.
struct Matrix {
    state: *mut lua_State,
    tree: *mut SharedTable,
}

/// Runs in the matrix: opens the libraries, runs the source with the arguments, checks
/// the table it returns. Stack: source string, arguments.
unsafe extern "C-unwind" fn matrix_main(m: *mut lua_State) -> c_int {
    // SAFETY: a C function of the matrix, owning nothing: every error unwinds to the
    // protected call in `matrix`.
    unsafe {
        ffi::luaL_openlibs(m);
        let source = lua::check_bytes(m, 1);
        let status = match source.strip_prefix(b"@") {
            Some(_) => ffi::luaL_loadfilex(
                m,
                ffi::lua_tolstring(m, 1, std::ptr::null_mut()).add(1),
                std::ptr::null(),
            ),
            None => ffi::luaL_loadbufferx(
                m,
                source.as_ptr() as *const _,
                source.len(),
                source.as_ptr() as *const _,
                std::ptr::null(),
            ),
        };
        if status != ffi::LUA_OK {
            ffi::lua_error(m);
        }
        ffi::lua_replace(m, 1);
        ffi::lua_call(m, ffi::lua_gettop(m) - 1, 1);
        if ffi::lua_type(m, -1) != ffi::LUA_TTABLE {
            let t = lua::type_name(m, -1);
            lua::push_bytes(m, b"Not a table, it's a ");
            lua::push_bytes(m, t.as_bytes());
            lua::push_bytes(m, b".");
            ffi::lua_concat(m, 3);
            ffi::lua_error(m);
        }
        lua_checkshare(m);
    }
    1
}

/// Copies argument `i` of `l` (checked by `check_args`) to the matrix.
unsafe fn copy_arg(l: *mut lua_State, m: *mut lua_State, i: c_int) {
    // SAFETY: reads of a live stack slot and pushes within the room checked for.
    unsafe {
        match ffi::lua_type(l, i) {
            ffi::LUA_TBOOLEAN => ffi::lua_pushboolean(m, ffi::lua_toboolean(l, i)),
            ffi::LUA_TNUMBER if ffi::lua_isinteger(l, i) != 0 => {
                ffi::lua_pushinteger(m, ffi::lua_tointegerx(l, i, std::ptr::null_mut()))
            }
            ffi::LUA_TNUMBER => {
                ffi::lua_pushnumber(m, ffi::lua_tonumberx(l, i, std::ptr::null_mut()))
            }
            ffi::LUA_TLIGHTUSERDATA => ffi::lua_pushlightuserdata(m, ffi::lua_touserdata(l, i)),
            _ => match ffi::lua_tocfunction(l, i) {
                Some(f) => ffi::lua_pushcfunction(m, f),
                None => ffi::lua_pushnil(m),
            },
        }
    }
}

/// The extra arguments may only be booleans, numbers, light userdata and light C
/// functions: nothing of the caller's VM may reach the matrix.
unsafe fn check_args(l: *mut lua_State, top: c_int) -> Result<(), Raise> {
    // SAFETY: reads of live stack slots.
    unsafe {
        for i in 2..=top {
            match ffi::lua_type(l, i) {
                ffi::LUA_TBOOLEAN | ffi::LUA_TNUMBER | ffi::LUA_TLIGHTUSERDATA => {}
                ffi::LUA_TFUNCTION => {
                    let light =
                        ffi::lua_iscfunction(l, i) != 0 && ffi::lua_getupvalue(l, i, 1).is_null();
                    if !light {
                        if ffi::lua_iscfunction(l, i) != 0 {
                            ffi::lua_pop(l, 1);
                        }
                        return Err(Raise::arg(i, format_args!("Only support light C function")));
                    }
                }
                _ => return Err(Raise::arg(i, format_args!("Type invalid"))),
            }
        }
    }
    Ok(())
}

/// `matrix(source, ...)` → the box of a new shared tree.
unsafe fn matrix(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: `l` is the caller's live state; the matrix is a fresh state only this
    // function uses until it is boxed. Nothing owned is alive when an error returns.
    unsafe {
        arg_bytes(l, 1)?;
        let top = ffi::lua_gettop(l);
        check_args(l, top)?;
        let m = codecache::new_state();
        if m.is_null() {
            return Err(raise!("luaL_newstate failed"));
        }
        if ffi::lua_checkstack(m, top + 2) == 0 {
            ffi::lua_close(m);
            return Err(raise!("Too many argument {top}"));
        }
        ffi::lua_pushcfunction(m, matrix_main);
        lua::push_bytes(m, arg_bytes(l, 1)?);
        for i in 2..=top {
            copy_arg(l, m, i);
        }
        if ffi::lua_pcall(m, top, 1, 0) != ffi::LUA_OK {
            let pushed = match lua::to_bytes(m, -1) {
                Some(text) => crate::lua::raise::try_push_bytes(l, text),
                None => crate::lua::raise::try_push_bytes(l, b"(error object is not a string)"),
            };
            ffi::lua_close(m);
            pushed?;
            return Err(Raise::Top);
        }
        let tree = codecache::with_state(|_| lua_sharetable(m));
        live().insert(tree as usize);
        let block = ffi::lua_newuserdatauv(l, std::mem::size_of::<Matrix>(), 0) as *mut Matrix;
        block.write(Matrix { state: m, tree });
        if ffi::luaL_newmetatable(l, BOX.as_ptr()) != 0 {
            ffi::lua_pushvalue(l, -1);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_pushcfunction(l, lua_fn!(close));
            ffi::lua_setfield(l, -2, c"close".as_ptr());
            ffi::lua_pushcfunction(l, lua_fn!(getptr));
            ffi::lua_setfield(l, -2, c"getptr".as_ptr());
            ffi::lua_pushcfunction(l, lua_fn!(size));
            ffi::lua_setfield(l, -2, c"size".as_ptr());
        }
        ffi::lua_setmetatable(l, -2);
    }
    Ok(1)
}

/// `box:close()`: frees the matrix and its tree.
unsafe fn close(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a box block; the state and handle it owns are freed once (then nulled),
    // after the handle left the live set so no clone can start on it.
    unsafe {
        let b = arg_udata(l, 1, BOX)? as *mut Matrix;
        if !(*b).state.is_null() {
            let mut set = live();
            set.remove(&((*b).tree as usize));
            ffi::lua_close((*b).state);
            lua_freesharedtable((*b).tree);
            drop(set);
            (*b).state = std::ptr::null_mut();
            (*b).tree = std::ptr::null_mut();
        }
    }
    Ok(0)
}

/// `box:getptr()` → the tree's handle, nothing once closed.
unsafe fn getptr(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a box block; stack work.
    unsafe {
        let b = arg_udata(l, 1, BOX)? as *const Matrix;
        if (*b).state.is_null() {
            return Ok(0);
        }
        ffi::lua_pushlightuserdata(l, (*b).tree as *mut c_void);
    }
    Ok(1)
}

/// `box:size()` → bytes the matrix uses.
unsafe fn size(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a box block; the matrix runs nothing, reading its counters is safe.
    unsafe {
        let b = arg_udata(l, 1, BOX)? as *const Matrix;
        let m = (*b).state;
        let bytes = if m.is_null() {
            0
        } else {
            ffi::lua_gc(m, ffi::LUA_GCCOUNT) as ffi::lua_Integer * 1024
                + ffi::lua_gc(m, ffi::LUA_GCCOUNTB) as ffi::lua_Integer
        };
        ffi::lua_pushinteger(l, bytes);
    }
    Ok(1)
}

/// Replaces the shared table on top by a copy made of `l`'s own values; `seen` (a table
/// at that index) maps each shared table copied to its copy.
unsafe fn private_copy(l: *mut lua_State, seen: c_int, depth: c_int) -> Result<(), Raise> {
    // SAFETY: stack work within the room checked for; every value is re-pushed through
    // the Lua API, so strings come out as `l`'s own.
    unsafe {
        if depth > MAX_DEPTH || ffi::lua_checkstack(l, 6) == 0 {
            return Err(raise!("C stack overflow"));
        }
        let src = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, src);
        if ffi::lua_rawget(l, seen) == ffi::LUA_TTABLE {
            ffi::lua_replace(l, src);
            return Ok(());
        }
        ffi::lua_pop(l, 1);
        ffi::lua_createtable(l, 0, 0);
        let dst = src + 1;
        ffi::lua_pushvalue(l, src);
        ffi::lua_pushvalue(l, dst);
        ffi::lua_rawset(l, seen);
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, src) != 0 {
            own_value(l, -2, seen, depth)?;
            own_value(l, -2, seen, depth)?;
            ffi::lua_rawset(l, dst);
            ffi::lua_pop(l, 1);
        }
        ffi::lua_replace(l, src);
    }
    Ok(())
}

/// Pushes `l`'s own form of the value at `idx`.
unsafe fn own_value(l: *mut lua_State, idx: c_int, seen: c_int, depth: c_int) -> Result<(), Raise> {
    // SAFETY: stack work; strings are copied into `l`'s string table.
    unsafe {
        ffi::lua_pushvalue(l, idx);
        match ffi::lua_type(l, -1) {
            ffi::LUA_TSTRING => {
                let bytes = lua::to_bytes(l, -1).unwrap_or(&[]);
                lua::push_bytes(l, bytes);
                ffi::lua_replace(l, -2);
            }
            ffi::LUA_TTABLE => private_copy(l, seen, depth + 1)?,
            _ => {}
        }
    }
    Ok(())
}

/// `clone(ptr)` → the shared table (or the VM's own copy of it, see the module doc).
unsafe fn clone(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the handle is used only while the live set says its matrix is open, and
    // the set's lock keeps `close` from freeing it meanwhile.
    unsafe {
        let st = ffi::lua_touserdata(l, 1) as *const SharedTable;
        if ffi::lua_checkstack(l, 2) == 0 {
            return Err(raise!("stack overflow"));
        }
        let set = live();
        if !set.contains(&(st as usize)) {
            drop(set);
            return Err(raise!("Not a shared table"));
        }
        let shared = lua_pushsharedtable(l, st) != 0;
        drop(set);
        if !shared {
            ffi::lua_createtable(l, 0, 0);
            ffi::lua_insert(l, -2);
            let seen = ffi::lua_gettop(l) - 1;
            private_copy(l, seen, 0)?;
        }
    }
    Ok(1)
}

/// `is_sharedtable(v)`.
unsafe fn is_sharedtable(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: a read of a stack slot.
    unsafe { ffi::lua_pushboolean(l, lua_issharedtable(l, 1)) };
    Ok(1)
}

/// `stackvalues(co, t)` → n: the values on `co`'s stack into `t[1..n]` (0 for the
/// running thread itself).
unsafe fn stackvalues(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: both threads belong to this VM; values move to `l` and back.
    unsafe {
        let co = ffi::lua_tothread(l, 1);
        if co.is_null() {
            return Err(Raise::arg(1, format_args!("thread expected")));
        }
        let mut n = 0;
        if co != l {
            arg_type(l, 2, ffi::LUA_TTABLE)?;
            n = ffi::lua_gettop(co);
            if n > 0 {
                if ffi::lua_checkstack(l, n + 1) == 0 {
                    return Err(raise!("stack overflow"));
                }
                let top = ffi::lua_gettop(l);
                ffi::lua_xmove(co, l, n);
                for i in 1..=n {
                    ffi::lua_pushvalue(l, top + i);
                    ffi::lua_seti(l, 2, i as ffi::lua_Integer);
                }
                ffi::lua_xmove(l, co, n);
            }
        }
        ffi::lua_pushinteger(l, n as ffi::lua_Integer);
    }
    Ok(1)
}

/// `require "skynet.sharetable.core"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live state.
    unsafe {
        lua::new_lib(
            l,
            &[
                (c"clone", lua_fn!(clone)),
                (c"stackvalues", lua_fn!(stackvalues)),
                (c"matrix", lua_fn!(matrix)),
                (c"is_sharedtable", lua_fn!(is_sharedtable)),
            ],
        );
    }
    1
}
