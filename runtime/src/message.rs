//! Messages and payload buffers.
//!
//! A message is `{source, session, type, payload}`. Payloads cross module boundaries as
//! raw pointers (Lua light userdata): `skynet.pack` allocates one, `send` takes it over,
//! `skynet.trash`, `netpack` and `socketdriver` free them. Every payload in the process
//! therefore comes from one allocator, libc's `malloc`, and this file is the only place
//! that allocates or frees one.

use std::ptr;

/// Message types (`skynet.PTYPE_*`).
pub const PTYPE_TEXT: u8 = 0;
pub const PTYPE_RESPONSE: u8 = 1;
pub const PTYPE_MULTICAST: u8 = 2;
pub const PTYPE_CLIENT: u8 = 3;
pub const PTYPE_SYSTEM: u8 = 4;
pub const PTYPE_HARBOR: u8 = 5;
pub const PTYPE_SOCKET: u8 = 6;
pub const PTYPE_ERROR: u8 = 7;

/// Flag in the type argument of `send`: the payload is handed over, not copied.
pub const PTYPE_TAG_DONTCOPY: i32 = 0x10000;
/// Flag in the type argument of `send`: allocate a new session from the sender.
pub const PTYPE_TAG_ALLOCSESSION: i32 = 0x20000;

/// Allocates a payload buffer of `size` bytes (never null, even for size 0).
pub fn payload_alloc(size: usize) -> *mut u8 {
    // SAFETY: malloc may be called with any size; a null result is turned into an abort
    // below, so callers always get a valid buffer of at least `size` bytes.
    let p = unsafe { libc::malloc(size.max(1)) } as *mut u8;
    if p.is_null() {
        std::alloc::handle_alloc_error(
            std::alloc::Layout::from_size_align(size.max(1), 1)
                .unwrap_or(std::alloc::Layout::new::<u8>()),
        );
    }
    p
}

/// Grows or shrinks a payload buffer (keeps its contents up to the smaller size).
///
/// # Safety
/// `p` must be null or a live buffer from `payload_alloc`/`payload_realloc`; it must not
/// be used after this call.
pub unsafe fn payload_realloc(p: *mut u8, size: usize) -> *mut u8 {
    // SAFETY: the caller hands over a buffer from our allocator (or null).
    let q = unsafe { libc::realloc(p as *mut libc::c_void, size.max(1)) } as *mut u8;
    if q.is_null() {
        std::alloc::handle_alloc_error(std::alloc::Layout::new::<u8>());
    }
    q
}

/// Copies `bytes` into a fresh payload buffer.
pub fn payload_from(bytes: &[u8]) -> *mut u8 {
    let p = payload_alloc(bytes.len());
    // SAFETY: `p` has room for `bytes.len()` bytes and cannot overlap a fresh allocation.
    unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
    p
}

/// Frees a payload buffer.
///
/// # Safety
/// `p` must be null or a live buffer from `payload_alloc`, not freed before and not used
/// afterwards.
pub unsafe fn payload_free(p: *mut u8) {
    // SAFETY: guaranteed by the caller.
    unsafe { libc::free(p as *mut libc::c_void) }
}

/// An owned payload: freed on drop unless taken with [`Payload::into_raw`].
#[derive(Debug)]
pub struct Payload(*mut u8);

// SAFETY: a payload is a plain heap buffer owned by exactly one `Payload` at a time;
// nothing else aliases it while it is owned, so moving it between threads is sound.
unsafe impl Send for Payload {}

impl Payload {
    pub const NULL: Payload = Payload(ptr::null_mut());

    /// Takes ownership of a raw buffer from `payload_alloc` (or null).
    ///
    /// # Safety
    /// `p` must be null or a live buffer from `payload_alloc` that nobody else frees.
    pub unsafe fn from_raw(p: *mut u8) -> Payload {
        Payload(p)
    }

    pub fn copy_of(bytes: &[u8]) -> Payload {
        Payload(payload_from(bytes))
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.0
    }

    pub fn is_null(&self) -> bool {
        self.0.is_null()
    }

    /// Gives up ownership; the caller must free the buffer.
    pub fn into_raw(mut self) -> *mut u8 {
        std::mem::replace(&mut self.0, ptr::null_mut())
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a non-null `Payload` owns a live buffer from `payload_alloc`.
            unsafe { payload_free(self.0) }
        }
    }
}

/// One message in a service queue.
#[derive(Debug)]
pub struct Message {
    pub source: u32,
    pub session: i32,
    pub ptype: u8,
    pub data: Payload,
    pub size: usize,
}

impl Message {
    /// The payload bytes (empty for a null payload).
    pub fn bytes(&self) -> &[u8] {
        if self.data.is_null() || self.size == 0 {
            &[]
        } else {
            // SAFETY: a non-null payload owns at least `size` initialised bytes, and the
            // borrow of `self` keeps it alive and unfreed for the slice's lifetime.
            unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.size) }
        }
    }
}
