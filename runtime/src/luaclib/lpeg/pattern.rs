//! Patterns as Lua values: a full userdata holding a pointer to a [`Pattern`] (its tree,
//! its compiled code, the vectors its matches work in) whose user value is its ktable,
//! the Lua values its tree refers to by index. Also the conversions LPeg applies to any
//! argument that stands for a pattern (strings, numbers, booleans, tables, functions).

use super::compile::{self, Program};
use super::tree::{CapKind, Kind, Node, Tree, MAX_DEPTH};
use super::vm::Buffers;
use crate::lua::raise::{raise, Lossy, Raise};
use mlua::ffi::{self, lua_State};
use std::cell::{Cell, OnceCell, UnsafeCell};
use std::ffi::{c_int, CStr};
use std::fmt;

pub const PATTERN_MT: &CStr = c"lpeg-pattern";
pub const BUFFERS_MT: &CStr = c"lpeg-buffers";
/// Most values a ktable holds.
pub const MAX_KTABLE: u32 = u16::MAX as u32;

pub struct Pattern {
    pub tree: Tree,
    pub ksize: u32,
    code: OnceCell<Program>,
    bufs: UnsafeCell<Buffers>,
    busy: Cell<bool>,
}

impl Pattern {
    pub fn program(&self) -> &Program {
        self.code.get_or_init(|| compile::compile(&self.tree))
    }

    /// The pattern's own match vectors, unless a match of it is already running (a
    /// match-time capture matching the same pattern). The pointer is the only way to
    /// them until [`Pattern::release`]. A match unwound by a Lua error never releases
    /// them: later matches of the pattern then get fresh vectors, which is only slower.
    pub fn take(&self) -> Option<*mut Buffers> {
        if self.busy.replace(true) {
            return None;
        }
        Some(self.bufs.get())
    }

    pub fn release(&self) {
        self.busy.set(false);
    }
}

/// A rule name or other ktable key as LPeg shows it in errors.
pub struct KeyText<'a>(pub Key<'a>);

pub enum Key<'a> {
    Str(&'a [u8]),
    Int(i64),
    Num(f64),
    Other(&'static str),
}

impl fmt::Display for KeyText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Key::Str(s) => write!(f, "{}", Lossy(s)),
            Key::Int(i) => write!(f, "{i}"),
            Key::Num(n) => write!(f, "{n}"),
            Key::Other(t) => write!(f, "(a {t})"),
        }
    }
}

/// The value at `idx` as an error shows it; reads only, never allocates.
///
/// # Safety
/// `l` must be a valid Lua state; the text borrows the value, which must stay put.
pub unsafe fn key_text<'a>(l: *mut lua_State, idx: c_int) -> KeyText<'a> {
    // SAFETY: type tests and reads of a live slot; a string is read as it is.
    unsafe {
        KeyText(match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING => Key::Str(crate::lua::stack::to_bytes(l, idx).unwrap_or(&[])),
            ffi::LUA_TNUMBER if ffi::lua_isinteger(l, idx) != 0 => {
                Key::Int(ffi::lua_tointegerx(l, idx, std::ptr::null_mut()))
            }
            ffi::LUA_TNUMBER => Key::Num(ffi::lua_tonumberx(l, idx, std::ptr::null_mut())),
            _ => Key::Other(crate::lua::stack::type_name(l, idx)),
        })
    }
}

/// The pattern at `idx`, if the value is one.
///
/// # Safety
/// `l` must be a valid Lua state; the reference lives while the value does.
pub unsafe fn test<'a>(l: *mut lua_State, idx: c_int) -> Option<&'a Pattern> {
    // SAFETY: luaL_testudata only compares metatables; a pattern's block holds a
    // pointer set when it was made and freed only by its __gc.
    unsafe {
        let p = ffi::luaL_testudata(l, idx, PATTERN_MT.as_ptr()) as *const *const Pattern;
        if p.is_null() || (*p).is_null() {
            None
        } else {
            Some(&**p)
        }
    }
}

/// Pushes a new pattern for `tree`, whose ktable (`ksize` values) is on top of the
/// stack, or nil when it has none; the ktable is replaced by the pattern.
///
/// # Safety
/// `l` must be a valid Lua state with the metatables registered.
pub unsafe fn push(l: *mut lua_State, tree: Tree, ksize: u32) -> Result<(), Raise> {
    if tree.depth > MAX_DEPTH {
        return Err(raise!("pattern too complex"));
    }
    let pat = Box::into_raw(Box::new(Pattern {
        tree,
        ksize,
        code: OnceCell::new(),
        bufs: UnsafeCell::new(Buffers::default()),
        busy: Cell::new(false),
    }));
    // SAFETY: `pat` is a raw pointer (nothing to drop if a memory error raises here);
    // the block is written before anything can read it; __gc frees it.
    unsafe {
        let block =
            ffi::lua_newuserdatauv(l, std::mem::size_of::<*mut Pattern>(), 1) as *mut *mut Pattern;
        block.write(pat);
        ffi::luaL_setmetatable(l, PATTERN_MT.as_ptr());
        ffi::lua_rotate(l, -2, 1);
        ffi::lua_setiuservalue(l, -2, 1);
    }
    Ok(())
}

/// `__gc` of patterns.
pub unsafe extern "C-unwind" fn gc(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls __gc once, with a block `push` wrote.
    unsafe {
        let block = ffi::luaL_testudata(l, 1, PATTERN_MT.as_ptr()) as *mut *mut Pattern;
        if !block.is_null() && !(*block).is_null() {
            drop(Box::from_raw(*block));
            *block = std::ptr::null_mut();
        }
    }
    0
}

