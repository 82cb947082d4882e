//! Captures become Lua values: after a successful match for all of them, and during the
//! match for the ones nested in a match-time capture (whose function receives them).
//!
//! The list the matcher recorded is walked as a tree (an open entry, its nested entries,
//! its `Close`). Evaluation calls Lua (functions, queries, table building), which may
//! raise; it runs on the stack of `lpeg.match` itself, so the ktable, the subject, the
//! extra arguments and the match-time values are at fixed stack indices, and every frame
//! from it up to `lpeg.match`'s entry only borrows (the vectors belong to the pattern's
//! userdata), so an error may unwind through them.

use super::tree::CapKind;
use crate::lua::raise::{raise, Lossy, Raise};
use crate::lua::stack::push_bytes;
use mlua::ffi::{self, lua_State};
use std::ffi::{c_int, c_void};

/// A capture entry. An open entry (`len == OPEN`) is closed by a later `Close` entry;
/// any other entry spans `len` bytes from `s`.
#[derive(Clone, Copy, Debug)]
pub struct Cap {
    pub s: usize,
    pub len: usize,
    pub k: u32,
    pub kind: CapKind,
}

pub const OPEN: usize = usize::MAX;

impl Cap {
    pub fn is_open(&self) -> bool {
        self.len == OPEN
    }
}

/// Deepest nesting of captures evaluated.
const MAX_NESTING: u32 = 200;
/// Most values one match-time capture may return.
const MAX_RUNTIME_VALUES: i32 = i16::MAX as i32;

/// The registry key of `lpeg.setmaxstack`'s limit.
pub static MAXSTACK_KEY: u8 = 0;
/// Default backtrack stack limit.
pub const MAXBACK: usize = 400;

/// Where a match's Lua values live on the stack of `lpeg.match`.
pub struct Env {
    pub l: *mut lua_State,
    pub subject: c_int,
    /// The pattern's ktable, or 0 when it has none.
    pub ktable: c_int,
    /// The first extra argument and how many there are.
    pub args: c_int,
    pub nargs: c_int,
}

impl Env {
    pub fn max_stack(&mut self) -> usize {
        // SAFETY: a raw registry read of a light userdata key never raises.
        unsafe {
            ffi::lua_rawgetp(
                self.l,
                ffi::LUA_REGISTRYINDEX,
                &MAXSTACK_KEY as *const u8 as *const c_void,
            );
            let v = ffi::lua_tointegerx(self.l, -1, std::ptr::null_mut());
            ffi::lua_settop(self.l, -2);
            if v > 0 {
                v as usize
            } else {
                MAXBACK
            }
        }
    }

    pub fn settop(&mut self, top: c_int) {
        // SAFETY: `top` is at or below the current top (a capture's value slot).
        unsafe { ffi::lua_settop(self.l, top) }
    }

    /// Moves the `n` values at `from` down to `to` and drops what was above them.
    pub fn move_values(&mut self, from: c_int, n: c_int, to: c_int) -> c_int {
        // SAFETY: both ranges are live stack slots, `to < from`; copying never raises.
        unsafe {
            for i in 0..n {
                ffi::lua_copy(self.l, from + i, to + i);
            }
            ffi::lua_settop(self.l, to + n - 1);
        }
        to
    }
}

struct Eval<'a> {
    l: *mut lua_State,
    env: &'a Env,
    subject: &'a [u8],
    caps: &'a [Cap],
    depth: u32,
    /// The stack slot of the first value this evaluation pushes: an accumulator
    /// capture folds into the value on top, if there is one above it.
    firstcap: c_int,
}

