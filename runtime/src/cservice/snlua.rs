//! The `snlua` service: one Lua VM per service.
//!
//! `LAUNCH snlua args` creates the VM and sends the service its own args as its first
//! message, so `LAUNCH` returns before any Lua runs; that message boots the VM on a
//! worker (standard libraries, `skynet.profile`, `skynet.codecache`, the `LUA_*` globals,
//! then the loader script with the args). Afterwards each message goes to the callback
//! Lua installed with `skynet.core.callback`.
//!
//! The VM's [`Host`] is the part other threads and the Lua side reach without the
//! service lock: the allocator's accounting (`memlimit`, memory warnings), the callback
//! slot, and the signal trap that breaks an endless loop.

use crate::context::{Context, InitFailed, Service};
use crate::lua::host::Host;
use crate::lua::stack::{self as lua, traceback};
use crate::luaclib;
use crate::message::{Message, Payload, PTYPE_TEXT};
use crate::{command, context, env, logging};
use mlua::ffi::{self, lua_State};
use std::ffi::c_void;
use std::sync::Arc;

pub struct Snlua {
    l: *mut lua_State,
    host: Arc<Host>,
    booted: bool,
}

// SAFETY: the VM is only touched by the worker that holds the service lock (or by
// `Host::signal`, which goes through `lua_sethook` only); moving it between workers is
// how every skynet service runs.
unsafe impl Send for Snlua {}

pub fn create(ctx: &Arc<Context>, param: Option<&str>) -> Result<Box<dyn Service>, InitFailed> {
    let (host, l) = Host::new_vm(ctx).ok_or(InitFailed)?;
    let hooked = host.clone();
    ctx.set_signal_hook(Box::new(move |sig| hooked.signal(sig)));
    let args = param.unwrap_or("").as_bytes();
    context::deliver(
        ctx.handle,
        Message::new(ctx.handle, 0, PTYPE_TEXT, Payload::copy_of(args)),
    );
    Ok(Box::new(Snlua {
        l,
        host,
        booted: false,
    }))
}

impl Drop for Snlua {
    fn drop(&mut self) {
        // SAFETY: the VM is ours and no Lua code of it is running (we hold the service).
        unsafe { self.host.close_vm(self.l) };
    }
}

fn getenv_or(key: &str, default: &str) -> String {
    env::get(key).unwrap_or_else(|| default.to_owned())
}

/// Reports a failed start to the launcher (it answers the pending `newservice`).
fn report_launcher_error(ctx: &Context) {
    let launcher = context::handles().find_name(b"launcher");
    if launcher != 0 {
        context::deliver(
            launcher,
            Message::new(ctx.handle, 0, PTYPE_TEXT, Payload::copy_of(b"ERROR")),
        );
    }
}

