//! C services: `LAUNCH` of a name that is not built in opens `NAME.so` on `cpath` and
//! drives it as upstream's `skynet_module` does.
//!
//! `cpath` is a `;`-separated list of patterns; the first `?` of each is replaced by
//! the name and the candidates are opened in order with `dlopen(RTLD_NOW|RTLD_GLOBAL)`.
//! The module's functions are `NAME_create`, `_init`, `_release` and `_signal`, NAME
//! being the part of the name after its last `.`; only `_init` is required (without
//! `_create` the instance is `(void *)~0`). A module is loaded once, registered in
//! `module.rs` and shared by its instances; at most 32 are loaded, as upstream. Failures
//! print upstream's texts on stderr, and the launch fails.
//!
//! An instance is a [`CService`]: `init` runs after the handle is registered, with the
//! context pointer the exported API understands (`cabi/`), and may set its callback
//! with `skynet_callback`. Each message goes to that callback; a non-zero return means
//! the service kept the payload, which the core then does not free.

use crate::cabi::skynet::{close_slot, open_slot, CallbackSlot};
use crate::context::{Context, InitFailed, Service};
use crate::message::Message;
use crate::{env, module};
use parking_lot::{Mutex, RwLock};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Arc;

/// At most this many C modules per process (upstream's `MAX_MODULE_TYPE`).
const MAX_MODULES: usize = 32;

type CreateFn = unsafe extern "C" fn() -> *mut c_void;
type InitFn = unsafe extern "C" fn(*mut c_void, *const Context, *const c_char) -> c_int;
type ReleaseFn = unsafe extern "C" fn(*mut c_void);
type SignalFn = unsafe extern "C" fn(*mut c_void, c_int);

/// The functions of one loaded module. The library stays open for the process's life.
struct CModule {
    create: Option<CreateFn>,
    init: InitFn,
    release: Option<ReleaseFn>,
    signal: Option<SignalFn>,
}

/// How many modules are loaded; its lock makes loading one at a time.
static LOADED: Mutex<usize> = Mutex::new(0);

/// The search `module.rs` runs for a name that is not registered.
pub fn search(name: &str) -> Option<module::Create> {
    let mut loaded = LOADED.lock();
    if let Some(create) = module::registered(name) {
        return Some(create);
    }
    if *loaded >= MAX_MODULES {
        return None;
    }
    let cpath = env::get("cpath").unwrap_or_else(|| "./cservice/?.so".to_owned());
    let lib = open(&cpath, name)?;
    let m = Arc::new(symbols(lib, name)?);
    *loaded += 1;
    module::register(name, move |ctx: &Arc<Context>, param: Option<&str>| {
        CService::launch(&m, ctx, param)
    });
    module::registered(name)
}

/// The last `dlerror` text.
fn dlerror() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until the next dl
    // call on this thread; it is copied at once.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        return "(null)".to_owned();
    }
    // SAFETY: as above.
    unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
}

/// Opens the first candidate of `cpath` for `name` that `dlopen` takes.
fn open(cpath: &str, name: &str) -> Option<*mut c_void> {
    for pattern in cpath.split(';').filter(|p| !p.is_empty()) {
        let Some(path) = pattern
            .split_once('?')
            .map(|(a, b)| format!("{a}{name}{b}"))
        else {
            continue;
        };
        let Ok(path) = CString::new(path) else {
            continue;
        };
        // SAFETY: a NUL-terminated path; loading a module runs its constructors, which
        // is what asking for it means.
        let lib = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if !lib.is_null() {
            return Some(lib);
        }
    }
    eprintln!("try open {name} failed : {}", dlerror());
    None
}

/// `NAME_suffix` in `lib`, NAME being the part of `name` after its last `.`.
fn symbol(lib: *mut c_void, name: &str, suffix: &str) -> *mut c_void {
    let base = name.rsplit('.').next().unwrap_or(name);
    let Ok(sym) = CString::new(format!("{base}{suffix}")) else {
        return std::ptr::null_mut();
    };
    // SAFETY: `lib` is an open library handle and `sym` a NUL-terminated name.
    unsafe { libc::dlsym(lib, sym.as_ptr()) }
}

