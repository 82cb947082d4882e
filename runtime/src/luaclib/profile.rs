//! `skynet.profile`: CPU time of a coroutine while it actually runs, and the
//! `coroutine.resume`/`coroutine.wrap` replacements that measure it.
//!
//! snlua installs `resume` and `wrap` in place of the standard ones in every service, so
//! they keep the stock contract exactly; on top they add the time a profiled coroutine
//! runs to its total, and tell the service which Lua thread is active so a SIGNAL trap
//! lands in the code that is running.
//! Upvalue 1 of every function is the `start` table (coroutine -> clock at resume, only
//! while profiled), upvalue 2 the `total` table (coroutine -> seconds so far).

use crate::lua::host::host;
use crate::lua::raise::{arg_type, lua_fn, raise, Raise};
use mlua::ffi::{self, lua_State};
use std::ffi::{c_int, c_void};
use std::sync::atomic::Ordering;

/// Per-thread CPU clock in seconds.
fn thread_clock() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

const START: c_int = 1;
const TOTAL: c_int = 2;

unsafe fn table_number(l: *mut lua_State, upvalue: c_int, co: c_int) -> Option<f64> {
    // SAFETY: raw table read on a live stack.
    unsafe {
        ffi::lua_pushvalue(l, co);
        ffi::lua_rawget(l, ffi::lua_upvalueindex(upvalue));
        let v = if ffi::lua_isnil(l, -1) != 0 {
            None
        } else {
            Some(ffi::lua_tonumberx(l, -1, std::ptr::null_mut()))
        };
        ffi::lua_pop(l, 1);
        v
    }
}

unsafe fn set_table(l: *mut lua_State, upvalue: c_int, co: c_int, v: Option<f64>) {
    // SAFETY: raw table write on a live stack.
    unsafe {
        ffi::lua_pushvalue(l, co);
        match v {
            Some(n) => ffi::lua_pushnumber(l, n),
            None => ffi::lua_pushnil(l),
        }
        ffi::lua_rawset(l, ffi::lua_upvalueindex(upvalue));
    }
}

/// The coroutine argument at 1, or the running one pushed at 1.
unsafe fn coroutine_arg(l: *mut lua_State) -> Result<(), Raise> {
    // SAFETY: stack work on a live VM.
    unsafe {
        if ffi::lua_isnoneornil(l, 1) != 0 {
            ffi::lua_settop(l, 0);
            ffi::lua_pushthread(l);
            Ok(())
        } else {
            ffi::lua_settop(l, 1);
            arg_type(l, 1, ffi::LUA_TTHREAD)
        }
    }
}

unsafe fn start(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live VM; the upvalues are the two tables `install` gave.
    unsafe {
        coroutine_arg(l)?;
        if table_number(l, START, 1).is_some() {
            let p = ffi::lua_tothread(l, 1) as *const c_void;
            return Err(raise!("Thread {p:p} start profile more than once"));
        }
        set_table(l, TOTAL, 1, Some(0.0));
        set_table(l, START, 1, Some(thread_clock()));
        host(l).profiling.fetch_add(1, Ordering::Relaxed);
    }
    Ok(0)
}

unsafe fn stop(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: as `start`.
    unsafe {
        coroutine_arg(l)?;
        let Some(begin) = table_number(l, START, 1) else {
            return Err(raise!("Call profile.start() before profile.stop()"));
        };
        let total = table_number(l, TOTAL, 1).unwrap_or(0.0) + (thread_clock() - begin);
        set_table(l, START, 1, None);
        set_table(l, TOTAL, 1, None);
        let _ = host(l)
            .profiling
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        ffi::lua_pushnumber(l, total);
    }
    Ok(1)
}

/// The stock `auxresume` plus the active-thread bookkeeping; moves `narg` values from
/// `l` to `co`. Returns the number of results, or -1 with the error on top of `l`.
unsafe fn aux_resume(l: *mut lua_State, co: *mut lua_State, narg: c_int) -> c_int {
    // SAFETY: both threads belong to the same VM (Lua checks nothing here, as stock
    // auxresume); nothing here raises.
    unsafe {
        if ffi::lua_checkstack(co, narg) == 0 {
            ffi::lua_pushstring(l, c"too many arguments to resume".as_ptr());
            return -1;
        }
        ffi::lua_xmove(l, co, narg);
        let shared = host(l);
        shared.switch_to(co);
        let mut nres = 0;
        let status = ffi::lua_resume(co, l, narg, &mut nres);
        shared.settle_trap();
        shared.switch_to(l);
        if status == ffi::LUA_OK || status == ffi::LUA_YIELD {
            if ffi::lua_checkstack(l, nres + 1) == 0 {
                ffi::lua_pop(co, nres);
                ffi::lua_pushstring(l, c"too many results to resume".as_ptr());
                return -1;
            }
            ffi::lua_xmove(co, l, nres);
            nres
        } else {
            ffi::lua_xmove(co, l, 1);
            -1
        }
    }
}