impl<'a> Eval<'a> {
    fn new(env: &'a Env, subject: &'a [u8], caps: &'a [Cap]) -> Eval<'a> {
        // SAFETY: reads the top of a valid state.
        let firstcap = unsafe { ffi::lua_gettop(env.l) } + 1;
        Eval {
            l: env.l,
            env,
            subject,
            caps,
            depth: 0,
            firstcap,
        }
    }
}

/// Pushes the values of all captures of a successful match; returns how many.
///
/// # Safety
/// `env` must describe the stack of the running `lpeg.match`, and every frame up to
/// that function's entry may only borrow: a capture's Lua code may raise.
pub unsafe fn finish(env: &Env, subject: &[u8], caps: &[Cap]) -> c_int {
    // SAFETY: forwarded.
    unsafe { Eval::new(env, subject, caps).seq(0, caps.len()) }
}

/// Runs the match-time capture whose open entry is `caps[open]` (closed by the last
/// entry) at byte `s`: `None` when its function makes the match fail, else the new
/// position and where its extra values start on the stack and how many there are.
///
/// # Safety
/// As [`finish`].
pub unsafe fn runtime(
    env: &Env,
    subject: &[u8],
    caps: &[Cap],
    open: usize,
    s: usize,
) -> Result<Option<(usize, c_int, c_int)>, Raise> {
    let l = env.l;
    // SAFETY: stack work on the running match's frame; Lua errors unwind through
    // frames that only borrow.
    unsafe {
        let top = ffi::lua_gettop(l);
        let mut ev = Eval::new(env, subject, caps);
        ev.value(caps[open].k);
        ffi::lua_pushvalue(l, env.subject);
        ffi::lua_pushinteger(l, s as i64 + 1);
        let n = ev.nested(open, false);
        ffi::lua_callk(l, n + 2, ffi::LUA_MULTRET, 0, None);
        let n = ffi::lua_gettop(l) - top;
        let first = top + 1;
        let pos = match ffi::lua_type(l, first) {
            ffi::LUA_TNONE | ffi::LUA_TNIL => None,
            ffi::LUA_TBOOLEAN => (ffi::lua_toboolean(l, first) != 0).then_some(s),
            // Anything else is a position, converted as Lua converts (a numeric
            // string counts); what does not convert is no valid position.
            _ => {
                let p = ffi::lua_tointegerx(l, first, std::ptr::null_mut());
                if p <= s as i64 || p > subject.len() as i64 + 1 {
                    return Err(raise!("invalid position returned by match-time capture"));
                }
                Some(p as usize - 1)
            }
        };
        let Some(pos) = pos else {
            ffi::lua_settop(l, top);
            return Ok(None);
        };
        if n - 1 > MAX_RUNTIME_VALUES {
            return Err(raise!("too many results in match-time capture"));
        }
        ffi::lua_rotate(l, first, -1);
        ffi::lua_settop(l, -2);
        Ok(Some((pos, first, n - 1)))
    }
}

impl<'a> Eval<'a> {
    unsafe fn fail(&self, err: Raise) -> ! {
        // SAFETY: every frame of an evaluation only borrows (see `finish`); raising
        // needs a few free slots.
        unsafe {
            ffi::luaL_checkstack(self.l, 4, c"too many captures".as_ptr());
            err.raise(self.l)
        }
    }

    /// Pushes the ktable value `k`.
    unsafe fn value(&self, k: u32) {
        // SAFETY: a raw read of the ktable on the match's stack.
        unsafe {
            ffi::luaL_checkstack(self.l, 4, c"too many captures".as_ptr());
            if self.env.ktable == 0 {
                ffi::lua_pushnil(self.l);
            } else {
                ffi::lua_rawgeti(self.l, self.env.ktable, k as ffi::lua_Integer);
            }
        }
    }

    /// The index just past capture `i` and everything nested in it.
    fn skip(&self, i: usize) -> usize {
        if !self.caps[i].is_open() {
            return i + 1;
        }
        let mut depth = 0usize;
        for j in i + 1..self.caps.len() {
            let c = &self.caps[j];
            if c.kind == CapKind::Close {
                if depth == 0 {
                    return j + 1;
                }
                depth -= 1;
            } else if c.is_open() {
                depth += 1;
            }
        }
        self.caps.len()
    }

    /// The subject bytes capture `i` matched; `next` is `skip(i)`.
    fn text_at(&self, i: usize, next: usize) -> &'a [u8] {
        let c = &self.caps[i];
        let end = if c.is_open() {
            self.caps[next - 1].s
        } else {
            c.s + c.len
        };
        self.subject.get(c.s..end).unwrap_or(&[])
    }

