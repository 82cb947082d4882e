//! `skynet lua SCRIPT [ARGS]`: a stock Lua 5.5 interpreter with the modules the caller
//! names preloaded (`client.socket` and `client.crypt` for the binary), so upstream's
//! example clients run without a C build. It
//! behaves like `lua script args`: `arg` holds the script and its arguments, and an
//! uncaught error prints `<program>: <message>` with a traceback and exits with 1.

use super::stack::{self as lua, CFunction};
use mlua::ffi;
use std::ffi::{CStr, CString};
use std::process::ExitCode;

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
        let l = ffi::luaL_newstate();
        if l.is_null() {
            eprintln!("{program}: cannot create state: not enough memory");
            return ExitCode::from(1);
        }
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
        ffi::lua_pushcfunction(l, traceback);
        let path = CString::new(script).unwrap_or_default();
        let mut status = ffi::luaL_loadfilex(l, path.as_ptr(), std::ptr::null());
        if status == ffi::LUA_OK {
            for a in args {
                lua::push_bytes(l, a.as_bytes());
            }
            status = ffi::lua_pcall(l, args.len() as i32, 0, 1);
        }
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
