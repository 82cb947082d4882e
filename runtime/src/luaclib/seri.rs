//! `skynet.pack`, `skynet.unpack` and `skynet.packstring`: the lua-seri byte format.
//!
//! Every `"lua"` protocol message goes through this module, so both directions work in a
//! single pass without per-value allocation. Encoding walks the Lua values on the stack and
//! appends their tagged form to one growable buffer that comes from the payload allocator,
//! so `pack` can hand the buffer to the caller as is (no final copy). Lua errors unwind with
//! `longjmp`, which must never skip a Rust destructor, so the encoder and decoder are built
//! from types without `Drop` and report failures as values: the extern functions free what
//! they own and only then raise. The only Lua code the encoder runs (`__pairs` metamethods
//! and their iterators) runs under `lua_pcall`; its error value is re-raised untouched. The
//! decoder reads from a borrowed slice and pushes values directly; the errors the Lua API
//! itself may raise while it does so (a NaN table key, memory) cross only plain frames.
//! The wire format is described in the project's `seri.md` spec.

use crate::lua::raise::{raise, try_push_bytes, Raise};
use crate::lua::stack::{push_bytes, to_bytes};
use crate::message::{payload_alloc, payload_free, payload_from, payload_realloc};
use mlua::ffi::{self, lua_State};
use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr};
use std::{fmt, mem, ptr, slice};

// Value kinds: the low three bits of every tag byte. The high five bits are the "cookie".
const TYPE_NIL: u8 = 0;
const TYPE_BOOLEAN: u8 = 1;
const TYPE_NUMBER: u8 = 2;
const TYPE_USERDATA: u8 = 3;
const TYPE_SHORT_STRING: u8 = 4;
const TYPE_LONG_STRING: u8 = 5;
const TYPE_TABLE: u8 = 6;

// Cookies of number tags: which payload follows.
const NUMBER_ZERO: u8 = 0;
const NUMBER_BYTE: u8 = 1;
const NUMBER_WORD: u8 = 2;
const NUMBER_DWORD: u8 = 4;
const NUMBER_QWORD: u8 = 6;
const NUMBER_REAL: u8 = 8;

/// Table cookie meaning "the array size follows as a number"; smaller cookies are the size.
const ARRAY_SIZE_FOLLOWS: u8 = 31;
/// Strings shorter than this carry their length in the cookie.
const SHORT_STRING_LIMIT: usize = 32;
/// Deepest level whose values may still be encoded (the arguments are level 0).
const MAX_DEPTH: u32 = 32;
/// The encoder never nests more than 33 tables; the decoder allows far more (another
/// encoder might), but not so many that a hostile stream could exhaust the native stack
/// through the recursion below.
const MAX_DECODE_DEPTH: u32 = 1000;
/// Most messages are a few scalars; the encoding buffer starts with room for them.
const INITIAL_CAPACITY: usize = 128;
/// A thread keeps its encoding buffer for the next pack up to this size.
const SCRATCH_KEEP: usize = 64 * 1024;
/// Encodings up to this size are copied out of the thread's buffer at their exact size;
/// a larger one takes the buffer itself: copying or trimming it costs more than its slack
/// (less than its size) saves.
const COPY_LIMIT: usize = 4096;

// Upstream reports the C source line of the check that rejected a stream. Lua code only
// looks at the message prefix, but keeping the same numbers keeps logs comparable.
const AT_BYTE: u32 = 378;
const AT_WORD: u32 = 386;
const AT_DWORD: u32 = 394;
const AT_QWORD: u32 = 402;
const AT_NUMBER_COOKIE: u32 = 407;
const AT_REAL: u32 = 417;
const AT_POINTER: u32 = 427;
const AT_STRING_BODY: u32 = 437;
const AT_ARRAY_SIZE_TAG: u32 = 450;
const AT_ARRAY_SIZE_KIND: u32 = 455;
/// Where upstream grows the Lua stack for a nested table: the check a too-deep stream
/// would eventually fail there is the one our depth limit replaces.
const AT_TABLE_DEPTH: u32 = 459;
const AT_LENGTH16: u32 = 503;
const AT_STRING_COOKIE: u32 = 510;
const AT_LENGTH32: u32 = 514;
const AT_KIND: u32 = 527;
const AT_TAG: u32 = 538;

const fn tag(kind: u8, cookie: u8) -> u8 {
    kind | (cookie << 3)
}

thread_local! {
    /// The thread's encoding buffer between packs (null while a pack holds it). A value
    /// list is encoded there and copied out at its exact size, as upstream encodes into
    /// a block on its stack: a queued message then costs its size, not the buffer's.
    static SCRATCH: Cell<(*mut u8, usize)> = const { Cell::new((ptr::null_mut(), 0)) };
}

/// Growable buffer in payload memory. It has no `Drop` on purpose: it lives in frames a
/// Lua error could `longjmp` across, so every owner frees it explicitly on its way out.
struct RawBuf {
    ptr: *mut u8,
    len: usize,
    cap: usize,
}

impl RawBuf {
    /// The thread's scratch buffer, or a new one when a pack nested in `__pairs` holds it.
    fn new() -> RawBuf {
        let (ptr, cap) = SCRATCH.with(|s| s.replace((ptr::null_mut(), 0)));
        if ptr.is_null() {
            return RawBuf {
                ptr: payload_alloc(INITIAL_CAPACITY),
                len: 0,
                cap: INITIAL_CAPACITY,
            };
        }
        RawBuf { ptr, len: 0, cap }
    }

    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        if self.cap - self.len < bytes.len() {
            self.grow(bytes.len());
        }
        // SAFETY: `ptr` owns `cap` bytes and `cap - len >= bytes.len()` now holds; a slice
        // borrowed from elsewhere cannot overlap our exclusively owned buffer.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(self.len), bytes.len()) };
        self.len += bytes.len();
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, extra: usize) {
        // Doubling keeps the number of reallocations logarithmic in the message size; a
        // saturated size simply makes the allocator fail, which aborts.
        let cap = self
            .len
            .saturating_add(extra)
            .max(self.cap.saturating_mul(2));
        // SAFETY: `ptr` is our live payload buffer and is replaced by the result at once.
        self.ptr = unsafe { payload_realloc(self.ptr, cap) };
        self.cap = cap;
    }

    fn as_bytes(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of the live buffer have been written by `put`.
        unsafe { slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Releases the buffer: back to the thread for the next pack, or to the allocator.
    fn free(self) {
        let keep = self.cap <= SCRATCH_KEEP
            && SCRATCH.with(|s| {
                let empty = s.get().0.is_null();
                if empty {
                    s.set((self.ptr, self.cap));
                }
                empty
            });
        if !keep {
            // SAFETY: the buffer came from `payload_alloc`/`payload_realloc` and `self`
            // is consumed, so nothing can use it afterwards.
            unsafe { payload_free(self.ptr) }
        }
    }
}

/// An encoded value list in a payload buffer; freed on drop unless taken with
/// [`Packed::into_raw`] (which is how `pack` hands it to Lua and `send` takes it over).
pub struct Packed(RawBuf);

impl Packed {
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub fn len(&self) -> usize {
        self.0.len
    }

    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// The encoding in a payload buffer of its exact size (never null, even when empty)
    /// and that size. The caller must release it with `payload_free`.
    pub fn into_raw(self) -> (*mut u8, usize) {
        let len = self.0.len;
        if len <= COPY_LIMIT {
            return (payload_from(self.0.as_bytes()), len);
        }
        (self.into_buf().ptr, len)
    }

    /// Gives up the encoding buffer itself, which has no destructor: the caller releases
    /// it with [`RawBuf::free`].
    fn into_buf(self) -> RawBuf {
        mem::ManuallyDrop::new(self).buf()
    }

    /// The encoding buffer's fields; whoever calls this frees the buffer exactly once.
    fn buf(&self) -> RawBuf {
        RawBuf {
            ptr: self.0.ptr,
            len: self.0.len,
            cap: self.0.cap,
        }
    }
}

impl Drop for Packed {
    fn drop(&mut self) {
        self.buf().free();
    }
}

/// Why [`pack_values`] failed. `pack_error` turns it into the Lua error upstream
/// raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackError {
    /// A value sits deeper than the nesting limit.
    TooDeep,
    /// A value of this Lua type (function, full userdata, thread) was met.
    Unsupported(c_int),
    /// A string too long for the 32-bit length field.
    StringTooLong,
    /// The Lua stack could not grow.
    StackExhausted,
    /// A `__pairs` metamethod or its iterator raised; the error value is on top of the stack.
    Thrown,
}

