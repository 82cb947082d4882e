//! `skynet.h` and the other core calls upstream's own C modules make: logging, text
//! commands, names, sending, the callback of a C service, time, the environment,
//! handles, contexts, timeouts and the harbor.
//!
//! A `struct skynet_context *` given to C is the address of the service's [`Context`]
//! inside its `Arc` (a C service gets it in `init`, a Lua C module from the registry's
//! `skynet_context`), so `skynet_context_grab`/`_release` are the `Arc`'s own counts.
//!
//! The callback of a C service lives in a [`CallbackSlot`] that the service loader
//! registers under the handle before `init` runs, not in the service itself: a service
//! calls `skynet_callback` from `init`, before the core holds its instance, and from
//! the callback, while the core holds the instance's lock.

use super::{context, guard, text};
use crate::context::{self as contexts, Context};
use crate::handle::HANDLE_REMOTE_SHIFT;
use crate::message::{
    Message, Payload, MAX_PAYLOAD, PTYPE_RESPONSE, PTYPE_TAG_ALLOCSESSION, PTYPE_TAG_DONTCOPY,
};
use crate::send::{self, Destination, SendError};
use crate::{command, env, harbor, logging, memory, timer};
use parking_lot::{Mutex, RwLock};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::{Arc, LazyLock};

/// `skynet_cb`: `(ctx, ud, type, session, source, msg, sz)`; non-zero keeps `msg`.
pub type Callback = unsafe extern "C" fn(
    *const Context,
    *mut c_void,
    c_int,
    c_int,
    u32,
    *const c_void,
    usize,
) -> c_int;

/// The callback a C service set with `skynet_callback`, and its `ud`.
#[derive(Default)]
pub struct CallbackSlot(Mutex<Option<(Callback, usize)>>);

impl CallbackSlot {
    /// The callback and its `ud`, if one is set.
    pub fn get(&self) -> Option<(Callback, *mut c_void)> {
        self.0.lock().map(|(cb, ud)| (cb, ud as *mut c_void))
    }

    fn set(&self, cb: Option<Callback>, ud: *mut c_void) {
        *self.0.lock() = cb.map(|cb| (cb, ud as usize));
    }
}

static SLOTS: LazyLock<RwLock<HashMap<u32, Arc<CallbackSlot>>>> = LazyLock::new(Default::default);

/// Gives the C service `handle` a callback slot, before its `init` runs.
pub fn open_slot(handle: u32) -> Arc<CallbackSlot> {
    let slot = Arc::new(CallbackSlot::default());
    SLOTS.write().insert(handle, slot.clone());
    slot
}

/// Forgets the slot of a released C service.
pub fn close_slot(handle: u32) {
    SLOTS.write().remove(&handle);
}

/// Strings handed to C that must stay valid for the life of the process (environment
/// values and names): one copy of each, never freed, as upstream keeps them.
fn interned(s: &str) -> *const c_char {
    static KEPT: LazyLock<Mutex<HashMap<String, Box<CStr>>>> = LazyLock::new(Default::default);
    let mut kept = KEPT.lock();
    if let Some(c) = kept.get(s) {
        return c.as_ptr();
    }
    let Ok(c) = CString::new(s) else {
        return std::ptr::null();
    };
    let c = c.into_boxed_c_str();
    let p = c.as_ptr();
    kept.insert(s.to_owned(), c);
    p
}

/// Logs one line formatted by `skynet_error` (error.c) from `ctx` (null: source 0).
///
/// # Safety
/// `line` points to `len` readable bytes; `ctx` as in `context`.
#[no_mangle]
pub unsafe extern "C" fn skynet_error_line(ctx: *const Context, line: *const c_char, len: usize) {
    guard((), || {
        // SAFETY: error.c passes its formatted buffer and length.
        let bytes = unsafe { std::slice::from_raw_parts(line as *const u8, len) };
        // SAFETY: guaranteed by the caller.
        let source = unsafe { context(ctx) }.map_or(0, |c| c.handle);
        logging::error(source, bytes);
    })
}

thread_local! {
    /// The last result of `skynet_command` on this thread: valid until the next call,
    /// as upstream's per-context result buffer.
    static RESULT: RefCell<CString> = RefCell::new(CString::default());
}