/// Resumes the coroutine at `co_index`, adding the time it ran to its total when it is
/// being profiled.
unsafe fn timed_resume(l: *mut lua_State, co_index: c_int, narg: c_int) -> c_int {
    // SAFETY: stack work on a live VM; the coroutine stays referenced at `co_index`.
    unsafe {
        let co = ffi::lua_tothread(l, co_index);
        // Most services never profile: skip the two table lookups per resume then.
        if host(l).profiling.load(Ordering::Relaxed) == 0 {
            return aux_resume(l, co, narg);
        }
        if table_number(l, START, co_index).is_some() {
            set_table(l, START, co_index, Some(thread_clock()));
        }
        let r = aux_resume(l, co, narg);
        if let Some(begin) = table_number(l, START, co_index) {
            let total = table_number(l, TOTAL, co_index).unwrap_or(0.0) + (thread_clock() - begin);
            set_table(l, TOTAL, co_index, Some(total));
        }
        r
    }
}

unsafe fn resume(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: stack work on a live VM; the coroutine stays referenced at slot 1.
    unsafe {
        if ffi::lua_tothread(l, 1).is_null() {
            return Err(Raise::Type(1, c"coroutine"));
        }
        let narg = ffi::lua_gettop(l) - 1;
        let r = timed_resume(l, 1, narg);
        if r < 0 {
            ffi::lua_pushboolean(l, 0);
            ffi::lua_insert(l, -2);
            Ok(2)
        } else {
            ffi::lua_pushboolean(l, 1);
            ffi::lua_insert(l, -(r + 1));
            Ok(r + 1)
        }
    }
}

unsafe fn wrapped(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: the coroutine is upvalue 3; its error is left on top for the entry to raise.
    unsafe {
        let co = ffi::lua_tothread(l, ffi::lua_upvalueindex(3));
        let narg = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(3));
        ffi::lua_insert(l, 1);
        let r = timed_resume(l, 1, narg);
        if r >= 0 {
            return Ok(r);
        }
        let mut status = ffi::lua_status(co);
        if status != ffi::LUA_OK && status != ffi::LUA_YIELD {
            status = ffi::lua_closethread(co, l);
            ffi::lua_xmove(co, l, 1);
        }
        if status != ffi::LUA_ERRMEM && ffi::lua_type(l, -1) == ffi::LUA_TSTRING {
            ffi::luaL_where(l, 1);
            ffi::lua_insert(l, -2);
            ffi::lua_concat(l, 2);
        }
        Err(Raise::Top)
    }
}

unsafe extern "C-unwind" fn wrap(l: *mut lua_State) -> c_int {
    // SAFETY: luaL_checktype raises before anything is owned; then stack work.
    unsafe {
        ffi::luaL_checktype(l, 1, ffi::LUA_TFUNCTION);
        let co = ffi::lua_newthread(l);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_xmove(l, co, 1);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(START));
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(TOTAL));
        ffi::lua_rotate(l, -3, 2);
        ffi::lua_pushcclosure(l, lua_fn!(wrapped), 3);
    }
    1
}

unsafe fn weak_table(l: *mut lua_State) {
    // SAFETY: stack work on a live VM.
    unsafe {
        ffi::lua_newtable(l);
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushstring(l, c"kv".as_ptr());
        ffi::lua_setfield(l, -2, c"__mode".as_ptr());
        ffi::lua_setmetatable(l, -2);
    }
}

/// Creates the library as `package.loaded["skynet.profile"]` and replaces
/// `coroutine.resume` and `coroutine.wrap` with its versions.
///
/// # Safety
/// `l` must be an snlua VM with the standard libraries open.
pub unsafe fn install(l: *mut lua_State) {
    // SAFETY: stack work on a live VM.
    unsafe {
        ffi::luaL_getsubtable(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_LOADED_TABLE);
        ffi::lua_createtable(l, 0, 4);
        weak_table(l);
        weak_table(l);
        for (name, f) in [
            (c"start", lua_fn!(start)),
            (c"stop", lua_fn!(stop)),
            (c"resume", lua_fn!(resume)),
            (c"wrap", wrap),
        ] {
            ffi::lua_pushvalue(l, -2);
            ffi::lua_pushvalue(l, -2);
            ffi::lua_pushcclosure(l, f, 2);
            ffi::lua_setfield(l, -4, name.as_ptr());
        }
        ffi::lua_pop(l, 2);
        ffi::lua_getglobal(l, c"coroutine".as_ptr());
        ffi::lua_getfield(l, -2, c"resume".as_ptr());
        ffi::lua_setfield(l, -2, c"resume".as_ptr());
        ffi::lua_getfield(l, -2, c"wrap".as_ptr());
        ffi::lua_setfield(l, -2, c"wrap".as_ptr());
        ffi::lua_pop(l, 1);
        ffi::lua_setfield(l, -2, c"skynet.profile".as_ptr());
        ffi::lua_pop(l, 1);
    }
}
