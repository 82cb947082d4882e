//! The one way native code raises a Lua error.
//!
//! A Lua error unwinds with `longjmp`: no destructor runs in the frames it crosses, and
//! Rust allows that only over frames that own nothing with a destructor at that point. So
//! a native function that can fail once it owns something (a `String`, a `Vec`, a lock
//! guard ...) is written as a body, `unsafe fn(l) -> Result<c_int, Raise>`, and handed to
//! Lua through `lua_fn!`. The body returns its error as a [`Raise`], which is plain
//! data (`Copy`, so it cannot have a destructor), and drops what it owns on the way out;
//! the entry `lua_fn!` makes then raises it from its own frame, which owns nothing.
//!
//! The `arg_*` readers are the `luaL_check*`/`luaL_opt*` of the C API that return the
//! error instead of raising it, so a body may check an argument whatever it owns. The
//! error texts are Lua's own: `Raise::Type` and `Raise::Arg` end in `luaL_typeerror` and
//! `luaL_argerror`, `Raise::Error` is `luaL_error` (the caller's position, then the text).
//!
//! Any Lua API call that allocates can raise a memory error as well (a service's
//! `memlimit` makes that ordinary). Bytes a body owns are therefore pushed with
//! [`try_push_bytes`], Lua work done while something is owned runs under [`protect`], and
//! [`push_fmt`] formats a short text without the heap.

use super::stack::{push_bytes, to_bytes};
use mlua::ffi::{self, lua_State};
use std::ffi::{c_char, c_int, CStr};
use std::fmt;

unsafe extern "C-unwind" {
    /// `lauxlib.c`: raises `bad argument #arg to 'f' (tname expected, got T)`.
    fn luaL_typeerror(l: *mut lua_State, arg: c_int, tname: *const c_char) -> c_int;
}

/// Longest error text kept; a longer one (only a huge argument echoed back makes one)
/// is cut and ends in [`CUT`].
const TEXT_CAP: usize = 512;
const CUT: &str = "...";

/// A formatted error text held inline, so a [`Raise`] owns no heap memory.
#[derive(Clone, Copy)]
pub struct Text {
    len: usize,
    full: bool,
    bytes: [u8; TEXT_CAP],
}

impl Text {
    fn new(args: fmt::Arguments<'_>) -> Text {
        let mut text = Text {
            len: 0,
            full: false,
            bytes: [0; TEXT_CAP],
        };
        // An Err only says the text was cut, which `write_str` already marked.
        let _ = fmt::write(&mut text, args);
        text
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn append(&mut self, s: &str) {
        self.bytes[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.full {
            return Err(fmt::Error);
        }
        let room = TEXT_CAP - CUT.len() - self.len;
        if s.len() <= room {
            self.append(s);
            return Ok(());
        }
        let mut keep = room;
        while !s.is_char_boundary(keep) {
            keep -= 1;
        }
        self.append(&s[..keep]);
        self.append(CUT);
        self.full = true;
        Err(fmt::Error)
    }
}

/// Bytes shown as text the way `String::from_utf8_lossy` shows them, without allocating.
pub struct Lossy<'a>(pub &'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        Ok(())
    }
}

/// A Lua error to raise once the frame that found it has returned.
#[derive(Clone, Copy)]
pub enum Raise {
    /// `luaL_error`: the caller's position, then the text.
    Error(Text),
    /// `luaL_argerror(arg, text)`.
    Arg(c_int, Text),
    /// `luaL_typeerror(arg, tname)`; `tname` is a Lua type name or a metatable name.
    Type(c_int, &'static CStr),
    /// The error value already on top of the stack, raised as it is (`lua_error`).
    Top,
}

impl Raise {
    /// `luaL_error` with a formatted text.
    pub fn error(args: fmt::Arguments<'_>) -> Raise {
        Raise::Error(Text::new(args))
    }

    /// `luaL_argerror` with a formatted text.
    pub fn arg(arg: c_int, args: fmt::Arguments<'_>) -> Raise {
        Raise::Arg(arg, Text::new(args))
    }

    /// `luaL_typeerror` naming the Lua type `t` (`LUA_TSTRING` ...) as the one expected.
    ///
    /// # Safety
    /// `l` must be a valid Lua state.
    pub unsafe fn expected(l: *mut lua_State, arg: c_int, t: c_int) -> Raise {
        // SAFETY: lua_typename returns one of Lua's static type-name strings.
        Raise::Type(arg, unsafe { CStr::from_ptr(ffi::lua_typename(l, t)) })
    }