/// `skynet_command`: runs a text command; its result, or null for none.
///
/// # Safety
/// `ctx` as in `context`; `cmd` and `param` null or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn skynet_command(
    ctx: *const Context,
    cmd: *const c_char,
    param: *const c_char,
) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: guaranteed by the caller.
        let (Some(ctx), Some(cmd)) = (unsafe { context(ctx) }, unsafe { text(cmd) }) else {
            return std::ptr::null();
        };
        // SAFETY: guaranteed by the caller.
        let param = unsafe { text(param) };
        let Some(result) = command::run(ctx, &cmd, param.as_deref()) else {
            return std::ptr::null();
        };
        let result = CString::new(result).unwrap_or_default();
        RESULT.with(|r| {
            *r.borrow_mut() = result;
            r.borrow().as_ptr()
        })
    })
}

/// `skynet_queryname`: `:hex` or `.name` to a handle, 0 when unknown.
///
/// # Safety
/// As [`skynet_command`].
#[no_mangle]
pub unsafe extern "C" fn skynet_queryname(ctx: *const Context, name: *const c_char) -> u32 {
    guard(0, || {
        // SAFETY: guaranteed by the caller.
        let (Some(ctx), Some(name)) = (unsafe { context(ctx) }, unsafe { text(name) }) else {
            return 0;
        };
        send::query_name(ctx.handle, &name)
    })
}

/// Makes the message of `skynet_send`/`skynet_sendname`: takes `data` over with
/// PTYPE_TAG_DONTCOPY, copies it otherwise. None (the handed-over buffer freed) when it
/// is too large: upstream logs that and returns -2.
///
/// # Safety
/// `data` is null or `sz` readable bytes; with DONTCOPY a `malloc` buffer given away.
unsafe fn message(
    ctx: &Context,
    to: &dyn Fn() -> String,
    source: u32,
    ptype: c_int,
    session: c_int,
    data: *mut c_void,
    sz: usize,
) -> Option<Message> {
    let handed_over = ptype & PTYPE_TAG_DONTCOPY != 0;
    if sz > MAX_PAYLOAD {
        logging::error(
            ctx.handle,
            format!("error: The message to {} is too large", to()),
        );
        if handed_over {
            // SAFETY: a DONTCOPY buffer is ours to free, as upstream frees it.
            unsafe { crate::message::payload_free(data as *mut u8) };
        }
        return None;
    }
    let payload = match (data.is_null(), handed_over) {
        (true, _) => Payload::NULL,
        // SAFETY: the caller hands over a malloc buffer of `sz` bytes.
        (false, true) => unsafe { Payload::from_raw(data as *mut u8, sz) },
        // SAFETY: the caller's buffer holds `sz` readable bytes for the call.
        (false, false) => {
            Payload::copy_of(unsafe { std::slice::from_raw_parts(data as *const u8, sz) })
        }
    };
    Some(Message::new(source, session, (ptype & 0xff) as u8, payload))
}

fn send_result(r: Result<i32, SendError>) -> c_int {
    match r {
        Ok(session) => session,
        Err(SendError::NoDestination) => -1,
        Err(SendError::TooLarge) => -2,
    }
}

/// `skynet_send`: the session, -1 for a dead or zero destination, -2 when too large.
///
/// # Safety
/// `ctx` as in `context`; `data` as in `message`.
#[no_mangle]
pub unsafe extern "C" fn skynet_send(
    ctx: *const Context,
    source: u32,
    dest: u32,
    ptype: c_int,
    session: c_int,
    data: *mut c_void,
    sz: usize,
) -> c_int {
    guard(-1, || {
        // SAFETY: guaranteed by the caller.
        let Some(ctx) = (unsafe { context(ctx) }) else {
            return -1;
        };
        let to = || format!("{dest:x}");
        // SAFETY: guaranteed by the caller.
        let Some(msg) = (unsafe { message(ctx, &to, source, ptype, session, data, sz) }) else {
            return -2;
        };
        let alloc = ptype & PTYPE_TAG_ALLOCSESSION != 0;
        send_result(send::send(ctx, Destination::Handle(dest), msg, alloc))
    })
}