struct Encoder {
    l: *mut lua_State,
    out: RawBuf,
}

impl Encoder {
    /// Encodes the value at absolute index `idx`, found at nesting level `depth`.
    ///
    /// # Safety
    /// `idx` must be a valid absolute index. Scalars push nothing; tables reserve the
    /// stack space they use.
    unsafe fn value(&mut self, idx: c_int, depth: u32) -> Result<(), PackError> {
        if depth > MAX_DEPTH {
            return Err(PackError::TooDeep);
        }
        let l = self.l;
        // SAFETY: `idx` is valid (caller contract); none of these reads can raise.
        match unsafe { ffi::lua_type(l, idx) } {
            ffi::LUA_TNIL => self.out.put(&[tag(TYPE_NIL, 0)]),
            ffi::LUA_TBOOLEAN => {
                // SAFETY: as above.
                let truth = unsafe { ffi::lua_toboolean(l, idx) } != 0;
                self.out.put(&[tag(TYPE_BOOLEAN, u8::from(truth))]);
            }
            ffi::LUA_TNUMBER => {
                // SAFETY: as above. The subtype must be asked first: `lua_tointegerx` also
                // accepts floats with an integral value, and `1.0` must stay a float.
                unsafe {
                    if ffi::lua_isinteger(l, idx) != 0 {
                        self.integer(ffi::lua_tointegerx(l, idx, ptr::null_mut()));
                    } else {
                        self.real(ffi::lua_tonumberx(l, idx, ptr::null_mut()));
                    }
                }
            }
            ffi::LUA_TSTRING => {
                // SAFETY: the value is a string, so it is read in place (never converted,
                // which matters for keys during `lua_next`) and stays alive on the stack
                // while we copy it.
                let bytes = unsafe { to_bytes(l, idx) }.unwrap_or_default();
                self.string(bytes)?;
            }
            ffi::LUA_TLIGHTUSERDATA => {
                // SAFETY: as above.
                let p = unsafe { ffi::lua_touserdata(l, idx) };
                let mut bytes = [tag(TYPE_USERDATA, 0); 1 + mem::size_of::<usize>()];
                bytes[1..].copy_from_slice(&p.expose_provenance().to_le_bytes());
                self.out.put(&bytes);
            }
            // SAFETY: the caller's contract is passed on.
            ffi::LUA_TTABLE => return unsafe { self.table(idx, depth + 1) },
            other => return Err(PackError::Unsupported(other)),
        }
        Ok(())
    }

    fn integer(&mut self, v: i64) {
        let mut bytes = [0u8; 9];
        let len = if v == 0 {
            bytes[0] = tag(TYPE_NUMBER, NUMBER_ZERO);
            1
        } else if let Ok(small) = i32::try_from(v) {
            if small < 0 {
                bytes[0] = tag(TYPE_NUMBER, NUMBER_DWORD);
                bytes[1..5].copy_from_slice(&small.to_le_bytes());
                5
            } else if let Ok(b) = u8::try_from(small) {
                bytes[0] = tag(TYPE_NUMBER, NUMBER_BYTE);
                bytes[1] = b;
                2
            } else if let Ok(w) = u16::try_from(small) {
                bytes[0] = tag(TYPE_NUMBER, NUMBER_WORD);
                bytes[1..3].copy_from_slice(&w.to_le_bytes());
                3
            } else {
                bytes[0] = tag(TYPE_NUMBER, NUMBER_DWORD);
                bytes[1..5].copy_from_slice(&small.to_le_bytes());
                5
            }
        } else {
            bytes[0] = tag(TYPE_NUMBER, NUMBER_QWORD);
            bytes[1..9].copy_from_slice(&v.to_le_bytes());
            9
        };
        self.out.put(&bytes[..len]);
    }

    fn real(&mut self, v: f64) {
        let mut bytes = [tag(TYPE_NUMBER, NUMBER_REAL); 9];
        bytes[1..].copy_from_slice(&v.to_le_bytes());
        self.out.put(&bytes);
    }

    fn string(&mut self, s: &[u8]) -> Result<(), PackError> {
        let len = s.len();
        if len < SHORT_STRING_LIMIT {
            self.out.put(&[tag(TYPE_SHORT_STRING, len as u8)]);
        } else if let Ok(len16) = u16::try_from(len) {
            let [a, b] = len16.to_le_bytes();
            self.out.put(&[tag(TYPE_LONG_STRING, 2), a, b]);
        } else if let Ok(len32) = u32::try_from(len) {
            let [a, b, c, d] = len32.to_le_bytes();
            self.out.put(&[tag(TYPE_LONG_STRING, 4), a, b, c, d]);
        } else {
            return Err(PackError::StringTooLong);
        }
        self.out.put(s);
        Ok(())
    }

    /// Encodes the table at absolute index `idx`; its contents are at level `depth`.
    ///
    /// # Safety
    /// `idx` must be the absolute index of a table.
    unsafe fn table(&mut self, idx: c_int, depth: u32) -> Result<(), PackError> {
        let l = self.l;
        // SAFETY: growing the stack reports failure instead of raising. Everything below
        // pushes at most six slots on top of this reserve before recursing, and every
        // nested table reserves again.
        if unsafe { ffi::lua_checkstack(l, ffi::LUA_MINSTACK) } == 0 {
            return Err(PackError::StackExhausted);
        }
        // SAFETY: the lookup is raw (no metamethod runs, nothing raises); it pushes the
        // field when it is not nil, which is what `pairs_table` expects.
        if unsafe { ffi::luaL_getmetafield(l, idx, c"__pairs".as_ptr()) } != ffi::LUA_TNIL {
            // SAFETY: `idx` is a table and `__pairs` is on top.
            return unsafe { self.pairs_table(idx, depth) };
        }

        // SAFETY: `idx` is a table; the raw length never runs Lua code.
        let n = unsafe { ffi::lua_rawlen(l, idx) };
        match u8::try_from(n) {
            Ok(small) if small < ARRAY_SIZE_FOLLOWS => self.out.put(&[tag(TYPE_TABLE, small)]),
            _ => {
                self.out.put(&[tag(TYPE_TABLE, ARRAY_SIZE_FOLLOWS)]);
                self.integer(n as i64);
            }
        }
        for i in 1..=n {
            // SAFETY: raw access runs no metamethod; the reserve above has room for it.
            let top = unsafe {
                ffi::lua_rawgeti(l, idx, i as ffi::lua_Integer);
                ffi::lua_gettop(l)
            };
            // SAFETY: `top` holds the element just pushed. On failure the stack is left
            // alone so a thrown error value stays on top.
            unsafe { self.value(top, depth) }?;
            // SAFETY: pops the element pushed above.
            unsafe { ffi::lua_pop(l, 1) };
        }

        // SAFETY: starts a raw traversal with a nil key; room was reserved above.
        unsafe { ffi::lua_pushnil(l) };
        // SAFETY: keys are never converted in place, so `lua_next` finds the key it
        // returned last. Only a nested `__pairs` function mutating this table (undefined
        // behaviour for Lua's `next` too) could make it raise, and the frames that error
        // would cross own nothing with a destructor: the buffer would just leak.
        while unsafe { ffi::lua_next(l, idx) } != 0 {
            // SAFETY: `lua_next` pushed a key and a value; reading them cannot raise.
            let (top, skip) = unsafe {
                let top = ffi::lua_gettop(l);
                let skip = ffi::lua_isinteger(l, top - 1) != 0 && {
                    let k = ffi::lua_tointegerx(l, top - 1, ptr::null_mut());
                    // The array part above already covers these keys.
                    k >= 1 && k as u64 <= n as u64
                };
                (top, skip)
            };
            if !skip {
                // SAFETY: both slots are valid; see the array loop for failures.
                unsafe {
                    self.value(top - 1, depth)?;
                    self.value(top, depth)?;
                }
            }
            // SAFETY: drops the value and keeps the key for the next step.
            unsafe { ffi::lua_pop(l, 1) };
        }
        self.out.put(&[tag(TYPE_NIL, 0)]);
        Ok(())
    }