    /// Raises the error.
    ///
    /// # Safety
    /// `l` must be the state of a running C function, inside a protected call, with
    /// LUA_MINSTACK free slots as a C function starts with, and no frame between here
    /// and that protected call may own anything with a destructor: this is `lua_fn!`'s
    /// entry, or a function that shows it owns nothing.
    pub unsafe fn raise(self, l: *mut lua_State) -> ! {
        // SAFETY: `self` is plain data; every call below either pushes within the free
        // slots or ends in lua_error, which unwinds to the protected call.
        unsafe {
            match self {
                Raise::Error(text) => {
                    ffi::luaL_where(l, 1);
                    push_bytes(l, text.as_bytes());
                    ffi::lua_concat(l, 2);
                    ffi::lua_error(l)
                }
                Raise::Arg(arg, text) => {
                    push_bytes(l, text.as_bytes());
                    ffi::luaL_argerror(l, arg, ffi::lua_tolstring(l, -1, std::ptr::null_mut()));
                    // luaL_argerror ends in lua_error; its int result exists only so C
                    // code can write `return luaL_argerror(...)`.
                    std::hint::unreachable_unchecked()
                }
                Raise::Type(arg, tname) => {
                    luaL_typeerror(l, arg, tname.as_ptr());
                    // As above: luaL_typeerror ends in luaL_argerror.
                    std::hint::unreachable_unchecked()
                }
                Raise::Top => ffi::lua_error(l),
            }
        }
    }
}

/// A module's own error text (its internal functions build them as `String`s): the
/// text is copied, and the `String` dropped with the body that returns the error.
impl From<String> for Raise {
    fn from(text: String) -> Raise {
        raise!("{text}")
    }
}

/// `Raise::error(format_args!(...))`: a `luaL_error` with a formatted text.
macro_rules! raise {
    ($($fmt:tt)*) => {
        $crate::lua::raise::Raise::error(format_args!($($fmt)*))
    };
}
pub(crate) use raise;

/// A native function's body: its results, or the error its entry raises.
pub type Body = unsafe fn(*mut lua_State) -> Result<c_int, Raise>;

/// Runs `body` and raises its error from this frame, after the body has returned.
///
/// # Safety
/// Called only by the entry `lua_fn!` makes, with the state Lua called it with.
#[inline(always)]
pub unsafe fn run(l: *mut lua_State, body: Body) -> c_int {
    // SAFETY: the body gets the state Lua called the entry with.
    match unsafe { body(l) } {
        Ok(results) => results,
        // SAFETY: the body's frame is gone, this one owns only `err` (plain data), and
        // the entry above it owns nothing.
        Err(err) => unsafe { err.raise(l) },
    }
}

/// The `lua_CFunction` running a [`Body`] (a path, or a closure that captures nothing):
/// its `Err` is raised from a frame that owns nothing.
macro_rules! lua_fn {
    ($body:expr) => {{
        unsafe extern "C-unwind" fn entry(l: *mut ::mlua::ffi::lua_State) -> ::std::ffi::c_int {
            // SAFETY: Lua calls this as a C function, with its state.
            unsafe { $crate::lua::raise::run(l, $body) }
        }
        entry as $crate::lua::stack::CFunction
    }};
}
pub(crate) use lua_fn;

/// `luaL_checklstring` as a byte slice; the slice lives while the argument stays on the
/// stack.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn arg_bytes<'a>(l: *mut lua_State, arg: c_int) -> Result<&'a [u8], Raise> {
    // SAFETY: a read of a live stack slot (converting a number in place, as Lua does).
    match unsafe { to_bytes(l, arg) } {
        Some(bytes) => Ok(bytes),
        // SAFETY: forwarded.
        None => Err(unsafe { Raise::expected(l, arg, ffi::LUA_TSTRING) }),
    }
}

/// `luaL_checkinteger`.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn arg_integer(l: *mut lua_State, arg: c_int) -> Result<ffi::lua_Integer, Raise> {
    let mut isnum = 0;
    // SAFETY: reads of a live stack slot.
    unsafe {
        let v = ffi::lua_tointegerx(l, arg, &mut isnum);
        if isnum != 0 {
            Ok(v)
        } else if ffi::lua_isnumber(l, arg) != 0 {
            Err(Raise::arg(
                arg,
                format_args!("number has no integer representation"),
            ))
        } else {
            Err(Raise::expected(l, arg, ffi::LUA_TNUMBER))
        }
    }
}

