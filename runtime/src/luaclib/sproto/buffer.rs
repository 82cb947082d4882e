//! The output buffer of `encode`, `pack` and `unpack`: a full userdata that Lua owns,
//! kept between calls as the function's first upvalue (upstream keeps one the same
//! way). Lua owning it matters: encoding calls back into Lua (`__index`, `__pairs`,
//! memory errors), and a Lua error may then unwind through the encoder at any point,
//! which is sound only because no frame owns memory.
//!
//! While a call works, its buffer sits in a stack slot of its own (that keeps it alive)
//! and the upvalue is empty, so an `encode` reached again from a metamethod gets a
//! buffer of its own. Growing replaces the userdata in the slot; offsets, never
//! pointers, are kept across a growth.

use super::Fault;
use mlua::ffi::{self, lua_State};
use std::ffi::c_int;

/// Size of a new buffer (upstream's).
const INITIAL: usize = 2050;
/// Largest buffer: a bigger result is refused with `object is too large`.
pub const MAX_SIZE: usize = 0x100_0000;

pub struct Scratch {
    l: *mut lua_State,
    /// Absolute stack index of the userdata.
    slot: c_int,
    ptr: *mut u8,
    cap: usize,
    pub len: usize,
}

impl Scratch {
    /// Takes the buffer out of upvalue 1 (or makes one) and pushes it: it lives in the
    /// new top slot until [`Scratch::give_back`].
    ///
    /// # Safety
    /// `l` is the state of a running C closure whose first upvalue is its buffer (or nil).
    pub unsafe fn take(l: *mut lua_State) -> Scratch {
        // SAFETY: stack and upvalue access of the running closure; the userdata block
        // is `lua_rawlen` bytes long and stays alive while it is on the stack.
        unsafe {
            let up = ffi::lua_upvalueindex(1);
            if ffi::lua_type(l, up) != ffi::LUA_TUSERDATA {
                ffi::lua_newuserdatauv(l, INITIAL, 0);
            } else {
                ffi::lua_pushvalue(l, up);
                ffi::lua_pushnil(l);
                ffi::lua_replace(l, up);
            }
            Scratch {
                l,
                slot: ffi::lua_gettop(l),
                ptr: ffi::lua_touserdata(l, -1).cast(),
                cap: ffi::lua_rawlen(l, -1),
                len: 0,
            }
        }
    }

    /// Stores the buffer back as upvalue 1 for the next call.
    ///
    /// # Safety
    /// Called from the closure that took it, its slot still on the stack.
    pub unsafe fn give_back(&self) {
        // SAFETY: as `take`.
        unsafe {
            ffi::lua_pushvalue(self.l, self.slot);
            ffi::lua_replace(self.l, ffi::lua_upvalueindex(1));
        }
    }

    /// Makes room for `n` more bytes.
    #[inline]
    pub fn reserve(&mut self, n: usize) -> Result<(), Fault<'static>> {
        if self.len + n <= self.cap {
            return Ok(());
        }
        self.grow(self.len + n)
    }

    #[cold]
    fn grow(&mut self, need: usize) -> Result<(), Fault<'static>> {
        if need > MAX_SIZE {
            return Err(Fault::TooLarge);
        }
        let cap = (self.cap + self.cap / 2).clamp(need, MAX_SIZE);
        // SAFETY: the new block holds `cap` >= len bytes; the old one is still alive
        // (in the slot) while its bytes are copied, and is not used after the replace.
        unsafe {
            let ptr: *mut u8 = ffi::lua_newuserdatauv(self.l, cap, 0).cast();
            std::ptr::copy_nonoverlapping(self.ptr, ptr, self.len);
            ffi::lua_replace(self.l, self.slot);
            self.ptr = ptr;
        }
        self.cap = cap;
        Ok(())
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` addresses `cap` >= `len` bytes of the live userdata.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The whole block, for writers that know their size beforehand.
    pub fn block(&mut self) -> &mut [u8] {
        // SAFETY: as `bytes`; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.cap) }
    }

    /// Appends `bytes`.
    #[inline]
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), Fault<'static>> {
        self.reserve(bytes.len())?;
        let at = self.len;
        self.block()[at..at + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }

    /// Appends `n` bytes to fill in later; returns where they are.
    #[inline]
    pub fn hole(&mut self, n: usize) -> Result<usize, Fault<'static>> {
        self.reserve(n)?;
        let at = self.len;
        self.len += n;
        Ok(at)
    }

    #[inline]
    pub fn set(&mut self, at: usize, bytes: &[u8]) {
        self.block()[at..at + bytes.len()].copy_from_slice(bytes);
    }

    #[inline]
    pub fn get_u32(&mut self, at: usize) -> u32 {
        let b = &self.block()[at..at + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Moves `from..len` down to `to` and shortens the buffer to match.
    pub fn shift_down(&mut self, from: usize, to: usize) {
        let end = self.len;
        self.block().copy_within(from..end, to);
        self.len -= from - to;
    }
}