    /// Encodes a table through its `__pairs` metamethod, which is on top of the stack.
    ///
    /// # Safety
    /// `idx` must be the absolute index of a table, with `__pairs` pushed above it and the
    /// stack reserve of [`Encoder::table`] available.
    unsafe fn pairs_table(&mut self, idx: c_int, depth: u32) -> Result<(), PackError> {
        let l = self.l;
        // The receiver sees a plain table: no array part, only the pairs the iterator yields.
        self.out.put(&[tag(TYPE_TABLE, 0)]);
        // SAFETY: calls `__pairs(t)` in protected mode, so a Lua error comes back as a
        // status with the error value on top instead of unwinding through this frame.
        if unsafe {
            ffi::lua_pushvalue(l, idx);
            ffi::lua_pcall(l, 1, 3, 0)
        } != ffi::LUA_OK
        {
            return Err(PackError::Thrown);
        }
        // The stack now ends with the generic-for triple: iterator, state, control.
        // SAFETY: reading the stack height cannot fail.
        let control = unsafe { ffi::lua_gettop(l) };
        loop {
            // SAFETY: calls `iterator(state, control)` protected, as above. The three
            // copies and the two results fit in the reserve.
            if unsafe {
                ffi::lua_pushvalue(l, control - 2);
                ffi::lua_pushvalue(l, control - 1);
                ffi::lua_pushvalue(l, control);
                ffi::lua_pcall(l, 2, 2, 0)
            } != ffi::LUA_OK
            {
                return Err(PackError::Thrown);
            }
            // SAFETY: the key and value sit at `control + 1` and `control + 2`.
            if unsafe { ffi::lua_type(l, control + 1) } == ffi::LUA_TNIL {
                break;
            }
            // SAFETY: both slots are valid; on failure the stack is left alone.
            unsafe {
                self.value(control + 1, depth)?;
                self.value(control + 2, depth)?;
            }
            // SAFETY: the key becomes the next control value, as in a generic `for`.
            unsafe {
                ffi::lua_settop(l, control + 1);
                ffi::lua_replace(l, control);
            }
        }
        // SAFETY: removes the triple and the final key/value pair.
        unsafe { ffi::lua_settop(l, control - 3) };
        self.out.put(&[tag(TYPE_NIL, 0)]);
        Ok(())
    }
}

/// Encodes the values at stack slots `first..=last` (absolute indices; an empty range
/// gives an empty buffer).
///
/// On success the stack is unchanged. On failure it is back to its height on entry, except
/// that for [`PackError::Thrown`] the error value is pushed on top of it.
///
/// # Safety
/// `l` must be a valid Lua state inside a protected call (Lua code may run through
/// `__pairs`), and `first..=last` must be valid stack slots.
pub unsafe fn pack_values(
    l: *mut lua_State,
    first: c_int,
    last: c_int,
) -> Result<Packed, PackError> {
    // SAFETY: reading the stack height cannot fail.
    let entry_top = unsafe { ffi::lua_gettop(l) };
    let mut enc = Encoder {
        l,
        out: RawBuf::new(),
    };
    let mut outcome = Ok(());
    for idx in first..=last {
        // SAFETY: the caller guarantees that the slot is valid.
        outcome = unsafe { enc.value(idx, 0) };
        if outcome.is_err() {
            break;
        }
    }
    match outcome {
        Ok(()) => Ok(Packed(enc.out)),
        Err(err) => {
            enc.out.free();
            // SAFETY: every slot between `entry_top` and the top was pushed by the
            // encoder; for a thrown error the value on top is kept just above them.
            unsafe {
                if err == PackError::Thrown {
                    ffi::lua_copy(l, -1, entry_top + 1);
                    ffi::lua_settop(l, entry_top + 1);
                } else {
                    ffi::lua_settop(l, entry_top);
                }
            }
            Err(err)
        }
    }
}

/// The Lua error upstream raises for `err`.
///
/// # Safety
/// `l` must be a valid Lua state with a free stack slot (as [`pack_values`] leaves it in
/// a C function); for [`PackError::Thrown`] the error value must be on top of the stack.
unsafe fn pack_error(l: *mut lua_State, err: PackError) -> Raise {
    match err {
        PackError::TooDeep => raise!("serialize can't pack too depth table"),
        PackError::StringTooLong => raise!("serialize can't pack too long string"),
        PackError::Unsupported(kind) => {
            // SAFETY: lua_typename returns a static C string for every type tag.
            let name = unsafe { CStr::from_ptr(ffi::lua_typename(l, kind)) };
            raise!("Unsupport type {} to serialize", name.to_string_lossy())
        }
        PackError::StackExhausted => {
            // SAFETY: upstream raises this exact text without a position prefix; the
            // stack has room for it (caller contract).
            unsafe { ffi::lua_pushstring(l, c"out of memory".as_ptr()) };
            Raise::Top
        }
        // The original error value, whatever its type, is already on top.
        PackError::Thrown => Raise::Top,
    }
}

/// `skynet.pack(...)`: returns a payload buffer (light userdata, owned by the caller) and
/// its size.
///
/// # Safety
/// Called by Lua as a C function.
pub unsafe extern "C-unwind" fn pack(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls us with a valid state whose arguments occupy 1..=top.
    let top = unsafe { ffi::lua_gettop(l) };
    // SAFETY: as above.
    let err = match unsafe { pack_values(l, 1, top) } {
        Ok(packed) => {
            let (data, size) = packed.into_raw();
            // SAFETY: the encoder left the stack as it found it, and a C function starts
            // with LUA_MINSTACK free slots; pushing these cannot raise.
            unsafe {
                ffi::lua_pushlightuserdata(l, data.cast::<c_void>());
                ffi::lua_pushinteger(l, size as ffi::lua_Integer);
            }
            return 2;
        }
        Err(err) => err,
    };
    // SAFETY: the buffer is already freed and `err` is plain data: this frame owns
    // nothing.
    unsafe { pack_error(l, err).raise(l) }
}

/// `skynet.packstring(...)`: the bytes `pack` would produce, as a Lua string.
///
/// # Safety
/// Called by Lua as a C function.
pub unsafe extern "C-unwind" fn packstring(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls us with a valid state whose arguments occupy 1..=top.
    let top = unsafe { ffi::lua_gettop(l) };
    // SAFETY: as above.
    let err = match unsafe { pack_values(l, 1, top) } {
        Ok(packed) => {
            // Taken out of `Packed`: this frame must own nothing when it raises.
            let buf = packed.into_buf();
            // SAFETY: Lua copies the encoded bytes without raising.
            let pushed = unsafe { try_push_bytes(l, buf.as_bytes()) };
            buf.free();
            match pushed {
                Ok(()) => return 1,
                Err(err) => err,
            }
        }
        // SAFETY: see `pack_error`.
        Err(err) => unsafe { pack_error(l, err) },
    };
    // SAFETY: the buffer is already freed and `err` is plain data: this frame owns
    // nothing.
    unsafe { err.raise(l) }
}

/// A malformed stream: `remaining` bytes were left unread where decoding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamError {
    pub remaining: usize,
    /// Upstream's source line for the same check (informational only).
    pub line: u32,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Invalid serialize stream {} (line:{})",
            self.remaining, self.line
        )
    }
}

struct Decoder<'a> {
    l: *mut lua_State,
    data: &'a [u8],
    pos: usize,
    /// Scanned at the stream's first table, so a message without tables (most of them)
    /// pays nothing for it.
    sizes: Option<HashSizes>,
}