/// The module's functions; None without `_init` (the module is not registered, as
/// upstream, which says nothing either).
fn symbols(lib: *mut c_void, name: &str) -> Option<CModule> {
    let init = symbol(lib, name, "_init");
    if init.is_null() {
        return None;
    }
    let create = symbol(lib, name, "_create");
    let release = symbol(lib, name, "_release");
    let signal = symbol(lib, name, "_signal");
    // SAFETY: these are the functions skynet.h's module convention defines with these
    // signatures; a null symbol becomes None.
    unsafe {
        Some(CModule {
            create: (!create.is_null())
                .then(|| std::mem::transmute::<*mut c_void, CreateFn>(create)),
            init: std::mem::transmute::<*mut c_void, InitFn>(init),
            release: (!release.is_null())
                .then(|| std::mem::transmute::<*mut c_void, ReleaseFn>(release)),
            signal: (!signal.is_null())
                .then(|| std::mem::transmute::<*mut c_void, SignalFn>(signal)),
        })
    }
}

/// A module's instance pointer, which its signal function gets on another thread.
#[derive(Clone, Copy)]
struct Instance(*mut c_void);

impl Instance {
    fn ptr(self) -> *mut c_void {
        self.0
    }
}

// SAFETY: the pointer is only handed back to the module's own functions; upstream calls
// `_signal` from the sender's thread too, so a module is written for that.
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

/// One instance of a C service.
pub struct CService {
    module: Arc<CModule>,
    instance: Instance,
    callback: Arc<CallbackSlot>,
    handle: u32,
    /// False once released: a SIGNAL sent by someone who grabbed the context before it
    /// retired must not reach a released instance.
    alive: Arc<RwLock<bool>>,
}

// SAFETY: the instance is touched by the worker that holds the service (and by
// `_signal`, see `Instance`), as every skynet service.
unsafe impl Send for CService {}

impl CService {
    fn launch(
        m: &Arc<CModule>,
        ctx: &Arc<Context>,
        param: Option<&str>,
    ) -> Result<Box<dyn Service>, InitFailed> {
        let param = param
            .map(CString::new)
            .transpose()
            .map_err(|_| InitFailed)?;
        let instance = match m.create {
            // SAFETY: the module's own constructor.
            Some(create) => unsafe { create() },
            None => !0usize as *mut c_void,
        };
        if instance.is_null() {
            return Err(InitFailed);
        }
        // Made before init, so that a failed init releases the instance on drop.
        let service = CService {
            module: m.clone(),
            instance: Instance(instance),
            callback: open_slot(ctx.handle),
            handle: ctx.handle,
            alive: Arc::new(RwLock::new(true)),
        };
        if let Some(signal) = m.signal {
            let (instance, alive) = (service.instance, service.alive.clone());
            ctx.set_signal_hook(Box::new(move |sig| {
                let alive = alive.read();
                if *alive {
                    // SAFETY: the module's signal function on its instance, which is
                    // not released while the read lock is held.
                    unsafe { signal(instance.ptr(), sig) }
                }
            }));
        }
        let param = param.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
        // SAFETY: the module's init with its instance, the service's context (alive
        // for the whole call) and a NUL-terminated parameter or null.
        match unsafe { (m.init)(instance, Arc::as_ptr(ctx), param) } {
            0 => Ok(Box::new(service)),
            _ => Err(InitFailed),
        }
    }
}

impl Service for CService {
    fn dispatch(&mut self, ctx: &Arc<Context>, msg: Message) {
        let Some((cb, ud)) = self.callback.get() else {
            return;
        };
        // SAFETY: the callback the service set, with its ud, its live context and a
        // message it may read for the call; it owns nothing of ours.
        let kept = unsafe {
            cb(
                Arc::as_ptr(ctx),
                ud,
                msg.ptype() as c_int,
                msg.session,
                msg.source,
                msg.data() as *const c_void,
                msg.len(),
            )
        };
        if kept != 0 {
            let _ = msg.into_payload().into_raw();
        }
    }

    fn has_callback(&self) -> bool {
        self.callback.get().is_some()
    }
}

impl Drop for CService {
    fn drop(&mut self) {
        close_slot(self.handle);
        *self.alive.write() = false;
        if let Some(release) = self.module.release {
            // SAFETY: the instance is released once, by its own module, after its last
            // message.
            unsafe { release(self.instance.0) };
        }
    }
}