/// `luaL_optinteger`.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn arg_opt_integer(
    l: *mut lua_State,
    arg: c_int,
    default: ffi::lua_Integer,
) -> Result<ffi::lua_Integer, Raise> {
    // SAFETY: reads of a live stack slot.
    unsafe {
        if ffi::lua_isnoneornil(l, arg) != 0 {
            Ok(default)
        } else {
            arg_integer(l, arg)
        }
    }
}

/// `luaL_checknumber`.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn arg_number(l: *mut lua_State, arg: c_int) -> Result<ffi::lua_Number, Raise> {
    let mut isnum = 0;
    // SAFETY: reads of a live stack slot.
    unsafe {
        let v = ffi::lua_tonumberx(l, arg, &mut isnum);
        if isnum != 0 {
            Ok(v)
        } else {
            Err(Raise::expected(l, arg, ffi::LUA_TNUMBER))
        }
    }
}

/// `luaL_checktype`.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn arg_type(l: *mut lua_State, arg: c_int, t: c_int) -> Result<(), Raise> {
    // SAFETY: reads of a live stack slot.
    unsafe {
        if ffi::lua_type(l, arg) == t {
            Ok(())
        } else {
            Err(Raise::expected(l, arg, t))
        }
    }
}

/// `luaL_checkudata`: the block of the full userdata at `arg` whose metatable is the
/// registry's `tname`.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn arg_udata(
    l: *mut lua_State,
    arg: c_int,
    tname: &'static CStr,
) -> Result<*mut std::ffi::c_void, Raise> {
    // SAFETY: luaL_testudata only compares metatables (it never raises).
    let p = unsafe { ffi::luaL_testudata(l, arg, tname.as_ptr()) };
    if p.is_null() {
        Err(Raise::Type(arg, tname))
    } else {
        Ok(p)
    }
}

/// Calls the function and data `protect` put behind the light userdata 1.
unsafe extern "C-unwind" fn protected<T: ?Sized>(l: *mut lua_State) -> c_int {
    // SAFETY: only `protect` calls this, with a pointer to its live `(data, f)` pair.
    unsafe {
        let &(data, f) =
            &*(ffi::lua_touserdata(l, 1) as *const (&T, unsafe fn(*mut lua_State, &T)));
        f(l, data);
    }
    1
}

/// Runs `f(l, data)` under `lua_pcall`, for Lua work done while the caller owns
/// something (`data` itself, often): an error `f` raises, a memory error included, comes
/// back as `Err(Raise::Top)` instead of unwinding through the caller. `f` leaves one value
/// on top, which is kept; its own frame must own nothing.
///
/// # Safety
/// `l` must be a valid Lua state; `f` must be safe to call with `l` and `data`.
pub unsafe fn protect<T: ?Sized>(
    l: *mut lua_State,
    data: &T,
    f: unsafe fn(*mut lua_State, &T),
) -> Result<(), Raise> {
    let call = (data, f);
    // SAFETY: a light C function and a light userdata need no memory once the stack has
    // room; `call` outlives the protected call, which catches every error.
    unsafe {
        if ffi::lua_checkstack(l, 2) == 0 {
            return Err(raise!("stack overflow"));
        }
        ffi::lua_pushcfunction(l, protected::<T>);
        ffi::lua_pushlightuserdata(l, &call as *const _ as *mut std::ffi::c_void);
        if ffi::lua_pcall(l, 1, 1, 0) == ffi::LUA_OK {
            Ok(())
        } else {
            Err(Raise::Top)
        }
    }
}

/// Pushes `bytes` as a Lua string without raising (see [`protect`]): for bytes in memory
/// the caller owns (a `Vec`, a `String`), which a memory error would otherwise leak.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn try_push_bytes(l: *mut lua_State, bytes: &[u8]) -> Result<(), Raise> {
    // SAFETY: push_bytes copies the slice, which lives across the call.
    unsafe { protect(l, bytes, push_bytes) }
}

/// Pushes formatted text (an address, a number) without owning heap memory: the text
/// is built inline, so a memory error while pushing it skips nothing.
///
/// # Safety
/// `l` must be a valid Lua state.
pub unsafe fn push_fmt(l: *mut lua_State, args: fmt::Arguments<'_>) {
    let text = Text::new(args);
    // SAFETY: Lua copies the bytes.
    unsafe { push_bytes(l, text.as_bytes()) }
}