impl Snlua {
    /// Boots the VM with the launch args; false when it fails.
    fn boot(&mut self, ctx: &Context, args: &[u8]) -> bool {
        let l = self.l;
        // SAFETY: a fresh VM owned by this service, on the worker that holds it; every
        // Lua call that can raise runs under lua_pcall.
        unsafe {
            ffi::lua_gc(l, ffi::LUA_GCSTOP);
            ffi::lua_pushboolean(l, 1);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"LUA_NOENV".as_ptr());
            crate::lua::stdlibs::open(l);
            luaclib::profile::install(l);
            ffi::lua_pushlightuserdata(l, self.host.context() as *const Context as *mut c_void);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
            crate::lua::codecache::install(l);
            luaclib::preload_all(l);
            for (global, key, default) in [
                (
                    c"LUA_PATH",
                    "lua_path",
                    "./lualib/?.lua;./lualib/?/init.lua",
                ),
                (c"LUA_CPATH", "lua_cpath", "./luaclib/?.so"),
                (c"LUA_SERVICE", "luaservice", "./service/?.lua"),
            ] {
                lua::push_bytes(l, getenv_or(key, default).as_bytes());
                ffi::lua_setglobal(l, global.as_ptr());
            }
            match env::get("preload") {
                Some(p) => lua::push_bytes(l, p.as_bytes()),
                None => ffi::lua_pushnil(l),
            }
            ffi::lua_setglobal(l, c"LUA_PRELOAD".as_ptr());
            ffi::lua_pushcfunction(l, traceback);
            let loader = getenv_or("lualoader", "./lualib/loader.lua");
            if crate::lua::codecache::load_file(l, &loader) != ffi::LUA_OK {
                let err = String::from_utf8_lossy(lua::to_bytes(l, -1).unwrap_or(b"")).into_owned();
                logging::error(ctx.handle, format!("Can't load {loader} : {err}"));
                report_launcher_error(ctx);
                return false;
            }
            lua::push_bytes(l, args);
            if ffi::lua_pcall(l, 1, 0, 1) != ffi::LUA_OK {
                let err = String::from_utf8_lossy(lua::to_bytes(l, -1).unwrap_or(b"")).into_owned();
                logging::error(ctx.handle, format!("lua loader error : {err}"));
                report_launcher_error(ctx);
                return false;
            }
            ffi::lua_settop(l, 0);
            if ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"memlimit".as_ptr())
                == ffi::LUA_TNUMBER
            {
                let limit = ffi::lua_tointeger(l, -1).max(0) as usize;
                self.host.set_mem_limit(limit);
                logging::error(
                    ctx.handle,
                    format!(
                        "Set memory limit to {:.2} M",
                        limit as f32 / (1024.0 * 1024.0)
                    ),
                );
                ffi::lua_pushnil(l);
                ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"memlimit".as_ptr());
            }
            ffi::lua_pop(l, 1);
            // Switching to generational mode runs one full collection, which leaves
            // everything the boot made old: young collections then start from an empty
            // nursery instead of tracing the whole boot twice on its way to old age.
            ffi::lua_gc(l, ffi::LUA_GCGEN);
            ffi::lua_gc(l, ffi::LUA_GCRESTART);
        }
        true
    }

    /// Runs the Lua callback for one message.
    fn call(&mut self, ctx: &Context, msg: &Message) {
        // SAFETY: the callback thread is kept alive in the registry and its stack holds
        // [traceback, callback]; the VM runs only on this worker.
        unsafe {
            let gl = self.host.callback(self.l);
            self.host.switch_to(gl);
            ffi::lua_pushvalue(gl, 2);
            ffi::lua_pushinteger(gl, msg.ptype() as ffi::lua_Integer);
            ffi::lua_pushlightuserdata(gl, msg.data() as *mut c_void);
            ffi::lua_pushinteger(gl, msg.len() as ffi::lua_Integer);
            ffi::lua_pushinteger(gl, msg.session as ffi::lua_Integer);
            ffi::lua_pushinteger(gl, msg.source as ffi::lua_Integer);
            let r = ffi::lua_pcall(gl, 5, 0, 1);
            if r != ffi::LUA_OK {
                let me = format!(":{:x}", ctx.handle);
                let (src, session) = (msg.source, msg.session);
                let text = match r {
                    ffi::LUA_ERRMEM => format!("lua memory error : [{src:x} to {me} : {session}]"),
                    ffi::LUA_ERRERR => {
                        format!("lua error in error : [{src:x} to {me} : {session}]")
                    }
                    _ => {
                        let err = String::from_utf8_lossy(lua::to_bytes(gl, -1).unwrap_or(b""))
                            .into_owned();
                        format!(
                            "lua call [{src:x} to {me} : {session} msgsz = {}] error : \x1b[31m{err}\x1b[0m",
                            msg.len()
                        )
                    }
                };
                logging::error(ctx.handle, text);
                ffi::lua_settop(gl, 2);
            }
        }
    }
}

impl Service for Snlua {
    fn dispatch(&mut self, ctx: &Arc<Context>, msg: Message) {
        if !self.booted {
            self.booted = true;
            if !self.boot(ctx, msg.bytes()) {
                command::run(ctx, "EXIT", None);
            }
            return;
        }
        self.call(ctx, &msg);
        if self.host.forwards() {
            // Forward mode: the Lua side now owns the payload (it trashes or re-sends it).
            let _ = msg.into_payload().into_raw();
        }
    }

    fn has_callback(&self) -> bool {
        !self.booted || self.host.has_callback()
    }
}
