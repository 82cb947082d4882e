//! Messages and payload buffers: the bottom of the core, knowing nothing above it.
//!
//! A message is `{source, session, type, payload}`. Payloads cross module boundaries as
//! raw pointers (Lua light userdata): `skynet.pack` allocates one, `send` takes it over,
//! `skynet.trash`, `netpack` and `socketdriver` free them. Every payload in the process
//! therefore comes from one allocator, libc's `malloc`, and this file is the only place
//! that allocates or frees one.
//!
//! A [`Payload`] is an owned buffer with its length. A queued [`Message`] is 24 bytes, as
//! upstream's `skynet_message`: the type rides in the top byte of the length word, which
//! no real buffer reaches (a length needs at most 48 bits of address space).

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

/// The largest payload a message carries (upstream's `MESSAGE_TYPE_MASK`).
pub const MAX_PAYLOAD: usize = (1usize << TYPE_SHIFT) - 1;
/// Where the type sits in a queued message's length word (upstream's
/// `MESSAGE_TYPE_SHIFT`).
pub const TYPE_SHIFT: u32 = usize::BITS - 8;

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

/// An owned payload buffer and its length: freed on drop unless taken with
/// [`Payload::into_raw`]. A null payload has length 0.
#[derive(Debug)]
pub struct Payload {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: a payload is a plain heap buffer owned by exactly one `Payload` at a time;
// nothing else aliases it while it is owned, so moving it between threads is sound.
unsafe impl Send for Payload {}

impl Payload {
    pub const NULL: Payload = Payload {
        ptr: ptr::null_mut(),
        len: 0,
    };

    /// Takes ownership of a raw buffer of `len` bytes from `payload_alloc` (or null).
    ///
    /// # Safety
    /// `p` must be null or a live buffer from `payload_alloc` of at least `len`
    /// initialised bytes that nobody else frees.
    pub unsafe fn from_raw(p: *mut u8, len: usize) -> Payload {
        Payload {
            ptr: p,
            len: if p.is_null() { 0 } else { len },
        }
    }

    /// A fresh buffer holding a copy of `bytes` (not null, even for no bytes).
    pub fn copy_of(bytes: &[u8]) -> Payload {
        Payload {
            ptr: payload_from(bytes),
            len: bytes.len(),
        }
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_null(&self) -> bool {
        self.ptr.is_null()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The payload bytes (empty for a null payload).
    pub fn bytes(&self) -> &[u8] {
        if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            // SAFETY: a non-null payload owns at least `len` initialised bytes, and the
            // borrow of `self` keeps it alive and unfreed for the slice's lifetime.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    /// Gives up ownership; the caller must free the buffer.
    pub fn into_raw(self) -> *mut u8 {
        let p = self.ptr;
        std::mem::forget(self);
        p
    }
}

impl Drop for Payload {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: a non-null `Payload` owns a live buffer from `payload_alloc`.
            unsafe { payload_free(self.ptr) }
        }
    }
}

/// One message in a service queue; owns its payload.
#[derive(Debug)]
pub struct Message {
    pub source: u32,
    pub session: i32,
    data: *mut u8,
    /// Payload length, with the type in the top byte.
    sz: usize,
}

// SAFETY: as `Payload`: the message is the one owner of its buffer.
unsafe impl Send for Message {}

impl Message {
    /// A message of `ptype` carrying `payload`. A payload longer than [`MAX_PAYLOAD`]
    /// cannot exist (the address space is smaller); `send` refuses such lengths before
    /// a message is made.
    pub fn new(source: u32, session: i32, ptype: u8, payload: Payload) -> Message {
        let len = payload.len();
        debug_assert!(len <= MAX_PAYLOAD);
        Message {
            source,
            session,
            data: payload.into_raw(),
            sz: (len & MAX_PAYLOAD) | (ptype as usize) << TYPE_SHIFT,
        }
    }

    pub fn ptype(&self) -> u8 {
        (self.sz >> TYPE_SHIFT) as u8
    }

    /// The payload length.
    pub fn len(&self) -> usize {
        self.sz & MAX_PAYLOAD
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload pointer (null for none); the message still owns it.
    pub fn data(&self) -> *mut u8 {
        self.data
    }

    /// The payload bytes (empty for a null payload).
    pub fn bytes(&self) -> &[u8] {
        if self.data.is_null() || self.is_empty() {
            &[]
        } else {
            // SAFETY: a non-null message payload holds at least `len` initialised bytes,
            // and the borrow of `self` keeps it alive for the slice's lifetime.
            unsafe { std::slice::from_raw_parts(self.data, self.len()) }
        }
    }

    /// Takes the payload out of the message.
    pub fn into_payload(self) -> Payload {
        // SAFETY: the message owned this buffer of `len` bytes; forgetting the message
        // below hands that ownership over to the payload alone.
        let payload = unsafe { Payload::from_raw(self.data, self.len()) };
        std::mem::forget(self);
        payload
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        if !self.data.is_null() {
            // SAFETY: a non-null message owns a live buffer from `payload_alloc`.
            unsafe { payload_free(self.data) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queued_message_is_as_small_as_upstreams() {
        assert_eq!(std::mem::size_of::<Message>(), 24);
        assert_eq!(std::mem::size_of::<Payload>(), 16);
    }

    #[test]
    fn type_and_length_share_a_word() {
        let m = Message::new(1, -2, PTYPE_ERROR, Payload::copy_of(b"hello"));
        assert_eq!(
            (m.source, m.session, m.ptype(), m.len()),
            (1, -2, PTYPE_ERROR, 5)
        );
        assert_eq!(m.bytes(), b"hello");
        let p = m.into_payload();
        assert_eq!(p.bytes(), b"hello");
        let m = Message::new(0, 0, 255, Payload::NULL);
        assert_eq!((m.ptype(), m.len(), m.bytes()), (255, 0, &b""[..]));
        assert!(m.data().is_null());
    }
}