    fn text(&self, i: usize) -> &'a [u8] {
        self.text_at(i, self.skip(i))
    }

    /// The entries directly nested in capture `i`: from `i + 1` to its `Close`
    /// (`next` is `skip(i)`).
    fn children(&self, i: usize, next: usize) -> (usize, usize) {
        if self.caps[i].is_open() {
            (i + 1, next - 1)
        } else {
            (i + 1, i + 1)
        }
    }

    /// Pushes the values of the captures from `from` to `to`.
    unsafe fn seq(&mut self, from: usize, to: usize) -> c_int {
        let mut n = 0;
        let mut i = from;
        while i < to {
            // SAFETY: forwarded.
            let (m, next) = unsafe { self.push(i) };
            n += m;
            i = next;
        }
        n
    }

    /// Pushes the values nested in capture `i`, then its whole match when `whole` is
    /// set or nothing else was pushed.
    unsafe fn nested(&mut self, i: usize, whole: bool) -> c_int {
        // SAFETY: forwarded.
        unsafe { self.nested_at(i, self.skip(i), whole) }
    }

    /// [`Eval::nested`] when `skip(i)` is known.
    unsafe fn nested_at(&mut self, i: usize, next: usize, whole: bool) -> c_int {
        let (from, to) = self.children(i, next);
        // SAFETY: stack work on the match's stack.
        unsafe {
            let mut n = self.seq(from, to);
            if whole || n == 0 {
                ffi::luaL_checkstack(self.l, 1, c"too many captures".as_ptr());
                push_bytes(self.l, self.text_at(i, next));
                n += 1;
            }
            n
        }
    }

    /// Pushes the first value nested in capture `i` (its match if none).
    unsafe fn nested_one(&mut self, i: usize) {
        // SAFETY: stack work on the match's stack.
        unsafe {
            let n = self.nested(i, false);
            ffi::lua_settop(self.l, -n);
        }
    }

    /// Pushes the values of capture `i`: how many, and the index after it.
    unsafe fn push(&mut self, i: usize) -> (c_int, usize) {
        let c = self.caps[i];
        let next = self.skip(i);
        let l = self.l;
        if self.depth >= MAX_NESTING {
            // SAFETY: on the match's stack.
            unsafe { self.fail(raise!("subcapture nesting too deep")) }
        }
        self.depth += 1;
        // SAFETY: stack work on the match's stack.
        let n = unsafe {
            ffi::luaL_checkstack(l, 4, c"too many captures".as_ptr());
            match c.kind {
                CapKind::Position => {
                    ffi::lua_pushinteger(l, c.s as i64 + 1);
                    1
                }
                CapKind::Const => {
                    self.value(c.k);
                    1
                }
                CapKind::Arg => {
                    if c.k as c_int > self.env.nargs {
                        self.fail(raise!("reference to absent extra argument #{}", c.k));
                    }
                    ffi::lua_pushvalue(l, self.env.args + c.k as c_int - 1);
                    1
                }
                CapKind::Runtime => {
                    ffi::lua_pushvalue(l, c.k as c_int);
                    1
                }
                CapKind::Simple => {
                    let n = self.nested_at(i, next, true);
                    ffi::lua_rotate(l, -n, 1);
                    n
                }
                CapKind::Group if c.k != 0 => 0,
                CapKind::Group => self.nested_at(i, next, false),
                CapKind::Backref => {
                    let g = self.backref(i);
                    self.nested(g, false)
                }
                CapKind::Table => {
                    self.table(i, next);
                    1
                }
                CapKind::Function => {
                    let base = ffi::lua_gettop(l);
                    self.value(c.k);
                    let m = self.nested_at(i, next, false);
                    ffi::lua_callk(l, m, ffi::LUA_MULTRET, 0, None);
                    ffi::lua_gettop(l) - base
                }
                CapKind::Query => {
                    self.nested_one(i);
                    self.value(c.k);
                    ffi::lua_rotate(l, -2, 1);
                    ffi::lua_gettable(l, -2);
                    ffi::lua_rotate(l, -2, 1);
                    ffi::lua_settop(l, -2);
                    if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                        ffi::lua_settop(l, -2);
                        0
                    } else {
                        1
                    }
                }
                CapKind::Num => {
                    if c.k == 0 {
                        0
                    } else {
                        let m = self.nested(i, false);
                        if (m as u32) < c.k {
                            self.fail(raise!("no capture '{}'", c.k));
                        }
                        ffi::lua_pushvalue(l, -(m - c.k as c_int + 1));
                        ffi::lua_replace(l, -(m + 1));
                        ffi::lua_settop(l, -m);
                        1
                    }
                }
                CapKind::String => {
                    self.string(i, next);
                    1
                }
                CapKind::Subst => {
                    self.subst(i, next);
                    1
                }
                CapKind::Fold => {
                    self.fold(i, next);
                    1
                }
                CapKind::Accum => {
                    // Folds into whatever value is on top: the one before it.
                    if ffi::lua_gettop(l) < self.firstcap {
                        self.fail(raise!("no previous value for accumulator capture"));
                    }
                    self.value(c.k);
                    ffi::lua_rotate(l, -2, 1);
                    let m = self.nested_at(i, next, false);
                    ffi::lua_callk(l, m + 1, 1, 0, None);
                    0
                }
                CapKind::Close => 0,
            }
        };
        self.depth -= 1;
        (n, next)
    }

    unsafe fn table(&mut self, i: usize, next: usize) {
        let l = self.l;
        let (from, to) = self.children(i, next);
        // SAFETY: stack work on the match's stack.
        unsafe {
            ffi::lua_createtable(l, 0, 0);
            let mut n: ffi::lua_Integer = 0;
            let mut j = from;
            while j < to {
                let c = self.caps[j];
                if c.kind == CapKind::Group && c.k != 0 {
                    self.value(c.k);
                    self.nested_one(j);
                    ffi::lua_settable(l, -3);
                    j = self.skip(j);
                } else {
                    let (m, next) = self.push(j);
                    for k in (1..=m).rev() {
                        // Not raw: an accumulator capture may have replaced the table.
                        ffi::lua_seti(l, -1 - k, n + k as ffi::lua_Integer);
                    }
                    n += m as ffi::lua_Integer;
                    j = next;
                }
            }
        }
    }

    /// The group a back reference names: the nearest complete named group before
    /// it that is not nested in another capture.
    unsafe fn backref(&mut self, i: usize) -> usize {
        let l = self.l;
        let name = self.caps[i].k;
        let mut j = i;
        // SAFETY: stack work on the match's stack.
        unsafe {
            self.value(name);
            while j > 0 {
                j -= 1;
                let mut c = self.caps[j];
                if c.kind == CapKind::Close {
                    let mut depth = 0usize;
                    while j > 0 {
                        j -= 1;
                        let o = &self.caps[j];
                        if o.kind == CapKind::Close {
                            depth += 1;
                        } else if o.is_open() {
                            if depth == 0 {
                                break;
                            }
                            depth -= 1;
                        }
                    }
                    c = self.caps[j];
                } else if c.is_open() {
                    continue;
                }
                if c.kind == CapKind::Group && c.k != 0 {
                    self.value(c.k);
                    let same = ffi::lua_rawequal(l, -1, -2) != 0;
                    ffi::lua_settop(l, -2);
                    if same {
                        ffi::lua_settop(l, -2);
                        return j;
                    }
                }
            }
            let mut len = 0;
            let p = ffi::luaL_tolstring(l, -1, &mut len);
            let name = std::slice::from_raw_parts(p as *const u8, len);
            self.fail(raise!("back reference '{}' not found", Lossy(name)))
        }
    }

    /// Adds the value of capture `i` to a string being built (`what` names the use in
    /// the error); false when the capture has no value.
    unsafe fn piece(&mut self, i: usize, what: &str) -> bool {
        let l = self.l;
        // SAFETY: stack work on the match's stack.
        unsafe {
            if self.caps[i].kind == CapKind::Accum {
                self.fail(raise!("invalid context for an accumulator capture"));
            }
            let (n, _) = self.push(i);
            if n == 0 {
                return false;
            }
            ffi::lua_settop(l, -n);
            if ffi::lua_isstring(l, -1) == 0 {
                let t = crate::lua::stack::type_name(l, -1);
                self.fail(raise!("invalid {what} value (a {t})"));
            }
            true
        }
    }

    unsafe fn string(&mut self, i: usize, next: usize) {
        let l = self.l;
        let (from, to) = self.children(i, next);
        let mut kids = [0usize; 9];
        let mut nkids = 0;
        self.string_kids(from, to, &mut kids, &mut nkids);
        // SAFETY: stack work on the match's stack; the format string stays in
        // the ktable while the match runs.
        unsafe {
            self.value(self.caps[i].k);
            let mut len = 0;
            let p = ffi::lua_tolstring(l, -1, &mut len);
            let fmt: &[u8] = if p.is_null() {
                &[]
            } else {
                std::slice::from_raw_parts(p as *const u8, len)
            };
            let mut pieces = Pieces::new();
            pieces.start(l);
            let mut lit = 0;
            let mut k = 0;
            while k < fmt.len() {
                if fmt[k] != b'%' {
                    k += 1;
                    continue;
                }
                pieces.bytes(&fmt[lit..k]);
                // A final '%' stands for the byte after it, as LPeg reads it: the
                // string's terminating zero.
                let d = fmt.get(k + 1).copied().unwrap_or(0);
                k += 2;
                lit = k.min(fmt.len());
                if !d.is_ascii_digit() {
                    pieces.bytes(&[d]);
                    continue;
                }
                let d = (d - b'0') as usize;
                if d == 0 {
                    pieces.bytes(self.text_at(i, next));
                } else if d > nkids {
                    self.fail(raise!("invalid capture index ({d})"));
                } else if self.caps[kids[d - 1]].kind == CapKind::Simple {
                    pieces.bytes(self.text(kids[d - 1]));
                } else if self.piece(kids[d - 1], "capture") {
                    pieces.added();
                } else {
                    self.fail(raise!("no values in capture index {d}"));
                }
            }
            pieces.bytes(&fmt[lit..]);
            pieces.join();
            ffi::lua_rotate(l, -2, 1);
            ffi::lua_settop(l, -2);
        }
    }

    /// The captures `%1`..`%9` name, from `from` to `to`: each capture in order, and
    /// after a simple capture the captures nested in it.
    fn string_kids(&self, from: usize, to: usize, kids: &mut [usize; 9], n: &mut usize) {
        let mut j = from;
        while j < to && *n < kids.len() {
            kids[*n] = j;
            *n += 1;
            let next = self.skip(j);
            if self.caps[j].kind == CapKind::Simple {
                let (a, b) = self.children(j, next);
                self.string_kids(a, b, kids, n);
            }
            j = next;
        }
    }

    unsafe fn subst(&mut self, i: usize, next: usize) {
        let (from, to) = self.children(i, next);
        let whole = self.text_at(i, next);
        let start = self.caps[i].s;
        let mut pieces = Pieces::new();
        let mut curr = start;
        let mut j = from;
        // SAFETY: stack work on the match's stack.
        unsafe {
            pieces.start(self.l);
            while j < to {
                let c = self.caps[j];
                let next = self.skip(j);
                let text = self.text_at(j, next);
                pieces.bytes(self.subject.get(curr..c.s).unwrap_or(&[]));
                if self.piece(j, "replacement") {
                    pieces.added();
                } else {
                    pieces.bytes(text);
                }
                curr = c.s + text.len();
                j = next;
            }
            pieces.bytes(self.subject.get(curr..start + whole.len()).unwrap_or(&[]));
            pieces.join();
        }
    }

    unsafe fn fold(&mut self, i: usize, next: usize) {
        let l = self.l;
        let (from, to) = self.children(i, next);
        // SAFETY: stack work on the match's stack.
        unsafe {
            let n = if from < to { self.push(from).0 } else { 0 };
            if n == 0 {
                self.fail(raise!("no initial value for fold capture"));
            }
            ffi::lua_settop(l, -n);
            let mut j = self.skip(from);
            while j < to {
                self.value(self.caps[i].k);
                ffi::lua_rotate(l, -2, 1);
                let (m, next) = self.push(j);
                ffi::lua_callk(l, m + 1, 1, 0, None);
                j = next;
            }
        }
    }
}

