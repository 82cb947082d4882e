//! The core's own calls that upstream's C modules make beyond `skynet.h`, one group a
//! header: the environment (`skynet_env.h`), handles and local names
//! (`skynet_handle.h`), timeouts and clocks (`skynet_timer.h`), contexts
//! (`skynet_server.h`) and the harbor (`skynet_harbor.h`).
//!
//! A `struct skynet_context *` is the address of a [`Context`] inside its `Arc`, so
//! `skynet_context_grab`/`_release` are the `Arc`'s own counts.

use super::{context, guard, text};
use crate::context::{self as contexts, Context};
use crate::message::{Message, Payload, MAX_PAYLOAD, PTYPE_RESPONSE, TYPE_SHIFT};
use crate::{env, harbor, timer};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::{Arc, LazyLock};

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
