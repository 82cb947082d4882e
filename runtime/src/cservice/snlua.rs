//! The `snlua` service: one Lua VM per service.
//!
//! `LAUNCH snlua args` creates the VM and sends the service its own args as its first
//! message, so `LAUNCH` returns before any Lua runs; that message boots the VM on a
//! worker (standard libraries, `skynet.profile`, `skynet.codecache`, the `LUA_*` globals,
//! then the loader script with the args). Afterwards each message goes to the callback
//! Lua installed with `skynet.core.callback`.
//!
//! [`Shared`] is the part other threads and the Lua side reach without the service lock:
//! the allocator's accounting (`memlimit`, memory warnings), the installed callback, and
//! the signal trap that breaks an endless loop.

use crate::context::{Context, InitFailed, Service};
use crate::luaclib::{self, lua};
use crate::message::{Message, Payload, PTYPE_TEXT};
use crate::{command, context, env, logging};
use mlua::ffi::{self, lua_State};
use parking_lot::Mutex;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

const MEMORY_WARNING_REPORT: usize = 32 * 1024 * 1024;

/// Per-VM state shared with the allocator, `skynet.core` and signal senders.
pub struct Shared {
    pub handle: u32,
    pub ctx: *const Context,
    mem: AtomicUsize,
    mem_limit: AtomicUsize,
    mem_report: AtomicUsize,
    /// The thread `skynet.core.callback` created (null: no callback yet).
    pub callback: AtomicPtr<lua_State>,
    /// A replaced callback thread is still referenced until the next message starts.
    pub previous_callback: AtomicBool,
    pub forward: AtomicBool,
    /// The Lua thread running now, where a trap hook must go.
    active: AtomicPtr<lua_State>,
    /// Coroutines being profiled (`skynet.profile.start` without `stop` yet); a
    /// coroutine collected while profiled keeps it above zero, which is only slower.
    pub profiling: AtomicUsize,
    /// 0 no trap, 1 being installed, -1 installed and pending.
    trap: AtomicI32,
    /// Guards `alive` so a signal never hooks a closed VM.
    alive: Mutex<bool>,
}

// SAFETY: `ctx` points to the Context that owns this service; it outlives the VM (the
// service is dropped before the Context) and Context is Sync. Every other field is
// atomic or locked.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    pub fn mem(&self) -> usize {
        self.mem.load(Ordering::Relaxed)
    }

    /// The owning context.
    pub fn context(&self) -> &Context {
        // SAFETY: see the Send impl: the Context outlives the VM that calls this.
        unsafe { &*self.ctx }
    }

    /// Records `l` as the running thread, hooking it when a trap is pending.
    ///
    /// # Safety
    /// `l` must be a live thread of this VM, running on the calling thread.
    pub unsafe fn switch_to(&self, l: *mut lua_State) {
        self.active.store(l, Ordering::Release);
        if self.trap.load(Ordering::Acquire) != 0 {
            // SAFETY: `l` is a live thread of this VM, running on this thread.
            unsafe { ffi::lua_sethook(l, Some(trap_hook), ffi::LUA_MASKCOUNT, 1) };
        }
    }

    /// After a resume returns: waits for a signal sender that is halfway through
    /// installing its hook, so the trap is not lost between threads.
    pub fn settle_trap(&self) {
        if self.trap.load(Ordering::Acquire) != 0 {
            while self.trap.load(Ordering::Acquire) > 0 {
                std::hint::spin_loop();
            }
        }
    }

    fn signal(&self, sig: i32) {
        logging::error(self.handle, format!("recv a signal {sig}"));
        match sig {
            0 => {
                let alive = self.alive.lock();
                if !*alive
                    || self
                        .trap
                        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                {
                    return;
                }
                let l = self.active.load(Ordering::Acquire);
                if !l.is_null() {
                    // SAFETY: lua_sethook is the one call Lua allows from another thread
                    // (it only stores the hook fields); `alive` keeps the VM open.
                    unsafe { ffi::lua_sethook(l, Some(trap_hook), ffi::LUA_MASKCOUNT, 1) };
                }
                self.trap.store(-1, Ordering::Release);
            }
            1 => logging::error(
                self.handle,
                format!("Current Memory {:.3}K", self.mem() as f64 / 1024.0),
            ),
            _ => {}
        }
    }
}

/// The Shared of the VM `l` belongs to.
///
/// # Safety
/// `l` must be a thread of a VM created by this module.
pub unsafe fn shared<'a>(l: *mut lua_State) -> &'a Shared {
    let mut ud = ptr::null_mut();
    // SAFETY: every snlua VM is created with `allocate` and a `Shared` as its userdata,
    // which lives until after the VM is closed.
    unsafe {
        ffi::lua_getallocf(l, &mut ud);
        &*(ud as *const Shared)
    }
}

unsafe extern "C-unwind" fn trap_hook(l: *mut lua_State, _ar: *mut ffi::lua_Debug) {
    // SAFETY: the hook only runs on VMs of this module.
    let s = unsafe { shared(l) };
    // SAFETY: removing the hook of the running thread from inside it is allowed.
    unsafe { ffi::lua_sethook(l, None, 0, 0) };
    if s.trap.swap(0, Ordering::AcqRel) != 0 {
        // SAFETY: hooks run inside a protected call of the VM; nothing Rust-owned is live.
        unsafe { lua::raise(l, "signal 0".to_owned()) };
    }
}