/// `skynet_sendname`: as [`skynet_send`] to `:hex`, `.name` or a global name.
///
/// # Safety
/// As [`skynet_send`]; `dest` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn skynet_sendname(
    ctx: *const Context,
    source: u32,
    dest: *const c_char,
    ptype: c_int,
    session: c_int,
    data: *mut c_void,
    sz: usize,
) -> c_int {
    guard(-1, || {
        // SAFETY: guaranteed by the caller.
        let (Some(ctx), false) = (unsafe { context(ctx) }, dest.is_null()) else {
            return -1;
        };
        // SAFETY: a NUL-terminated string, alive for the call.
        let name = unsafe { CStr::from_ptr(dest) }.to_bytes();
        let to = || String::from_utf8_lossy(name).into_owned();
        // SAFETY: guaranteed by the caller.
        let Some(msg) = (unsafe { message(ctx, &to, source, ptype, session, data, sz) }) else {
            return -2;
        };
        let alloc = ptype & PTYPE_TAG_ALLOCSESSION != 0;
        send_result(send::send(ctx, Destination::Name(name), msg, alloc))
    })
}

/// `skynet_isremote`: whether `handle` is on another node; its harbor id in `*harbor`.
///
/// # Safety
/// `harbor` null or writable.
#[no_mangle]
pub unsafe extern "C" fn skynet_isremote(
    _ctx: *const Context,
    handle: u32,
    harbor: *mut c_int,
) -> c_int {
    if !harbor.is_null() {
        // SAFETY: the caller gives a writable int.
        unsafe { *harbor = (handle >> HANDLE_REMOTE_SHIFT) as c_int };
    }
    contexts::handles().is_remote(handle) as c_int
}

/// `skynet_callback`: sets the callback of the C service `ctx` (null `cb`: none).
///
/// # Safety
/// `ctx` as in `context`; `cb` a function with `skynet_cb`'s signature.
#[no_mangle]
pub unsafe extern "C" fn skynet_callback(
    ctx: *const Context,
    ud: *mut c_void,
    cb: Option<Callback>,
) {
    guard((), || {
        // SAFETY: guaranteed by the caller.
        let Some(ctx) = (unsafe { context(ctx) }) else {
            return;
        };
        match SLOTS.read().get(&ctx.handle) {
            Some(slot) => slot.set(cb, ud),
            None => logging::error(
                ctx.handle,
                "error: skynet_callback is for C services; this service has its own",
            ),
        }
    })
}

/// `skynet_current_handle`: the service this thread is dispatching, 0 for none.
#[no_mangle]
pub extern "C" fn skynet_current_handle() -> u32 {
    memory::current()
}

/// `skynet_now`: centiseconds since the node started.
#[no_mangle]
pub extern "C" fn skynet_now() -> u64 {
    timer::now()
}

/// `skynet_debug_memory`: prints the current service's heap to stderr.
///
/// # Safety
/// `info` null or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn skynet_debug_memory(info: *const c_char) {
    guard((), || {
        let handle = memory::current();
        // SAFETY: guaranteed by the caller.
        let info = unsafe { text(info) }.unwrap_or_default();
        match memory::of(handle) {
            0 => eprintln!("[:{handle:08x}] {info} (nil)"),
            n => eprintln!("[:{handle:08x}] {info} {n:#x}"),
        }
    })
}

/// `skynet_getenv`: a config value, valid for the life of the process; null if unset.
///
/// # Safety
/// `key` null or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn skynet_getenv(key: *const c_char) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: guaranteed by the caller.
        match unsafe { text(key) }.and_then(|k| env::get(&k)) {
            Some(v) => interned(&v),
            None => std::ptr::null(),
        }
    })
}

/// `skynet_setenv`: adds a key (an existing key keeps its value).
///
/// # Safety
/// Both null or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn skynet_setenv(key: *const c_char, value: *const c_char) {
    guard((), || {
        // SAFETY: guaranteed by the caller.
        if let (Some(k), Some(v)) = (unsafe { text(key) }, unsafe { text(value) }) {
            env::set(&k, &v);
        }
    })
}

