//! `skynet.h`: logging, text commands, names, sending, the callback of a C service and
//! time.
//!
//! A `struct skynet_context *` given to C is the address of the service's [`Context`]
//! inside its `Arc`: a C service gets it in `init`, a Lua C module from the registry's
//! `skynet_context`.
//!
//! The callback of a C service lives in a [`CallbackSlot`] that the service loader
//! registers under the handle before `init` runs, not in the service itself: a service
//! calls `skynet_callback` from `init`, before the core holds its instance, and from
//! the callback, while the core holds the instance's lock.

use super::{context, guard, text};
use crate::context::{self as contexts, Context};
use crate::handle::HANDLE_REMOTE_SHIFT;
use crate::message::{Message, Payload, MAX_PAYLOAD, PTYPE_TAG_ALLOCSESSION, PTYPE_TAG_DONTCOPY};
use crate::send::{self, Destination, SendError};
use crate::{command, logging, memory, timer};
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