unsafe extern "C" fn allocate(
    ud: *mut c_void,
    p: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: the userdata is the VM's Shared (see `shared`).
    let s = unsafe { &*(ud as *const Shared) };
    let old = if p.is_null() { 0 } else { osize };
    let before = s.mem.load(Ordering::Relaxed);
    let after = (before + nsize).saturating_sub(old);
    let limit = s.mem_limit.load(Ordering::Relaxed);
    if limit != 0 && after > limit && (p.is_null() || nsize > osize) {
        return ptr::null_mut();
    }
    s.mem.store(after, Ordering::Relaxed);
    let report = s.mem_report.load(Ordering::Relaxed);
    if after > report {
        s.mem_report.store(report * 2, Ordering::Relaxed);
        logging::error(
            s.handle,
            format!("Memory warning {:.2} M", after as f64 / (1024.0 * 1024.0)),
        );
    }
    if nsize == 0 {
        // SAFETY: Lua frees only blocks this allocator returned.
        unsafe { libmimalloc_sys::mi_free(p) };
        ptr::null_mut()
    } else {
        // SAFETY: `p` is null or a block from this allocator; realloc keeps the contents.
        unsafe { libmimalloc_sys::mi_realloc(p, nsize) }
    }
}

pub struct Snlua {
    l: *mut lua_State,
    shared: Arc<Shared>,
    booted: bool,
}

// SAFETY: the VM is only touched by the worker that holds the service lock (or by
// `Shared::signal`, which goes through `lua_sethook` only); moving it between workers is
// how every skynet service runs.
unsafe impl Send for Snlua {}

pub fn create(ctx: &Arc<Context>, param: Option<&str>) -> Result<Box<dyn Service>, InitFailed> {
    let shared = Arc::new(Shared {
        handle: ctx.handle,
        ctx: Arc::as_ptr(ctx),
        mem: AtomicUsize::new(0),
        mem_limit: AtomicUsize::new(0),
        mem_report: AtomicUsize::new(MEMORY_WARNING_REPORT),
        callback: AtomicPtr::new(ptr::null_mut()),
        previous_callback: AtomicBool::new(false),
        forward: AtomicBool::new(false),
        active: AtomicPtr::new(ptr::null_mut()),
        profiling: AtomicUsize::new(0),
        trap: AtomicI32::new(0),
        alive: Mutex::new(true),
    });
    // SAFETY: `allocate` matches lua_Alloc and `shared` outlives the VM (closed in Drop
    // before the Arc goes).
    let l = unsafe {
        ffi::lua_newstate(
            allocate,
            Arc::as_ptr(&shared) as *mut c_void,
            luaclib::codecache::hash_seed(),
        )
    };
    if l.is_null() {
        return Err(InitFailed);
    }
    let hooked = shared.clone();
    ctx.set_signal_hook(Box::new(move |sig| hooked.signal(sig)));
    let args = param.unwrap_or("").as_bytes();
    context::send_raw(
        ctx.handle,
        ctx.handle,
        PTYPE_TEXT,
        0,
        Payload::copy_of(args),
        args.len(),
    );
    Ok(Box::new(Snlua {
        l,
        shared,
        booted: false,
    }))
}

impl Drop for Snlua {
    fn drop(&mut self) {
        *self.shared.alive.lock() = false;
        self.shared.active.store(ptr::null_mut(), Ordering::Release);
        // SAFETY: the VM is ours and no Lua code of it is running (we hold the service).
        unsafe { ffi::lua_close(self.l) };
    }
}

fn getenv_or(key: &str, default: &str) -> String {
    env::get(key).unwrap_or_else(|| default.to_owned())
}

/// Reports a failed start to the launcher (it answers the pending `newservice`).
fn report_launcher_error(ctx: &Context) {
    let launcher = crate::handle::find_name(b"launcher");
    if launcher != 0 {
        context::send_raw(
            ctx.handle,
            launcher,
            PTYPE_TEXT,
            0,
            Payload::copy_of(b"ERROR"),
            5,
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
            crate::stdlibs::open(l);
            luaclib::profile::install(l);
            ffi::lua_pushlightuserdata(l, self.shared.ctx as *mut c_void);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, c"skynet_context".as_ptr());
            luaclib::codecache::install(l);
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
            ffi::lua_pushcfunction(l, luaclib::core::traceback);
            let loader = getenv_or("lualoader", "./lualib/loader.lua");
            if luaclib::codecache::load_file(l, &loader) != ffi::LUA_OK {
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
                self.shared.mem_limit.store(limit, Ordering::Relaxed);
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
        let gl = self.shared.callback.load(Ordering::Acquire);
        // SAFETY: `gl` is the callback thread, kept alive in the registry, whose stack
        // holds [traceback, callback]; the VM runs only on this worker.
        unsafe {
            luaclib::core::forget_previous_callback(self.l, &self.shared);
            self.shared.switch_to(gl);
            ffi::lua_pushvalue(gl, 2);
            ffi::lua_pushinteger(gl, msg.ptype as ffi::lua_Integer);
            ffi::lua_pushlightuserdata(gl, msg.data.as_ptr() as *mut c_void);
            ffi::lua_pushinteger(gl, msg.size as ffi::lua_Integer);
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
                            msg.size
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
        if self.shared.forward.load(Ordering::Relaxed) {
            // Forward mode: the Lua side now owns the payload (it trashes or re-sends it).
            let _ = msg.data.into_raw();
        }
    }

    fn has_callback(&self) -> bool {
        !self.booted || !self.shared.callback.load(Ordering::Relaxed).is_null()
    }
}