/// `skynet_handle_findname`: the handle of a local name (without the dot), 0 if none.
///
/// # Safety
/// `name` null or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn skynet_handle_findname(name: *const c_char) -> u32 {
    if name.is_null() {
        return 0;
    }
    // SAFETY: guaranteed by the caller.
    let name = unsafe { CStr::from_ptr(name) }.to_bytes();
    guard(0, || contexts::handles().find_name(name))
}

/// `skynet_handle_namehandle`: binds a local name; the kept name, or null if taken.
///
/// # Safety
/// `name` null or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn skynet_handle_namehandle(
    handle: u32,
    name: *const c_char,
) -> *const c_char {
    guard(std::ptr::null(), || {
        // SAFETY: guaranteed by the caller.
        let Some(name) = (unsafe { text(name) }) else {
            return std::ptr::null();
        };
        match contexts::handles().bind_name(name.as_bytes(), handle) {
            true => interned(&name),
            false => std::ptr::null(),
        }
    })
}

/// `skynet_handle_grab`: the context of `handle` with a reference taken (release it
/// with `skynet_context_release`), or null.
#[no_mangle]
pub extern "C" fn skynet_handle_grab(handle: u32) -> *const Context {
    guard(std::ptr::null(), || {
        contexts::grab(handle).map_or(std::ptr::null(), Arc::into_raw)
    })
}

/// `skynet_handle_retire`: retires a service; 1 if it was alive.
#[no_mangle]
pub extern "C" fn skynet_handle_retire(handle: u32) -> c_int {
    guard(0, || {
        let alive = contexts::grab(handle).is_some();
        Context::retire(handle);
        alive as c_int
    })
}

/// `skynet_context_grab`: one more reference to `ctx`.
///
/// # Safety
/// `ctx` a live context pointer the core gave out.
#[no_mangle]
pub unsafe extern "C" fn skynet_context_grab(ctx: *const Context) {
    if !ctx.is_null() {
        // SAFETY: `ctx` is the data pointer of a live `Arc<Context>`.
        unsafe { Arc::increment_strong_count(ctx) };
    }
}

/// `skynet_context_reserve`: a reference that does not keep the node running.
///
/// # Safety
/// As [`skynet_context_grab`].
#[no_mangle]
pub unsafe extern "C" fn skynet_context_reserve(ctx: *const Context) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        skynet_context_grab(ctx);
        if let Some(c) = context(ctx) {
            c.reserve();
        }
    }
}

/// `skynet_context_release`: drops a reference taken by grab or reserve.
///
/// # Safety
/// `ctx` a pointer whose reference the caller took and gives back.
#[no_mangle]
pub unsafe extern "C" fn skynet_context_release(ctx: *const Context) {
    if !ctx.is_null() {
        // SAFETY: the caller owns one strong count of this `Arc<Context>`.
        unsafe { Arc::decrement_strong_count(ctx) };
    }
}

/// `skynet_context_handle`.
///
/// # Safety
/// As `context`.
#[no_mangle]
pub unsafe extern "C" fn skynet_context_handle(ctx: *const Context) -> u32 {
    // SAFETY: guaranteed by the caller.
    unsafe { context(ctx) }.map_or(0, |c| c.handle)
}

/// `skynet_context_newsession`.
///
/// # Safety
/// As `context`.
#[no_mangle]
pub unsafe extern "C" fn skynet_context_newsession(ctx: *const Context) -> c_int {
    // SAFETY: guaranteed by the caller.
    unsafe { context(ctx) }.map_or(0, |c| c.new_session())
}

/// `skynet_context_total`: services alive (reserved ones not counted).
#[no_mangle]
pub extern "C" fn skynet_context_total() -> c_int {
    contexts::total() as c_int
}

/// Upstream's `struct skynet_message`: the type rides in the top byte of `sz`.
#[repr(C)]
pub struct RawMessage {
    source: u32,
    session: c_int,
    data: *mut c_void,
    sz: usize,
}

const TYPE_SHIFT: u32 = usize::BITS - 8;