impl<'a> Decoder<'a> {
    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    /// Consumes `n` bytes; a short read consumes nothing, like upstream's reader.
    #[inline]
    fn take(&mut self, n: usize, line: u32) -> Result<&'a [u8], StreamError> {
        let rest = self.rest();
        match rest.get(..n) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(StreamError {
                remaining: rest.len(),
                line,
            }),
        }
    }

    #[inline]
    fn fixed<const N: usize>(&mut self, line: u32) -> Result<[u8; N], StreamError> {
        let bytes = self.take(N, line)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn invalid(&self, line: u32) -> StreamError {
        StreamError {
            remaining: self.rest().len(),
            line,
        }
    }

    fn integer(&mut self, cookie: u8) -> Result<i64, StreamError> {
        Ok(match cookie {
            NUMBER_ZERO => 0,
            NUMBER_BYTE => i64::from(self.fixed::<1>(AT_BYTE)?[0]),
            NUMBER_WORD => i64::from(u16::from_le_bytes(self.fixed(AT_WORD)?)),
            NUMBER_DWORD => i64::from(i32::from_le_bytes(self.fixed(AT_DWORD)?)),
            NUMBER_QWORD => i64::from_le_bytes(self.fixed(AT_QWORD)?),
            _ => return Err(self.invalid(AT_NUMBER_COOKIE)),
        })
    }

    /// Decodes one value and pushes it.
    ///
    /// # Safety
    /// The stack must have room for one slot.
    unsafe fn value(&mut self, depth: u32) -> Result<(), StreamError> {
        let t = self.fixed::<1>(AT_TAG)?[0];
        // SAFETY: passed on from the caller.
        unsafe { self.push(t, depth) }
    }

    /// Decodes the value introduced by tag `t` (already consumed) and pushes it.
    ///
    /// # Safety
    /// As [`Decoder::value`].
    unsafe fn push(&mut self, t: u8, depth: u32) -> Result<(), StreamError> {
        let l = self.l;
        let cookie = t >> 3;
        // SAFETY (all pushes below): the caller reserved the slot. Lua copies string
        // bytes, so nothing keeps borrowing `data` afterwards.
        match t & 7 {
            TYPE_NIL => unsafe { ffi::lua_pushnil(l) },
            // SAFETY: see above.
            TYPE_BOOLEAN => unsafe { ffi::lua_pushboolean(l, c_int::from(cookie != 0)) },
            TYPE_NUMBER if cookie == NUMBER_REAL => {
                let v = f64::from_le_bytes(self.fixed(AT_REAL)?);
                // SAFETY: see above.
                unsafe { ffi::lua_pushnumber(l, v) }
            }
            TYPE_NUMBER => {
                let v = self.integer(cookie)?;
                // SAFETY: see above.
                unsafe { ffi::lua_pushinteger(l, v) }
            }
            TYPE_USERDATA => {
                let addr = usize::from_le_bytes(self.fixed(AT_POINTER)?);
                // The address names memory of this process (the encoder exposed it), so
                // the pointer takes back that exposed provenance.
                let p = ptr::with_exposed_provenance_mut::<c_void>(addr);
                // SAFETY: see above.
                unsafe { ffi::lua_pushlightuserdata(l, p) }
            }
            TYPE_SHORT_STRING => {
                let s = self.take(usize::from(cookie), AT_STRING_BODY)?;
                // SAFETY: see above.
                unsafe { push_bytes(l, s) }
            }
            TYPE_LONG_STRING => {
                let len = match cookie {
                    2 => usize::from(u16::from_le_bytes(self.fixed(AT_LENGTH16)?)),
                    4 => u32::from_le_bytes(self.fixed(AT_LENGTH32)?) as usize,
                    _ => return Err(self.invalid(AT_STRING_COOKIE)),
                };
                let s = self.take(len, AT_STRING_BODY)?;
                // SAFETY: see above.
                unsafe { push_bytes(l, s) }
            }
            // SAFETY: passed on from the caller.
            TYPE_TABLE => return unsafe { self.table(cookie, depth) },
            _ => return Err(self.invalid(AT_KIND)),
        }
        Ok(())
    }

    /// Scans the hash sizes from the first table on. Out of line, so the scan's state is
    /// not part of the frame of `table`, which recurses as deep as tables nest.
    #[inline(never)]
    fn scan_sizes(&mut self) {
        // The first table is a top-level value: tables are numbered from its tag on, just
        // behind `pos`.
        let from = self.data.get(self.pos - 1..).unwrap_or_default();
        self.sizes = Some(HashSizes::scan(from));
    }

    /// Decodes a table whose tag carried `cookie` and pushes it.
    ///
    /// # Safety
    /// As [`Decoder::value`].
    unsafe fn table(&mut self, cookie: u8, depth: u32) -> Result<(), StreamError> {
        let l = self.l;
        if self.sizes.is_none() {
            self.scan_sizes();
        }
        let n = if cookie == ARRAY_SIZE_FOLLOWS {
            let size_tag = self.fixed::<1>(AT_ARRAY_SIZE_TAG)?[0];
            if size_tag & 7 != TYPE_NUMBER || size_tag >> 3 == NUMBER_REAL {
                return Err(self.invalid(AT_ARRAY_SIZE_KIND));
            }
            self.integer(size_tag >> 3)?
        } else {
            i64::from(cookie)
        };
        if depth >= MAX_DECODE_DEPTH {
            return Err(self.invalid(AT_TABLE_DEPTH));
        }
        // Every array item takes at least one byte, so the rest of the stream bounds the
        // useful pre-size and a corrupt size cannot make us allocate a huge table.
        let room = self.rest().len().min(c_int::MAX as usize) as i64;
        let presize = n.clamp(0, room) as c_int;
        let records = self.sizes.as_mut().map_or(0, HashSizes::take);
        // SAFETY: luaL_checkstack raises "stack overflow" itself if the stack cannot grow;
        // this frame owns nothing a longjmp could skip. The table, a key and a value need
        // three slots; nested tables reserve their own.
        let t = unsafe {
            ffi::luaL_checkstack(l, ffi::LUA_MINSTACK, ptr::null());
            ffi::lua_createtable(l, presize, records);
            ffi::lua_gettop(l)
        };
        for i in 1..=n {
            // Holes are common in arrays and need no store at all.
            if self.rest().first() == Some(&tag(TYPE_NIL, 0)) {
                self.pos += 1;
                continue;
            }
            // SAFETY: room reserved above; the raw store runs no metamethod.
            unsafe {
                self.value(depth + 1)?;
                ffi::lua_rawseti(l, t, i);
            }
        }
        loop {
            // SAFETY: room reserved above.
            unsafe { self.value(depth + 1)? };
            // SAFETY: the key was just pushed.
            if unsafe { ffi::lua_type(l, -1) } == ffi::LUA_TNIL {
                // SAFETY: drops the terminating nil, leaving the table on top.
                unsafe { ffi::lua_pop(l, 1) };
                return Ok(());
            }
            // SAFETY: room reserved above. A NaN key makes Lua raise its own error, which
            // only crosses frames that own nothing.
            unsafe {
                self.value(depth + 1)?;
                ffi::lua_rawset(l, t);
            }
        }
    }
}

/// The hash sizes of the first [`SIZED_TABLES`] tables of a stream, in the order they
/// start, found by one pass over the bytes before decoding: each table is then made with
/// its hash part at its final size, instead of growing it rehash by rehash while its
/// pairs go in. Only hints: a table past the first ones, past [`SCAN_BUDGET`] values or
/// past a point where the stream does not parse gets 0 (the decoder reports where it
/// breaks). A plain array, so nothing owned lives across a Lua raise.
struct HashSizes {
    pairs: [u32; SIZED_TABLES],
    /// Tables started so far: the scan's, then the decoder's, position in `pairs`.
    next: usize,
    /// Values the scan may still look at.
    budget: u32,
}

const SIZED_TABLES: usize = 64;
const SCAN_BUDGET: u32 = 4096;

impl HashSizes {
    fn scan(data: &[u8]) -> HashSizes {
        let mut sizes = HashSizes {
            pairs: [0; SIZED_TABLES],
            next: 0,
            budget: SCAN_BUDGET,
        };
        let mut pos = 0;
        while pos < data.len() && sizes.next < SIZED_TABLES {
            match sizes.skip(data, pos, 0) {
                Some(end) => pos = end,
                None => break,
            }
        }
        sizes.next = 0;
        sizes
    }