/// A string being built in a `luaL_Buffer` (which lives in this frame and must not
/// move once started: it points into itself).
struct Pieces {
    b: ffi::luaL_Buffer,
}

impl Pieces {
    /// A buffer not yet started.
    fn new() -> Pieces {
        // SAFETY: a luaL_Buffer is plain data (pointers, sizes, bytes); all zeroes is a
        // valid value, and `start` initialises it before use.
        Pieces {
            b: unsafe { std::mem::zeroed() },
        }
    }

    unsafe fn start(&mut self, l: *mut lua_State) {
        // SAFETY: `self` stays in place until `join`.
        unsafe { ffi::luaL_buffinit(l, &mut self.b) }
    }

    unsafe fn bytes(&mut self, b: &[u8]) {
        // SAFETY: Lua copies the bytes.
        unsafe { ffi::luaL_addlstring(&mut self.b, b.as_ptr() as *const _, b.len()) }
    }

    /// Adds the string the caller pushed on top.
    unsafe fn added(&mut self) {
        // SAFETY: the caller left exactly one value above the buffer's slots.
        unsafe { ffi::luaL_addvalue(&mut self.b) }
    }

    unsafe fn join(&mut self) {
        // SAFETY: pushes the result in place of the buffer's slots.
        unsafe { ffi::luaL_pushresult(&mut self.b) }
    }
}
