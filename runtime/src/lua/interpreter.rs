//! `skynet lua SCRIPT [ARGS]`: a stock Lua 5.5 interpreter with the modules the caller
//! names preloaded (`client.socket` and `client.crypt` for the binary), so upstream's
//! example clients run without a C build. It
//! behaves like `lua script args`: `arg` holds the script and its arguments, and an
//! uncaught error prints `<program>: <message>` with a traceback and exits with 1.

use super::stack::{self as lua, CFunction};
use mlua::ffi;
use std::ffi::{CStr, CString};
use std::process::ExitCode;

/// Loads the script named by argument 1 and calls it with the other arguments, under
/// the message handler in upvalue 1; its error, if any, is raised on.
unsafe extern "C-unwind" fn run_script(l: *mut ffi::lua_State) -> std::ffi::c_int {
    // SAFETY: called by lua_pcall with the path and the arguments; loading reports
    // errors as a status, and the raise at the end owns nothing.
    unsafe {
        let nargs = ffi::lua_gettop(l) - 1;
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        let path = ffi::lua_tolstring(l, 2, std::ptr::null_mut());
        if ffi::luaL_loadfilex(l, path, std::ptr::null()) != ffi::LUA_OK {
            ffi::lua_error(l);
        }
        ffi::lua_replace(l, 2);
        if ffi::lua_pcall(l, nargs, 0, 1) != ffi::LUA_OK {
            ffi::lua_error(l);
        }
    }
    0
}

/// Runs `script` with `args` and `preloads` in `package.preload`; `program` is how error
/// lines are prefixed (argv[0]); `traceback` is the message handler of the main chunk.
pub fn run(
    program: &str,
    script: &str,
    args: &[String],
    preloads: &[(&CStr, CFunction)],
    traceback: CFunction,
) -> ExitCode {
    // SAFETY: a fresh state used only on this thread; every call that can raise runs
    // inside lua_pcall, and nothing Rust-owned crosses a raise.
    unsafe {
        // The services' allocator (mimalloc) rather than the C library's: scripts that
        // build and drop many small tables, sproto clients among them, run faster.
        let l = super::codecache::new_state();
        if l.is_null() {
            eprintln!("{program}: cannot create state: not enough memory");
            return ExitCode::from(1);
        }
        super::warn::install(l);
        ffi::luaL_openlibs(l);
        for (name, open) in preloads {
            lua::preload(l, name, *open);
        }
        ffi::lua_createtable(l, args.len() as i32, 1);
        lua::push_bytes(l, script.as_bytes());
        ffi::lua_rawseti(l, -2, 0);
        for (i, a) in args.iter().enumerate() {
            lua::push_bytes(l, a.as_bytes());
            ffi::lua_rawseti(l, -2, (i + 1) as ffi::lua_Integer);
        }
        ffi::lua_setglobal(l, c"arg".as_ptr());
        // as lua.c, the script runs inside a C function (its `pmain`), which shows as
        // the `[C]: in ?` that ends an error's traceback
        ffi::lua_pushcfunction(l, traceback);
        ffi::lua_pushcclosure(l, run_script, 1);
        let path = CString::new(script).unwrap_or_default();
        ffi::lua_pushstring(l, path.as_ptr());
        for a in args {
            lua::push_bytes(l, a.as_bytes());
        }
        let status = ffi::lua_pcall(l, args.len() as i32 + 1, 0, 0);
        if status != ffi::LUA_OK {
            let msg = lua::to_bytes(l, -1).map(|b| String::from_utf8_lossy(b).into_owned());
            eprintln!(
                "{program}: {}",
                msg.unwrap_or_else(|| "(error object is not a string)".to_owned())
            );
            ffi::lua_close(l);
            return ExitCode::from(1);
        }
        ffi::lua_close(l);
    }
    ExitCode::SUCCESS
}
