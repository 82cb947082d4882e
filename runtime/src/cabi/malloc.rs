//! `skynet_malloc.h`: the one allocator of payloads. The header maps `skynet_malloc`,
//! `skynet_free` and the rest onto the C library's names, so a module allocates with
//! the process's `malloc`, which is where every payload of this core comes from
//! (`message.rs`): a buffer made in C travels in a message and is freed by Lua or the
//! core, and the other way round. Two functions are real symbols: these.

use super::guard;
use crate::message::{payload_free, payload_from, payload_realloc};
use std::ffi::{c_char, c_void, CStr};

/// `skynet_lalloc`: a Lua allocator (`lua_Alloc` without the `ud`) on the payload heap.
///
/// # Safety
/// `ptr` null or a live block of this allocator, not used after the call.
#[no_mangle]
pub unsafe extern "C" fn skynet_lalloc(
    ptr: *mut c_void,
    _osize: usize,
    nsize: usize,
) -> *mut c_void {
    if nsize == 0 {
        // SAFETY: guaranteed by the caller.
        unsafe { payload_free(ptr as *mut u8) };
        return std::ptr::null_mut();
    }
    // SAFETY: guaranteed by the caller.
    unsafe { payload_realloc(ptr as *mut u8, nsize) as *mut c_void }
}

/// `skynet_strdup`: a `malloc` copy of a string (free it with `skynet_free`).
///
/// # Safety
/// `s` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn skynet_strdup(s: *const c_char) -> *mut c_char {
    if s.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { CStr::from_ptr(s) }.to_bytes_with_nul();
    guard(std::ptr::null_mut(), || payload_from(bytes) as *mut c_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lalloc_grows_keeps_and_frees() {
        // SAFETY: each block comes from the previous call and is used once.
        unsafe {
            let p = skynet_lalloc(std::ptr::null_mut(), 0, 4) as *mut u8;
            p.copy_from(b"abcd".as_ptr(), 4);
            let q = skynet_lalloc(p as *mut c_void, 4, 4096) as *mut u8;
            assert_eq!(std::slice::from_raw_parts(q, 4), b"abcd");
            assert!(skynet_lalloc(q as *mut c_void, 4096, 0).is_null());
        }
    }

    #[test]
    fn strdup_copies_with_its_terminator() {
        // SAFETY: a NUL-terminated literal; the copy is freed once.
        unsafe {
            let p = skynet_strdup(c"skynet".as_ptr());
            assert_eq!(CStr::from_ptr(p), c"skynet");
            payload_free(p as *mut u8);
            assert!(skynet_strdup(std::ptr::null()).is_null());
        }
    }
}