/// Pushes fresh match vectors owned by a userdata, for a match whose pattern's own are
/// in use.
///
/// # Safety
/// `l` must be a valid Lua state with the metatables registered.
pub unsafe fn push_buffers<'a>(l: *mut lua_State) -> &'a mut Buffers {
    // SAFETY: the block is initialised before its metatable (and __gc) is set; it
    // lives while the value stays on the stack.
    unsafe {
        let block = ffi::lua_newuserdatauv(l, std::mem::size_of::<Buffers>(), 0) as *mut Buffers;
        block.write(Buffers::default());
        ffi::luaL_setmetatable(l, BUFFERS_MT.as_ptr());
        &mut *block
    }
}

/// `__gc` of match vectors.
pub unsafe extern "C-unwind" fn gc_buffers(l: *mut lua_State) -> c_int {
    // SAFETY: Lua calls __gc once, with a block `push_buffers` initialised.
    unsafe {
        let block = ffi::luaL_testudata(l, 1, BUFFERS_MT.as_ptr()) as *mut Buffers;
        if !block.is_null() {
            std::ptr::drop_in_place(block);
        }
    }
    0
}

/// Pushes a ktable holding the value at `idx`, for a pattern with one value.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn push_ktable1(l: *mut lua_State, idx: c_int) {
    // SAFETY: stack work.
    unsafe {
        let idx = ffi::lua_absindex(l, idx);
        ffi::lua_createtable(l, 1, 0);
        ffi::lua_pushvalue(l, idx);
        ffi::lua_rawseti(l, -2, 1);
    }
}

/// Pushes the ktable of the pattern at `idx` (nil if none).
///
/// # Safety
/// `l` must be a valid Lua state; `idx` a pattern.
pub unsafe fn push_ktable(l: *mut lua_State, idx: c_int) {
    // SAFETY: stack work.
    unsafe {
        ffi::lua_getiuservalue(l, idx, 1);
    }
}

/// Pushes the ktable of patterns `a` then `b` combined: returns its size and the
/// shift of `b`'s indices.
///
/// # Safety
/// `l` must be a valid Lua state; both indices patterns.
pub unsafe fn join(l: *mut lua_State, a: c_int, b: c_int) -> Result<(u32, u32), Raise> {
    // SAFETY: stack work on patterns (checked by the caller).
    unsafe {
        let (ka, kb) = match (test(l, a), test(l, b)) {
            (Some(pa), Some(pb)) => (pa.ksize, pb.ksize),
            _ => return Err(raise!("pattern expected")),
        };
        if kb == 0 {
            push_ktable(l, a);
            return Ok((ka, 0));
        }
        if ka == 0 {
            push_ktable(l, b);
            return Ok((kb, 0));
        }
        push_ktable(l, a);
        push_ktable(l, b);
        if ffi::lua_rawequal(l, -1, -2) != 0 {
            ffi::lua_settop(l, -2);
            return Ok((ka, 0));
        }
        if ka + kb > MAX_KTABLE {
            return Err(raise!("too many Lua values in pattern"));
        }
        ffi::lua_createtable(l, (ka + kb) as c_int, 0);
        for i in 1..=ka {
            ffi::lua_rawgeti(l, -3, i as ffi::lua_Integer);
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer);
        }
        for i in 1..=kb {
            ffi::lua_rawgeti(l, -2, i as ffi::lua_Integer);
            ffi::lua_rawseti(l, -2, (ka + i) as ffi::lua_Integer);
        }
        ffi::lua_rotate(l, -3, 1);
        ffi::lua_settop(l, -3);
        Ok((ka + kb, ka))
    }
}

/// Pushes the ktable of the pattern at `p` with the value at `v` appended: returns the
/// new size, which is also the value's index.
///
/// # Safety
/// `l` must be a valid Lua state; `p` a pattern.
pub unsafe fn append(l: *mut lua_State, p: c_int, v: c_int) -> Result<u32, Raise> {
    // SAFETY: stack work.
    unsafe {
        let v = ffi::lua_absindex(l, v);
        let k = test(l, p).map_or(0, |p| p.ksize);
        if k + 1 > MAX_KTABLE {
            return Err(raise!("too many Lua values in pattern"));
        }
        push_ktable(l, p);
        ffi::lua_createtable(l, (k + 1) as c_int, 0);
        for i in 1..=k {
            ffi::lua_rawgeti(l, -2, i as ffi::lua_Integer);
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer);
        }
        ffi::lua_pushvalue(l, v);
        ffi::lua_rawseti(l, -2, (k + 1) as ffi::lua_Integer);
        ffi::lua_rotate(l, -2, 1);
        ffi::lua_settop(l, -2);
        Ok(k + 1)
    }
}

/// The tree of a literal string.
pub fn literal(s: &[u8]) -> Tree {
    if s.is_empty() {
        Node::leaf_true()
    } else {
        Node::new(Kind::Str(s.into()))
    }
}

/// The tree of `lpeg.P(n)`: `n` bytes, or fewer than `-n` left.
pub fn any(n: i64) -> Result<Tree, Raise> {
    let count = |n: i64| u32::try_from(n).map_err(|_| raise!("pattern too complex"));
    Ok(match n {
        0 => Node::leaf_true(),
        n if n > 0 => Node::new(Kind::Any(count(n)?)),
        n => Node::new(Kind::Not(Node::new(Kind::Any(count(
            n.unsigned_abs() as i64
        )?)))),
    })
}

/// A capture of `kind` with no pattern of its own (`Cp`, `Cc`, `Cb`, `Carg`).
pub fn empty_capture(kind: CapKind, k: u32) -> Tree {
    Node::new(Kind::Capture(kind, k, Node::leaf_true()))
}