    /// The decoder starts its next table: how many pairs it will hold, if known.
    fn take(&mut self) -> c_int {
        let pairs = self.pairs.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        pairs.min(c_int::MAX as u32) as c_int
    }

    /// Where the value starting at `pos` ends; None when it does not parse, nests past
    /// the decoder's limit, or the budget or the slots run out.
    fn skip(&mut self, data: &[u8], pos: usize, depth: u32) -> Option<usize> {
        self.budget = self.budget.checked_sub(1)?;
        let t = *data.get(pos)?;
        let cookie = t >> 3;
        let body = pos + 1;
        let end = match t & 7 {
            TYPE_NIL | TYPE_BOOLEAN => body,
            TYPE_NUMBER => body + number_len(cookie)?,
            TYPE_USERDATA => body + std::mem::size_of::<usize>(),
            TYPE_SHORT_STRING => body + usize::from(cookie),
            TYPE_LONG_STRING => {
                let width = match cookie {
                    2 | 4 => usize::from(cookie),
                    _ => return None,
                };
                let mut le = [0u8; 4];
                le[..width].copy_from_slice(data.get(body..body + width)?);
                body + width + u32::from_le_bytes(le) as usize
            }
            TYPE_TABLE => return self.skip_table(data, body, cookie, depth),
            _ => return None,
        };
        (end <= data.len()).then_some(end)
    }

    fn skip_table(&mut self, data: &[u8], mut pos: usize, cookie: u8, depth: u32) -> Option<usize> {
        if depth >= MAX_DECODE_DEPTH || self.next >= SIZED_TABLES {
            return None;
        }
        let slot = self.next;
        self.next += 1;
        let n = if cookie == ARRAY_SIZE_FOLLOWS {
            let size_tag = *data.get(pos)?;
            if size_tag & 7 != TYPE_NUMBER || size_tag >> 3 == NUMBER_REAL {
                return None;
            }
            let width = number_len(size_tag >> 3)?;
            let mut le = [0u8; 8];
            le[..width].copy_from_slice(data.get(pos + 1..pos + 1 + width)?);
            pos += 1 + width;
            u64::from_le_bytes(le)
        } else {
            u64::from(cookie)
        };
        for _ in 0..n {
            pos = self.skip(data, pos, depth + 1)?;
        }
        let mut pairs = 0;
        loop {
            if *data.get(pos)? == tag(TYPE_NIL, 0) {
                self.pairs[slot] = pairs;
                return Some(pos + 1);
            }
            pos = self.skip(data, pos, depth + 1)?;
            pos = self.skip(data, pos, depth + 1)?;
            pairs += 1;
        }
    }
}

/// The bytes after an integer or real tag with this cookie.
fn number_len(cookie: u8) -> Option<usize> {
    match cookie {
        NUMBER_ZERO => Some(0),
        NUMBER_BYTE => Some(1),
        NUMBER_WORD => Some(2),
        NUMBER_DWORD => Some(4),
        NUMBER_QWORD | NUMBER_REAL => Some(8),
        _ => None,
    }
}

/// Decodes every value in `data`, pushes them in order and returns how many there are.
///
/// On error, the values decoded so far (possibly a partial table) are left on the stack.
/// Lua errors from the API itself ("stack overflow", a NaN table key, memory) are raised
/// directly.
///
/// # Safety
/// `l` must be a valid Lua state inside a protected call, and nothing Rust-owned may be
/// alive in the calling frames unless the caller can afford to lose it on such an error.
pub unsafe fn unpack_bytes(l: *mut lua_State, data: &[u8]) -> Result<c_int, StreamError> {
    let mut dec = Decoder {
        l,
        data,
        pos: 0,
        sizes: None,
    };
    let mut count: c_int = 0;
    while dec.pos < data.len() {
        // Top-level values stay on the stack, so keep growing it as they accumulate.
        if count % 8 == 0 {
            // SAFETY: raises "stack overflow" itself on failure; see the contract above.
            unsafe { ffi::luaL_checkstack(l, ffi::LUA_MINSTACK, ptr::null()) };
        }
        // SAFETY: at least one slot is free after the check above.
        unsafe { dec.value(0)? };
        count += 1;
    }
    Ok(count)
}

/// `skynet.unpack(msg)` / `skynet.unpack(ptr, size)`: all values of a packed buffer. The
/// buffer is only read, never freed.
///
/// # Safety
/// Called by Lua as a C function. A pointer argument must address `size` readable bytes.
pub unsafe extern "C-unwind" fn unpack(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls us with a valid state.
    let kind = unsafe { ffi::lua_type(l, 1) };
    if kind == ffi::LUA_TNONE || kind == ffi::LUA_TNIL {
        return 0;
    }
    let (data, size): (*const u8, i64) = if kind == ffi::LUA_TSTRING {
        let mut len = 0usize;
        // SAFETY: argument 1 is a string; Lua keeps it alive while it is on the stack.
        let p = unsafe { ffi::lua_tolstring(l, 1, &mut len) };
        (p.cast::<u8>(), len as i64)
    } else {
        // SAFETY: non-userdata gives null (rejected below unless the size is 0);
        // luaL_checkinteger raises the standard bad-argument error, with nothing owned.
        unsafe {
            (
                ffi::lua_touserdata(l, 1).cast::<u8>().cast_const(),
                ffi::luaL_checkinteger(l, 2),
            )
        }
    };
    if size == 0 {
        return 0;
    }
    if data.is_null() {
        // SAFETY: nothing is owned at this point.
        unsafe { raise!("deserialize null pointer").raise(l) }
    }
    // A negative size describes no bytes at all.
    let Ok(len) = usize::try_from(size) else {
        return 0;
    };
    // SAFETY: slot 1 (the string, or the userdata's owner's responsibility) stays; the
    // caller guarantees `len` readable bytes at `data` for the duration of the call.
    let err = unsafe {
        ffi::lua_settop(l, 1);
        match unpack_bytes(l, slice::from_raw_parts(data, len)) {
            Ok(count) => return count,
            Err(err) => err,
        }
    };
    // SAFETY: `err` is plain data: this frame owns nothing.
    unsafe { raise!("{err}").raise(l) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::testvm::TestVm;

    /// Test-only globals: `mkptr(i)` makes a light userdata with address `i`, `addr(p)` is
    /// its inverse, `peek(p, n)` copies a buffer into a string, `trash(p)` frees a payload.
    unsafe extern "C-unwind" fn mkptr(l: *mut lua_State) -> c_int {
        // SAFETY: called by Lua with a valid state.
        unsafe {
            let addr = ffi::luaL_checkinteger(l, 1) as usize;
            ffi::lua_pushlightuserdata(l, ptr::with_exposed_provenance_mut(addr));
        }
        1
    }

    unsafe extern "C-unwind" fn addr(l: *mut lua_State) -> c_int {
        // SAFETY: called by Lua with a valid state.
        unsafe {
            let p = ffi::lua_touserdata(l, 1);
            ffi::lua_pushinteger(l, p.expose_provenance() as ffi::lua_Integer);
        }
        1
    }

    unsafe extern "C-unwind" fn peek(l: *mut lua_State) -> c_int {
        // SAFETY: the tests only pass buffers returned by `pack` with their size.
        unsafe {
            let p = ffi::lua_touserdata(l, 1).cast::<u8>();
            let n = ffi::luaL_checkinteger(l, 2) as usize;
            push_bytes(l, slice::from_raw_parts(p, n));
        }
        1
    }

    unsafe extern "C-unwind" fn trash(l: *mut lua_State) -> c_int {
        // SAFETY: the tests only pass buffers returned by `pack`, once each.
        unsafe { payload_free(ffi::lua_touserdata(l, 1).cast::<u8>()) };
        0
    }

    fn vm() -> TestVm {
        TestVm::new(
            PRELUDE,
            &[
                (c"pack", pack),
                (c"unpack", unpack),
                (c"packstring", packstring),
                (c"mkptr", mkptr),
                (c"addr", addr),
                (c"peek", peek),
                (c"trash", trash),
            ],
        )
    }

    const PRELUDE: &str = r#"
local function hex(s)
  return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end))
