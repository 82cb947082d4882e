//! What a service's Lua VM shares with the node: [`Host`].
//!
//! Every snlua VM is created with [`allocate`] and a `Host` as its allocator userdata, so
//! any function running in the VM finds its host with [`host`]. The host is the part of a
//! service that other threads and the native modules reach without the service lock:
//!
//! * the allocator's accounting (`memlimit`, the doubling memory warnings);
//! * the callback slot: the thread `skynet.core.callback` made, which snlua calls for
//!   every message. [`Host::set_callback`] is the one way to fill it; snlua reads it
//!   with [`Host::callback`];
//! * the signal trap (`SIGNAL addr 0`) that breaks an endless loop: a count hook set on
//!   the running thread from the signalling thread, the one call Lua allows from outside.

use super::raise::raise;
use super::stack::traceback;
use crate::context::Context;
use crate::logging;
use mlua::ffi::{self, lua_State};
use parking_lot::Mutex;
use std::ffi::{c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

const MEMORY_WARNING_REPORT: usize = 32 * 1024 * 1024;

const REGISTRY_CALLBACK: &CStr = c"skynet.core.callback";
const REGISTRY_PREVIOUS: &CStr = c"skynet.core.previous_callback";

/// Per-VM state shared with the allocator, `skynet.core` and signal senders.
pub struct Host {
    pub handle: u32,
    ctx: *const Context,
    mem: AtomicUsize,
    mem_limit: AtomicUsize,
    mem_report: AtomicUsize,
    /// The thread `skynet.core.callback` created (null: no callback yet).
    callback: AtomicPtr<lua_State>,
    /// A replaced callback thread is still referenced until the next message starts.
    previous_callback: AtomicBool,
    forward: AtomicBool,
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
unsafe impl Send for Host {}
// SAFETY: as above.
unsafe impl Sync for Host {}

impl Host {
    /// A new VM for the service `ctx`, with its host; None when Lua cannot allocate it.
    pub fn new_vm(ctx: &Arc<Context>) -> Option<(Arc<Host>, *mut lua_State)> {
        let host = Arc::new(Host {
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
        super::codecache::make_shared_names();
        // SAFETY: `allocate` matches lua_Alloc and the host outlives the VM: its owner
        // calls `close_vm` before dropping the last Arc.
        let l = unsafe {
            ffi::lua_newstate(
                allocate,
                Arc::as_ptr(&host) as *mut c_void,
                super::codecache::hash_seed(),
            )
        };
        (!l.is_null()).then_some((host, l))
    }

    /// Closes the VM `l` made by [`Host::new_vm`]; signals no longer reach it.
    ///
    /// # Safety
    /// `l` must be this host's VM, with no Lua code of it running.
    pub unsafe fn close_vm(&self, l: *mut lua_State) {
        *self.alive.lock() = false;
        self.active.store(ptr::null_mut(), Ordering::Release);
        // SAFETY: guaranteed by the caller.
        unsafe { ffi::lua_close(l) };
    }

    pub fn mem(&self) -> usize {
        self.mem.load(Ordering::Relaxed)
    }

    pub fn set_mem_limit(&self, limit: usize) {
        self.mem_limit.store(limit, Ordering::Relaxed);
    }

    /// The owning context.
    pub fn context(&self) -> &Context {
        // SAFETY: see the Send impl: the Context outlives the VM that calls this.
        unsafe { &*self.ctx }
    }

    /// Fills the callback slot with the function on top of `l`'s stack: a new thread
    /// whose stack holds `[traceback, function]`, kept in the registry. `forward`: the
    /// Lua side takes over every payload.
    ///
    /// # Safety
    /// `l` must be this host's VM, on the worker dispatching it, with a function on top.
    pub unsafe fn set_callback(&self, l: *mut lua_State, forward: bool) {
        // SAFETY: stack and registry work on the service's own VM.
        unsafe {
            // Keep the thread running now alive: skynet.exit replaces the callback from
            // inside a callback.
            if ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, REGISTRY_CALLBACK.as_ptr())
                == ffi::LUA_TTHREAD
            {
                ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, REGISTRY_PREVIOUS.as_ptr());
                self.previous_callback.store(true, Ordering::Relaxed);
            } else {
                ffi::lua_pop(l, 1);
            }
            let gl = ffi::lua_newthread(l);
            ffi::lua_pushcfunction(gl, traceback);
            ffi::lua_rotate(l, -2, 1);
            ffi::lua_xmove(l, gl, 1);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, REGISTRY_CALLBACK.as_ptr());
            self.forward.store(forward, Ordering::Relaxed);
            self.callback.store(gl, Ordering::Release);
        }
    }

    /// The callback thread (stack `[traceback, function]`), null before Lua set one.
    /// Calling this also drops the reference that kept a replaced callback thread alive
    /// while it ran, so call it once per message, before the callback runs.
    ///
    /// # Safety
    /// `l` must be this host's VM, on the worker dispatching it.
    pub unsafe fn callback(&self, l: *mut lua_State) -> *mut lua_State {
        if self.previous_callback.swap(false, Ordering::Relaxed) {
            // SAFETY: plain registry write on a live VM.
            unsafe {
                ffi::lua_pushnil(l);
                ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, REGISTRY_PREVIOUS.as_ptr());
            }
        }
        self.callback.load(Ordering::Acquire)
    }

    /// Whether a callback is installed (any thread may ask).
    pub fn has_callback(&self) -> bool {
        !self.callback.load(Ordering::Relaxed).is_null()
    }

    /// Whether the Lua side takes over payloads (`skynet.core.callback(f, true)`).
    pub fn forwards(&self) -> bool {
        self.forward.load(Ordering::Relaxed)
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

    /// `SIGNAL addr sig`: 0 breaks the running Lua code, 1 logs the VM's memory.
    pub fn signal(&self, sig: i32) {
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

/// The host of the VM `l` belongs to.
///
/// # Safety
/// `l` must be a thread of a VM created by [`Host::new_vm`].
pub unsafe fn host<'a>(l: *mut lua_State) -> &'a Host {
    let mut ud = ptr::null_mut();
    // SAFETY: every such VM is created with `allocate` and a `Host` as its userdata,
    // which lives until after the VM is closed.
    unsafe {
        ffi::lua_getallocf(l, &mut ud);
        &*(ud as *const Host)
    }
}

unsafe extern "C-unwind" fn trap_hook(l: *mut lua_State, _ar: *mut ffi::lua_Debug) {
    // SAFETY: the hook only runs on VMs made by `Host::new_vm`.
    let h = unsafe { host(l) };
    // SAFETY: removing the hook of the running thread from inside it is allowed.
    unsafe { ffi::lua_sethook(l, None, 0, 0) };
    if h.trap.swap(0, Ordering::AcqRel) != 0 {
        // SAFETY: hooks run inside a protected call of the VM, with LUA_MINSTACK free
        // slots; this frame owns nothing (`h` is a borrow).
        unsafe { raise!("signal 0").raise(l) };
    }
}

unsafe extern "C" fn allocate(
    ud: *mut c_void,
    p: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: the userdata is the VM's Host (see `host`).
    let s = unsafe { &*(ud as *const Host) };
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
