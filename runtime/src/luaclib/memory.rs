//! `skynet.memory`: the heap figures of [`crate::memory`]. This core does not use
//! jemalloc, so the jemalloc controls answer 0 and log `No jemalloc`, as an upstream
//! build without it does.

use crate::{logging, memory};
use mlua::ffi::{self, lua_State};
use std::ffi::c_int;

unsafe fn push_int(l: *mut lua_State, v: i64) -> c_int {
    // SAFETY: one push on a live stack.
    unsafe { ffi::lua_pushinteger(l, v) };
    1
}

unsafe extern "C-unwind" fn total(l: *mut lua_State) -> c_int {
    // SAFETY: forwarded.
    unsafe { push_int(l, memory::total()) }
}

unsafe extern "C-unwind" fn block(l: *mut lua_State) -> c_int {
    // SAFETY: forwarded.
    unsafe { push_int(l, memory::blocks()) }
}

unsafe extern "C-unwind" fn current(l: *mut lua_State) -> c_int {
    // SAFETY: the service VM has its context in the registry; else 0.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
        let ctx = ffi::lua_touserdata(l, -1) as *const crate::context::Context;
        ffi::lua_pop(l, 1);
        let bytes = if ctx.is_null() {
            0
        } else {
            memory::of((*ctx).handle)
        };
        push_int(l, bytes)
    }
}

unsafe extern "C-unwind" fn info(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live VM; the slots are read in place, so nothing is owned
    // if a table insert runs out of memory.
    unsafe {
        ffi::lua_createtable(l, 0, memory::info().count() as c_int);
        for (h, bytes) in memory::info() {
            ffi::lua_pushinteger(l, bytes);
            ffi::lua_rawseti(l, -2, h as ffi::lua_Integer);
        }
    }
    1
}

unsafe extern "C-unwind" fn dump(_l: *mut lua_State) -> c_int {
    logging::error(0, "dump all service mem:");
    let mut sum = 0;
    for (h, bytes) in memory::info() {
        sum += bytes;
        logging::error(0, format!(":{h:08x} -> {}kb {bytes}b", bytes >> 10));
    }
    logging::error(0, format!("+total: {}kb", sum >> 10));
    0
}

unsafe extern "C-unwind" fn dumpinfo(_l: *mut lua_State) -> c_int {
    logging::error(0, "No jemalloc");
    0
}

unsafe fn no_jemalloc(l: *mut lua_State, what: &str, name: &str) -> c_int {
    logging::error(0, format!("No jemalloc : {what} {name}."));
    // SAFETY: forwarded.
    unsafe { push_int(l, 0) }
}

unsafe extern "C-unwind" fn jestat(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live VM.
    unsafe {
        logging::error(0, "No jemalloc : mallctl_int64 epoch.");
        ffi::lua_newtable(l);
        for name in [
            c"stats.allocated",
            c"stats.resident",
            c"stats.retained",
            c"stats.mapped",
            c"stats.active",
        ] {
            logging::error(
                0,
                format!("No jemalloc : mallctl_int64 {}.", name.to_string_lossy()),
            );
            ffi::lua_pushinteger(l, 0);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
    }
    1
}

unsafe extern "C-unwind" fn mallctl(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned.
    unsafe {
        let name = String::from_utf8_lossy(crate::lua::stack::check_bytes(l, 1)).into_owned();
        no_jemalloc(l, "mallctl_int64", &name)
    }
}

unsafe extern "C-unwind" fn dumpheap(_l: *mut lua_State) -> c_int {
    logging::error(0, "No jemalloc : mallctl_cmd prof.dump.");
    0
}

unsafe extern "C-unwind" fn profactive(l: *mut lua_State) -> c_int {
    logging::error(0, "No jemalloc : mallctl_bool prof.active.");
    // SAFETY: one push.
    unsafe { ffi::lua_pushboolean(l, 0) };
    1
}

/// `require "skynet.memory"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    // SAFETY: stack work on a live VM.
    unsafe {
        crate::lua::stack::new_lib(
            l,
            &[
                (c"total", total),
                (c"block", block),
                (c"dumpinfo", dumpinfo),
                (c"jestat", jestat),
                (c"mallctl", mallctl),
                (c"dump", dump),
                (c"info", info),
                (c"current", current),
                (c"dumpheap", dumpheap),
                (c"profactive", profactive),
            ],
        )
    };
    1
}