/// `skynet_context_push`: queues a message (its `data` handed over) for `handle`;
/// -1 (nothing freed, as upstream) when the service is gone.
///
/// # Safety
/// `msg` a readable message whose `data` is null or a `malloc` buffer of its size.
#[no_mangle]
pub unsafe extern "C" fn skynet_context_push(handle: u32, msg: *const RawMessage) -> c_int {
    guard(-1, || {
        // SAFETY: guaranteed by the caller.
        let Some(m) = (unsafe { msg.as_ref() }) else {
            return -1;
        };
        let Some(ctx) = contexts::grab(handle) else {
            return -1;
        };
        // SAFETY: the caller hands the buffer over.
        let payload = unsafe { Payload::from_raw(m.data as *mut u8, m.sz & MAX_PAYLOAD) };
        let ptype = (m.sz >> TYPE_SHIFT) as u8;
        ctx.push(Message::new(m.source, m.session, ptype, payload));
        0
    })
}

/// `skynet_context_send`: queues `msg` (handed over) for `ctx` itself, from `source`.
///
/// # Safety
/// `ctx` as in `context`; `msg` null or a `malloc` buffer of `sz` bytes.
#[no_mangle]
pub unsafe extern "C" fn skynet_context_send(
    ctx: *const Context,
    msg: *mut c_void,
    sz: usize,
    source: u32,
    ptype: c_int,
    session: c_int,
) {
    guard((), || {
        // SAFETY: guaranteed by the caller.
        let Some(ctx) = (unsafe { context(ctx) }) else {
            return;
        };
        // SAFETY: the caller hands the buffer over.
        let payload = unsafe { Payload::from_raw(msg as *mut u8, sz & MAX_PAYLOAD) };
        contexts::deliver(
            ctx.handle,
            Message::new(source, session, (ptype & 0xff) as u8, payload),
        );
    })
}

/// `skynet_timeout`: a PTYPE_RESPONSE with `session` for `handle` after `time`
/// centiseconds; the session, or -1 when `time <= 0` and the service is gone.
#[no_mangle]
pub extern "C" fn skynet_timeout(handle: u32, time: c_int, session: c_int) -> c_int {
    guard(-1, || match timer::timeout(handle, session, time as i64) {
        Some(due) => {
            let msg = Message::new(0, due.session, PTYPE_RESPONSE, Payload::NULL);
            match contexts::deliver(due.handle, msg) {
                true => session,
                false => -1,
            }
        }
        None => session,
    })
}

/// `skynet_starttime`: the node's start, in Unix seconds.
#[no_mangle]
pub extern "C" fn skynet_starttime() -> u32 {
    timer::start_time() as u32
}

/// `skynet_thread_time`: this thread's CPU time in microseconds.
#[no_mangle]
pub extern "C" fn skynet_thread_time() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// `skynet_harbor_message_isremote`.
#[no_mangle]
pub extern "C" fn skynet_harbor_message_isremote(handle: u32) -> c_int {
    contexts::handles().is_remote(handle) as c_int
}

/// Upstream's `struct remote_message` (skynet_harbor.h): a destination name or handle,
/// a payload, its size and its type.
#[repr(C)]
pub struct RemoteMessage {
    name: [c_char; harbor::GLOBALNAME_LENGTH],
    handle: u32,
    message: *mut c_void,
    sz: usize,
    ptype: c_int,
}

/// `skynet_harbor_send`: hands a remote message to the harbor service; `rmsg` (a
/// `malloc` block) and its payload are taken over.
///
/// # Safety
/// `rmsg` a `malloc`ed message whose payload is null or a `malloc` buffer of its size.
#[no_mangle]
pub unsafe extern "C" fn skynet_harbor_send(rmsg: *mut RemoteMessage, source: u32, session: c_int) {
    guard((), || {
        // SAFETY: guaranteed by the caller.
        let Some(r) = (unsafe { rmsg.as_ref() }) else {
            return;
        };
        // SAFETY: the payload is handed over with the message.
        let payload = unsafe { Payload::from_raw(r.message as *mut u8, r.sz & MAX_PAYLOAD) };
        let msg = Message::new(source, session, (r.ptype & 0xff) as u8, payload);
        if r.handle != 0 {
            harbor::send_handle(r.handle, msg);
        } else {
            let name: Vec<u8> = r
                .name
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            harbor::send_name(&name, msg);
        }
        // SAFETY: the block came from malloc and is given to us.
        unsafe { libc::free(rmsg as *mut c_void) };
    })
}