end
-- Encodes through both `pack` and `packstring`, which must agree, and returns hex.
local function bytes(...)
  local p, n = pack(...)
  assert(type(p) == 'userdata' and math.type(n) == 'integer', 'pack result types')
  assert(addr(p) ~= 0, 'pack returned null')
  local s = peek(p, n)
  trash(p)
  assert(#s == n)
  local s2 = packstring(...)
  assert(s == s2, 'pack and packstring differ: ' .. hex(s) .. ' / ' .. hex(s2))
  return hex(s)
end
local function expect(want, ...)
  want = want:gsub(' ', '')
  local got = bytes(...)
  if got ~= want then error(string.format('want %s got %s', want, got), 2) end
end
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == 'number' then
    if math.type(a) ~= math.type(b) then return false end
    if a ~= a then return b ~= b end
    return a == b and 1/a == 1/b or (a == b and a == 0 and math.type(a) == 'integer')
  end
  if type(a) ~= 'table' then return a == b end
  if getmetatable(b) ~= nil then return false end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if rawget(a, k) == nil then return false end end
  return true
end
-- Packs, unpacks and compares every value, through a string and through a pointer.
local function roundtrip(...)
  local n = select('#', ...)
  local args = table.pack(...)
  local out = table.pack(unpack(packstring(...)))
  assert(out.n == n, string.format('count %d ~= %d', out.n, n))
  for i = 1, n do
    if not same(args[i], out[i]) then error('value ' .. i .. ' differs', 2) end
  end
  local p, sz = pack(...)
  local out2 = table.pack(unpack(p, sz))
  trash(p)
  assert(out2.n == n)
  for i = 1, n do assert(same(args[i], out2[i]), 'pointer form differs') end
end
local function fails(want, f, ...)
  local ok, err = pcall(f, ...)
  if ok then error('expected an error: ' .. want, 2) end
  if err ~= want then
    error(string.format('want error %q got %q', want, tostring(err)), 2)
  end
end
local function hexstr(h)
  h = h:gsub(' ', '')
  return (h:gsub('..', function(x) return string.char(tonumber(x, 16)) end))
end
"#;

    #[test]
    fn integers() {
        vm().check(
            r#"
            expect('02', 0)
            expect('0a 01', 1)
            expect('0a ff', 255)
            expect('12 00 01', 256)
            expect('12 ff ff', 65535)
            expect('22 00 00 01 00', 65536)
            expect('22 ff ff ff ff', -1)
            expect('22 ff ff ff 7f', 0x7fffffff)
            expect('32 00 00 00 80 00 00 00 00', 0x80000000)
            expect('22 00 00 00 80', -0x80000000)
            expect('32 ff ff ff 7f ff ff ff ff', -0x80000001)
            expect('32 00 00 00 00 00 00 00 80', math.mininteger)
            expect('32 ff ff ff ff ff ff ff 7f', math.maxinteger)
            roundtrip(0, 1, 255, 256, 65535, 65536, -1, -255, -65536, 0x7fffffff,
              0x80000000, -0x80000000, -0x80000001, math.mininteger, math.maxinteger)
            "#,
        );
    }

    #[test]
    fn floats() {
        vm().check(
            r#"
            expect('42 00 00 00 00 00 00 f8 3f', 1.5)
            expect('42 00 00 00 00 00 00 f0 3f', 1.0)
            expect('42 00 00 00 00 00 00 00 00', 0.0)
            expect('42 00 00 00 00 00 00 f0 7f', math.huge)
            roundtrip(1.0, 0.0, -0.0, 1.5, -2.25, math.huge, -math.huge, 0/0, 2^63, 1e-300)
            assert(math.type(unpack(packstring(1.0))) == 'float')
            assert(math.type(unpack(packstring(1))) == 'integer')
            assert(1 / unpack(packstring(-0.0)) == -math.huge)
            "#,
        );
    }

    #[test]
    fn scalars_and_nil_arguments() {
        vm().check(
            r#"
            expect('00', nil)
            expect('09', true)
            expect('01', false)
            expect('0a 01 00 0c 78', 1, nil, 'x')
            expect('00 00', nil, nil)
            local a, b, c = unpack(packstring(1, nil, 'x'))
            assert(a == 1 and b == nil and c == 'x')
            assert(select('#', unpack(packstring(1, nil, 'x'))) == 3)
            assert(select('#', unpack(packstring(nil, nil))) == 2)
            roundtrip(true, false, nil, 'x', nil)
            -- any non-zero boolean cookie decodes as true
            assert(unpack(hexstr('11')) == true)
            assert(unpack(hexstr('f9')) == true)
            "#,
        );
    }

    #[test]
    fn strings() {
        vm().check(
            r#"
            expect('04', '')
            expect('1c 61 62 63', 'abc')
            local s31 = string.rep('a', 31)
            expect('fc' .. string.rep('61', 31), s31)
            local s32 = string.rep('b', 32)
            expect('15 20 00' .. string.rep('62', 32), s32)
            local s65535 = string.rep('c', 65535)
            assert(bytes(s65535) == '15ffff' .. string.rep('63', 65535))
            local s65536 = string.rep('d', 65536)
            assert(bytes(s65536) == '2500000100' .. string.rep('64', 65536))
            local bin = '\0\1\2\255' .. string.rep('\0', 40)
            roundtrip('', 'abc', s31, s32, s65535, s65536, bin, string.rep('e', 300000))
            -- the long forms are accepted for any length
            assert(unpack(hexstr('15 03 00 61 62 63')) == 'abc')
            assert(unpack(hexstr('25 01 00 00 00 7a')) == 'z')
            assert(unpack(hexstr('25 00 00 00 00')) == '')
            "#,
        );
    }

    #[test]
    fn tables() {
        vm().check(
            r#"
            expect('06 00', {})
            expect('1e 0a 01 0a 02 0a 03 00', {1, 2, 3})
            expect('06 0c 61 0a 01 00', {a = 1})
            expect('0e 0a 0a 0c 78 0a 01 00', {10, x = 1})
            expect('0e 06 00 00', {{}})
            -- integer keys beyond the border go to the hash part
            expect('0e 0a 01 0a 03 0a 03 00', {1, [3] = 3})
            -- float keys are never skipped
            expect('06 42 00 00 00 00 00 00 f8 3f 0a 01 00', {[1.5] = 1})
            -- holes inside the border encode as nil (the border itself is the VM's choice)
            local holes = {1, nil, 3}
            if rawlen(holes) == 3 then expect('1e 0a 01 00 0a 03 00', holes) end
            local withhole = {}
            for i = 1, 40 do withhole[i] = i end
            withhole[20] = nil
            if rawlen(withhole) == 40 then
              assert(bytes(withhole):find('^fe0a28.*0a13000a15'), 'hole not encoded as nil')
            end
            local t = unpack(hexstr('1e 0a 01 00 0a 03 00'))
            assert(t[1] == 1 and t[2] == nil and t[3] == 3)
            local a30, a31, a40 = {}, {}, {}
            for i = 1, 30 do a30[i] = i end
            for i = 1, 31 do a31[i] = i end
            for i = 1, 40 do a40[i] = i end
            local items = ''
            for i = 1, 30 do items = items .. string.format('0a%02x', i) end
            expect('f6' .. items .. '00', a30)
            expect('fe 0a 1f' .. items .. '0a1f 00', a31)
            assert(bytes(a40):sub(1, 6) == 'fe0a28')
            local big = {}
            for i = 1, 70000 do big[i] = i end
            assert(bytes(big):sub(1, 10) == 'fe22701101')
            roundtrip({}, {1, 2, 3}, {a = 1, b = {c = {d = 'e'}}}, a30, a31, a40, big,
              {1, 2, x = {true, false}, [1.5] = 'f', [-1] = 0, [100] = 1})
            -- an explicit array size in any integer form
            local u = unpack(hexstr('fe 0a 02 0a 01 0a 02 00'))
            assert(#u == 2 and u[1] == 1 and u[2] == 2)
            u = unpack(hexstr('fe 02 00'))
            assert(next(u) == nil)
            u = unpack(hexstr('fe 12 02 00 0a 05 0a 06 00'))
            assert(u[1] == 5 and u[2] == 6)
            -- a small array cookie followed by hash pairs
            u = unpack(hexstr('0e 0a 07 0c 6b 0c 76 00'))
            assert(u[1] == 7 and u.k == 'v')
            -- decoded tables carry no metatable
            local mt = setmetatable({1}, {__index = function() return 0 end})
            assert(getmetatable(unpack(packstring(mt))) == nil)
            "#,
        );
    }

    #[test]
    fn pairs_metamethod() {
        vm().check(
            r#"
            local proxy = setmetatable({}, {__pairs = function(t)
              return next, {a = 1}, nil
            end})
            expect('06 0c 61 0a 01 00', proxy)
            -- the array part is ignored: only what the iterator yields is encoded
            local seq = setmetatable({7, 8, 9}, {__pairs = function(t)
              local i = 0
              return function(_, k)
                i = i + 1
                if i <= 2 then return i, 'x' .. i end
              end, t, nil
            end})
            expect('06 0a 01 14 78 31 0a 02 14 78 32 00', seq)
            local u = unpack(packstring(seq))
            assert(u[1] == 'x1' and u[2] == 'x2' and u[3] == nil)
            -- state and control are threaded through like a generic for
            local counted = setmetatable({}, {__pairs = function(t)
              return function(state, k)
                assert(state == 'S')
                k = (k or 0) + 1
                if k <= 3 then return k, k * 10 end
              end, 'S', nil
            end})
            expect('06 0a 01 0a 0a 0a 02 0a 14 0a 03 0a 1e 00', counted)
            -- nested inside a plain table, and with nested values
            local nested = {p = setmetatable({}, {__pairs = function()
              return next, {q = {1}}, nil
            end})}
            expect('06 0c 70 06 0c 71 0e 0a 01 00 00 00', nested)
            -- __pairs is looked up raw in the metatable
            local mt = setmetatable({}, {__index = {__pairs = function() error('no') end}})
            expect('0e 0a 05 00', setmetatable({5}, mt))
            -- errors propagate unchanged, whatever their type
            local obj = {code = 42}
            local bad = setmetatable({}, {__pairs = function() error(obj) end})
            local ok, err = pcall(packstring, bad)
            assert(not ok and err == obj)
            ok, err = pcall(pack, 1, {bad})
            assert(not ok and err == obj)
            local badit = setmetatable({}, {__pairs = function()
              return function() error('boom', 0) end, nil, nil
            end})
            fails('boom', packstring, 'x', badit)
            fails('boom', pack, badit)
            local notfn = setmetatable({}, {__pairs = false})
            local ok2, err2 = pcall(packstring, notfn)
            assert(not ok2 and err2:find('call'), err2)
            -- an unsupported value inside the iteration
            local fn = setmetatable({}, {__pairs = function()
              return next, {f = print}, nil
            end})
            fails('Unsupport type function to serialize', packstring, fn)
            "#,
        );
    }

    #[test]
    fn light_userdata() {
        vm().check(
            r#"
            local p = mkptr(0x0102030405060708)
            expect('03 08 07 06 05 04 03 02 01', p)
            local q = unpack(packstring(p))
            assert(type(q) == 'userdata' and q == p and addr(q) == 0x0102030405060708)
            expect('03 00 00 00 00 00 00 00 00', mkptr(0))
            -- a real buffer from pack survives a round trip inside another message
            local buf, n = pack('hello')
            local buf2, n2 = unpack(packstring({buf, n}))[1], unpack(packstring(n))
            assert(buf2 == buf and n2 == n)
            assert(unpack(buf2, n2) == 'hello')
            trash(buf)
            roundtrip(p, {p, k = p}, mkptr(-1))
            "#,
        );
    }

    #[test]
    fn empty_pack_and_unpack() {
        vm().check(
            r#"
            local p, n = pack()
            assert(type(p) == 'userdata' and n == 0 and addr(p) ~= 0)
            assert(select('#', unpack(p, n)) == 0)
            trash(p)
            assert(packstring() == '')
            assert(select('#', unpack('')) == 0)
            assert(select('#', unpack()) == 0)
            assert(select('#', unpack(nil)) == 0)
            assert(select('#', unpack(nil, 10)) == 0)
            assert(select('#', unpack(mkptr(0), 0)) == 0)
            -- a negative size describes no bytes
            local q, m = pack(1)
            assert(select('#', unpack(q, -1)) == 0)
            -- the size argument bounds the read
            assert(select('#', unpack(q, m)) == 1)
            trash(q)
            -- extra arguments after a string are ignored
            assert(unpack(packstring(5), 'junk') == 5)
            "#,
        );
    }

    #[test]
    fn unpack_argument_errors() {
        vm().check(
            r#"
            fails('deserialize null pointer', unpack, mkptr(0), 5)
            fails('deserialize null pointer', unpack, 12, 5)
            local ok, err = pcall(unpack, mkptr(1))
            assert(not ok and err:find('bad argument #2', 1, true), err)
            ok, err = pcall(unpack, mkptr(1), 'x')
            assert(not ok and err:find('bad argument #2', 1, true), err)
            -- raised from Lua code, the message carries the caller's position
            ok, err = pcall(function() return unpack(mkptr(0), 1) end)
            assert(not ok and err:match('^test:%d+: deserialize null pointer$'), err)
            "#,
        );
    }

    #[test]
    fn invalid_streams() {
        vm().check(
            r#"
            local function bad(h, remaining, line)
              local want = string.format('Invalid serialize stream %d (line:%d)', remaining, line)
              fails(want, unpack, hexstr(h))
            end
            bad('07', 0, 527)          -- type 7
            bad('ff 00 00', 2, 527)
            bad('0a', 0, 378)          -- byte missing
            bad('12 01', 1, 386)       -- word truncated
            bad('22 01 02 03', 3, 394) -- dword truncated
            bad('32 01', 1, 402)       -- qword truncated
            bad('1a', 0, 407)          -- number cookie 3
            bad('4a 00', 1, 407)       -- number cookie 9
            bad('42 00 00', 2, 417)    -- double truncated
            bad('03 01', 1, 427)       -- pointer truncated
            bad('1c 61', 1, 437)       -- short string truncated
            bad('15 05 00 61', 1, 437) -- long string truncated
            bad('15 01', 1, 503)       -- u16 length truncated
            bad('1d 00 00', 2, 510)    -- long string cookie 3
            bad('0d', 0, 510)          -- long string cookie 1
            bad('25 01 00', 2, 514)    -- u32 length truncated
            bad('fe', 0, 450)          -- array size tag missing
            bad('fe 42 00', 1, 455)    -- array size as a float
            bad('fe 0c', 0, 455)       -- array size as a string
            bad('fe 1a', 0, 407)       -- array size with a bad number cookie
            bad('06', 0, 538)          -- unterminated table
            bad('0e 0a', 0, 378)       -- array item truncated
            bad('0e', 0, 538)          -- array item missing
            bad('06 0c 61', 0, 538)    -- value of a pair missing
            bad('0a 01 07', 0, 527)    -- garbage after a good value
            bad('fe 32 ff ff ff ff ff ff ff 7f', 0, 538) -- huge array size, no items
            -- a NaN key is rejected by Lua itself
            local ok, err = pcall(unpack, hexstr('06 42 00 00 00 00 00 00 f8 7f 0a 01 00'))
            assert(not ok and err:find('NaN'), err)
            -- negative array sizes describe an empty array part
            local t = unpack(hexstr('fe 22 ff ff ff ff 0c 6b 09 00'))
            assert(t.k == true and t[1] == nil)
            -- from Lua code the message carries the caller's position
            ok, err = pcall(function() return unpack('\7') end)
            assert(not ok and err:match('^test:%d+: Invalid serialize stream 0 %(line:527%)$'), err)
            -- the stream must stop exactly at a value boundary
            local good = packstring(1, 'abc', {1, {2}})
            for i = 1, #good - 1 do
              local ok = pcall(unpack, good:sub(1, i))
              -- prefixes ending at a top-level boundary are valid streams
              if i ~= 2 and i ~= 6 then assert(not ok, 'prefix ' .. i .. ' accepted') end
            end
            "#,
        );
    }

    #[test]
    fn hash_sizes_are_found_in_table_order() {
        let num = |v: u8| [tag(TYPE_NUMBER, NUMBER_BYTE), v];
        let key = |k: u8| [tag(TYPE_SHORT_STRING, 1), k];
        let nil = tag(TYPE_NIL, 0);
        // { 7, a = 1, b = { c = 2 } }, then { x = 3, y = 4 }
        let mut s = vec![tag(TYPE_TABLE, 1)];
        s.extend(num(7));
        s.extend(key(b'a'));
        s.extend(num(1));
        s.extend(key(b'b'));
        s.push(tag(TYPE_TABLE, 0));
        s.extend(key(b'c'));
        s.extend(num(2));
        s.push(nil);
        s.push(nil);
        s.push(tag(TYPE_TABLE, 0));
        s.extend(key(b'x'));
        s.extend(num(3));
        s.extend(key(b'y'));
        s.extend(num(4));
        s.push(nil);
        let mut sizes = HashSizes::scan(&s);
        let taken: Vec<c_int> = (0..4).map(|_| sizes.take()).collect();
        assert_eq!(taken, [2, 1, 2, 0]);

        // a stream cut short: the tables it does not close stay unknown
        let mut sizes = HashSizes::scan(&s[..s.len() - 1]);
        assert_eq!([sizes.take(), sizes.take(), sizes.take()], [2, 1, 0]);

        // nested past the budget: a partial answer, quickly, and no panic
        let deep = vec![tag(TYPE_TABLE, 1); 100_000];
        let mut sizes = HashSizes::scan(&deep);
        assert_eq!(sizes.take(), 0);
    }

    #[test]
    fn depth_limit() {
        vm().check(
            r#"
            -- `levels` nested tables, the innermost holding `leaf` (or empty)
            local function nest(levels, leaf)
              local t = {leaf}
              for _ = 2, levels do t = {t} end
              return t
            end
            local msg = "serialize can't pack too depth table"
            roundtrip(nest(32, 1))
            roundtrip(nest(33))
            fails(msg, packstring, nest(33, 1))
            fails(msg, pack, nest(34))
            fails(msg, packstring, 1, 2, nest(40, 'x'))
            -- hash values and keys count too
            local h = {}
            local cur = h
            for _ = 1, 31 do cur.k = {}; cur = cur.k end
            packstring(h)
            cur.k = {}
            packstring(h)
            cur.k.x = 1
            fails(msg, packstring, h)
            -- __pairs tables nest the same way
            local function pnest(levels)
              local t = {1}
              for _ = 2, levels do
                local inner = t
                t = setmetatable({}, {__pairs = function() return next, {inner}, nil end})
              end
              return t
            end
            packstring(pnest(32))
            fails(msg, packstring, pnest(33))
            -- from Lua code the message carries the caller's position
            local ok, err = pcall(function() return packstring(nest(33, 1)) end)
            assert(not ok and err:match("^test:%d+: serialize can't pack too depth table$"), err)
            -- the decoder accepts nesting deeper than the encoder produces...
            local deep = string.rep('\14', 100) .. '\6\0' .. string.rep('\0', 100)
            local d = unpack(deep)
            for _ = 1, 100 do d = d[1] end
            assert(type(d) == 'table' and next(d) == nil)
            -- ...but not without bound
            local hostile = string.rep('\14', 5000)
            ok, err = pcall(unpack, hostile)
            assert(not ok and err:match('^Invalid serialize stream %d+ %(line:459%)$'), err)
            "#,
        );
    }

    #[test]
    fn a_packed_message_is_allocated_at_its_size() {
        let vm = vm();
        let l = vm.state();
        // SAFETY: a fresh test state; the packed buffer is freed once, below.
        unsafe {
            for s in ["m", "payload"] {
                ffi::lua_pushstring(l, std::ffi::CString::new(s).expect("no NUL").as_ptr());
            }
            ffi::lua_pushnumber(l, 3.5);
            let top = ffi::lua_gettop(l);
            let (p, n) = pack_values(l, 1, top).expect("packs").into_raw();
            assert_eq!(n, 2 + 8 + 9);
            // The buffer the encoder grew is kept by the thread; the message holds a copy
            // of its exact size, as upstream's, not the encoder's 128 bytes.
            let usable = libc::malloc_usable_size(p.cast());
            assert!(usable < 64, "a {n}-byte message holds {usable} bytes");
            payload_free(p);
            ffi::lua_settop(l, 0);
        }
    }

    #[test]
    fn unsupported_types() {
        vm().check(
            r#"
            fails('Unsupport type function to serialize', packstring, print)
            fails('Unsupport type function to serialize', pack, 1, function() end)
            fails('Unsupport type userdata to serialize', packstring, io.stdout)
            fails('Unsupport type thread to serialize', pack, coroutine.create(print))
            fails('Unsupport type function to serialize', packstring, {1, {x = print}})
            fails('Unsupport type function to serialize', packstring, {[print] = 1})
            local ok, err = pcall(function() return pack(print) end)
            assert(not ok and err:match('^test:%d+: Unsupport type function to serialize$'), err)
            "#,
        );
    }

    #[test]
    fn many_values_and_mixed_round_trips() {
        vm().check(
            r#"
            local vals = {}
            for i = 1, 3000 do vals[i] = (i % 3 == 0) and tostring(i) or i end
            local out = table.pack(unpack(packstring(table.unpack(vals))))
            assert(out.n == 3000)
            for i = 1, 3000 do assert(out[i] == vals[i]) end
            local many = {}
            for i = 1, 3000 do many[i] = {i} end
            roundtrip(table.unpack(many, 1, 200))
            roundtrip(1, 'two', 3.0, {4, {5, {6}}, k = 'v', [7.5] = false}, nil, true,
              -1, math.maxinteger)
            -- tables as keys arrive as fresh tables
            local k, v = next(unpack(packstring({[{1, 2}] = 'v'})))
            assert(type(k) == 'table' and k[1] == 1 and k[2] == 2 and v == 'v')
            "#,
        );
    }

    #[test]
    fn stack_is_clean_after_errors() {
        let vm = vm();
        // SAFETY: direct use of the API on our own state.
        unsafe {
            let l = vm.state();
            ffi::lua_settop(l, 0);
            ffi::lua_pushinteger(l, 7);
            ffi::lua_pushstring(l, c"x".as_ptr());
            let packed = pack_values(l, 1, 2).expect("packs");
            assert_eq!(packed.as_bytes(), &[0x0a, 7, 0x0c, b'x']);
            assert_eq!(packed.len(), 4);
            assert_eq!(ffi::lua_gettop(l), 2);
            drop(packed);
            ffi::lua_pushcfunction(l, pack);
            assert_eq!(
                pack_values(l, 1, 3).err(),
                Some(PackError::Unsupported(ffi::LUA_TFUNCTION))
            );
            assert_eq!(ffi::lua_gettop(l), 3);
            let empty = pack_values(l, 1, 0).expect("packs nothing");
            assert!(empty.is_empty());
            let (p, n) = empty.into_raw();
            assert!(!p.is_null() && n == 0);
            payload_free(p);
            assert_eq!(
                unpack_bytes(l, &[0x0a, 7, 0x07]),
                Err(StreamError {
                    remaining: 0,
                    line: AT_KIND
                })
            );
            ffi::lua_settop(l, 0);
            assert_eq!(unpack_bytes(l, &[0x1c, b'a', b'b', b'c', 0x09]), Ok(2));
            assert_eq!(ffi::lua_gettop(l), 2);
            assert_eq!(to_bytes(l, 1), Some(&b"abc"[..]));
            assert_eq!(ffi::lua_toboolean(l, 2), 1);
        }
        vm.check("local x = 1");
    }
}
