//! The skynet C API, exported from the binary for C modules: a `cservice/*.so` built
//! against `skynet.h` and a `luaclib/*.so` that calls `skynet_*` find these functions in
//! the executable at `dlopen` (the build script links with `--export-dynamic`, as
//! upstream links with `-Wl,-E`). The Lua C API needs nothing here: the vendored Lua's
//! own `lua_*`/`luaL_*`/`luaopen_*` are exported the same way.
//!
//! One file per public header: `skynet.rs` (skynet.h), `malloc.rs` (skynet_malloc.h),
//! `socket.rs` (skynet_socket.h), and `server.rs` for the env, handle, timer, context
//! and harbor calls upstream's own modules use (skynet_env.h ... skynet_harbor.h). Each function is a thin wrapper
//! over the core function Lua reaches through `skynet.core` or `socketdriver`; the hot
//! path does not go through here. `skynet_error` is printf-style, which stable Rust
//! cannot define: `error.c` formats it and hands the line to [`skynet::skynet_error_line`].
//!
//! Nothing unwinds into C: every function that calls into the core runs its body under
//! `guard`, which turns a panic into the function's failure value; the few without
//! one only read atomics, the clock or their arguments, and `lalloc`/`strdup` abort on
//! a failed allocation rather than unwind (and an `extern "C"` function aborts the
//! process on a panic that would leave it).

pub mod malloc;
pub mod server;
pub mod skynet;
pub mod socket;

use crate::context::Context;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `body`, or returns `failed` if it panics (a panic must not cross into C).
fn guard<R>(failed: R, body: impl FnOnce() -> R) -> R {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(failed)
}

/// The context behind a `struct skynet_context *` that the core handed to C.
///
/// # Safety
/// `ctx` must be null or a pointer the core gave out (`Arc::as_ptr` of a live context,
/// as in a C service's init and callback, or the registry's `skynet_context`).
unsafe fn context<'a>(ctx: *const Context) -> Option<&'a Context> {
    // SAFETY: guaranteed by the caller; a context outlives every call its service makes.
    unsafe { ctx.as_ref() }
}

/// A C string argument as text (lossy for invalid UTF-8); None for null.
///
/// # Safety
/// `s` must be null or a NUL-terminated string alive for `'a`.
unsafe fn text<'a>(s: *const c_char) -> Option<std::borrow::Cow<'a, str>> {
    if s.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    Some(unsafe { CStr::from_ptr(s) }.to_string_lossy())
}
