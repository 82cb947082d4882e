//! The Lua face of `lpeg`: the constructors, the pattern operators (the metatable
//! every pattern shares, whose `__index` is the module), `lpeg.match` and the small
//! utilities (`locale`, `setmaxstack`, `type`, `version`, `ptree`, `pcode`).

use super::capture::{self, Env, MAXSTACK_KEY};
use super::charset::Charset;
use super::coerce;
use super::pattern::{self, Pattern};
use super::tree::{self, CapKind, Ctx, Kind, Node, Tree};
use super::utf::MAX_CODE_POINT;
use super::vm;
use crate::lua::raise::{arg_bytes, arg_integer, arg_opt_integer, arg_type, lua_fn, raise, Raise};
use crate::lua::stack::{self as lua, CFunction};
use mlua::ffi::{self, lua_State};
use std::ffi::{c_int, c_void, CStr};

const VERSION: &CStr = c"LPeg 1.1.0";

type Res = Result<c_int, Raise>;

/// Opens the module: `require "lpeg"`.
///
/// # Safety
/// Called by Lua as a C function.
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    let funcs: &[(&CStr, CFunction)] = &[
        (c"P", lua_fn!(lp_p)),
        (c"S", lua_fn!(lp_s)),
        (c"R", lua_fn!(lp_r)),
        (c"utfR", lua_fn!(lp_utfr)),
        (c"V", lua_fn!(lp_v)),
        (c"B", lua_fn!(lp_b)),
        (c"C", lua_fn!(|l| capture_of(l, CapKind::Simple))),
        (c"Ct", lua_fn!(|l| capture_of(l, CapKind::Table))),
        (c"Cs", lua_fn!(|l| capture_of(l, CapKind::Subst))),
        (c"Cg", lua_fn!(lp_cg)),
        (c"Cb", lua_fn!(lp_cb)),
        (c"Cc", lua_fn!(lp_cc)),
        (c"Cp", lua_fn!(lp_cp)),
        (c"Carg", lua_fn!(lp_carg)),
        (c"Cmt", lua_fn!(|l| with_function(l, CapKind::Runtime))),
        (c"Cf", lua_fn!(|l| with_function(l, CapKind::Fold))),
        (c"match", lua_fn!(lp_match)),
        (c"locale", lua_fn!(lp_locale)),
        (c"setmaxstack", lua_fn!(lp_setmaxstack)),
        (c"type", lua_fn!(lp_type)),
        (c"ptree", lua_fn!(lp_ptree)),
        (c"pcode", lua_fn!(lp_pcode)),
    ];
    let meta: &[(&CStr, CFunction)] = &[
        (c"__add", lua_fn!(lp_add)),
        (c"__sub", lua_fn!(lp_sub)),
        (c"__mul", lua_fn!(lp_mul)),
        (c"__div", lua_fn!(lp_div)),
        (c"__mod", lua_fn!(|l| with_function(l, CapKind::Accum))),
        (c"__pow", lua_fn!(lp_pow)),
        (c"__unm", lua_fn!(|l| unary(l, Kind::Not))),
        (c"__len", lua_fn!(|l| unary(l, Kind::And))),
        (c"__gc", pattern::gc),
    ];
    // SAFETY: plain stack work on a fresh module table.
    unsafe {
        lua::new_lib(l, funcs);
        ffi::lua_pushstring(l, VERSION.as_ptr());
        ffi::lua_setfield(l, -2, c"version".as_ptr());
        ffi::luaL_newmetatable(l, pattern::PATTERN_MT.as_ptr());
        for (name, f) in meta {
            ffi::lua_pushcfunction(l, *f);
            ffi::lua_setfield(l, -2, name.as_ptr());
        }
        ffi::lua_pushvalue(l, -2);
        ffi::lua_setfield(l, -2, c"__index".as_ptr());
        ffi::lua_settop(l, -2);
        ffi::luaL_newmetatable(l, pattern::BUFFERS_MT.as_ptr());
        ffi::lua_pushcfunction(l, pattern::gc_buffers);
        ffi::lua_setfield(l, -2, c"__gc".as_ptr());
        ffi::lua_settop(l, -2);
    }
    1
}

/// Pushes `tree` as a pattern sharing the ktable of the pattern at `idx`.
unsafe fn push_like(l: *mut lua_State, idx: c_int, tree: Tree) -> Res {
    // SAFETY: stack work; `idx` is a pattern.
    unsafe {
        let k = pattern::test(l, idx).map_or(0, |p| p.ksize);
        pattern::push_ktable(l, idx);
        pattern::push(l, tree, k)?;
    }
    Ok(1)
}

unsafe fn lp_p(l: *mut lua_State) -> Res {
    // SAFETY: argument conversion and stack work.
    unsafe {
        ffi::luaL_checkany(l, 1);
        coerce::get(l, 1)?;
        ffi::lua_settop(l, 1);
    }
    Ok(1)
}

unsafe fn lp_s(l: *mut lua_State) -> Res {
    // SAFETY: argument reads and stack work.
    unsafe {
        let s = arg_bytes(l, 1)?;
        let mut cs = Charset::EMPTY;
        for &c in s {
            cs.add(c);
        }
        ffi::lua_pushnil(l);
        pattern::push(l, Node::set(cs), 0)?;
    }
    Ok(1)
}

unsafe fn lp_r(l: *mut lua_State) -> Res {
    // SAFETY: argument reads and stack work.
    unsafe {
        let mut cs = Charset::EMPTY;
        for arg in 1..=ffi::lua_gettop(l) {
            let r = arg_bytes(l, arg)?;
            if r.len() != 2 {
                return Err(Raise::arg(
                    arg,
                    format_args!("range must have two characters"),
                ));
            }
            cs = cs.union(&Charset::range(r[0], r[1]));
        }
        ffi::lua_pushnil(l);
        pattern::push(l, Node::set(cs), 0)?;
    }
    Ok(1)
}

unsafe fn lp_utfr(l: *mut lua_State) -> Res {
    // SAFETY: argument reads and stack work.
    unsafe {
        let from = arg_integer(l, 1)?;
        let to = arg_integer(l, 2)?;
        if from < 0 || from > MAX_CODE_POINT as i64 {
            return Err(Raise::arg(1, format_args!("invalid code point")));
        }
        if to < 0 || to > MAX_CODE_POINT as i64 {
            return Err(Raise::arg(2, format_args!("invalid code point")));
        }
        if from > to {
            return Err(Raise::arg(2, format_args!("empty range")));
        }
        let tree = if to < 0x80 {
            Node::set(Charset::range(from as u8, to as u8))
        } else {
            Node::new(Kind::Utf(from as u32, to as u32))
        };
        ffi::lua_pushnil(l);
        pattern::push(l, tree, 0)?;
    }
    Ok(1)
}

unsafe fn lp_v(l: *mut lua_State) -> Res {
    // SAFETY: argument reads and stack work.
    unsafe {
        if ffi::lua_isnoneornil(l, 1) != 0 {
            return Err(Raise::arg(1, format_args!("non-nil value expected")));
        }
        pattern::push_ktable1(l, 1);
        pattern::push(l, Node::new(Kind::OpenCall(1)), 1)?;
    }
    Ok(1)
}

unsafe fn lp_b(l: *mut lua_State) -> Res {
    // SAFETY: argument conversion and stack work.
    unsafe {
        let p = coerce::get(l, 1)?;
        let n = match tree::fixedlen(&p.tree, &Ctx::TOP, &mut 64) {
            Some(n) if !p.tree.open => n,
            _ => {
                return Err(Raise::arg(
                    1,
                    format_args!("pattern may not have fixed length"),
                ))
            }
        };
        if p.tree.caps {
            return Err(Raise::arg(1, format_args!("pattern have captures")));
        }
        if n > super::MAX_BEHIND {
            return Err(Raise::arg(
                1,
                format_args!("pattern too long to look behind"),
            ));
        }
        push_like(l, 1, Node::new(Kind::Behind(p.tree.clone(), n)))
    }
}

unsafe fn capture_of(l: *mut lua_State, kind: CapKind) -> Res {
    // SAFETY: argument conversion and stack work.
    unsafe {
        let p = coerce::get(l, 1)?;
        push_like(l, 1, Node::new(Kind::Capture(kind, 0, p.tree.clone())))
    }
}

/// A capture whose ktable value is the argument at 2 (`Cg` with a name, `/`, `%`, ...).
unsafe fn keyed(l: *mut lua_State, kind: CapKind) -> Res {
    // SAFETY: argument conversion and stack work.
    unsafe {
        let p = coerce::get(l, 1)?;
        let k = pattern::append(l, 1, 2)?;
        let node = if kind == CapKind::Runtime {
            Kind::RunTime(k, p.tree.clone())
        } else {
            Kind::Capture(kind, k, p.tree.clone())
        };
        pattern::push(l, Node::new(node), k)?;
    }
    Ok(1)
}

unsafe fn with_function(l: *mut lua_State, kind: CapKind) -> Res {
    // SAFETY: argument checks.
    unsafe {
        coerce::get(l, 1)?;
        arg_type(l, 2, ffi::LUA_TFUNCTION)?;
        keyed(l, kind)
    }
}

unsafe fn lp_cg(l: *mut lua_State) -> Res {
    // SAFETY: argument reads.
    unsafe {
        if ffi::lua_isnoneornil(l, 2) != 0 {
            capture_of(l, CapKind::Group)
        } else {
            keyed(l, CapKind::Group)
        }
    }
}

unsafe fn lp_cb(l: *mut lua_State) -> Res {
    // SAFETY: argument reads and stack work.
    unsafe {
        ffi::luaL_checkany(l, 1);
        pattern::push_ktable1(l, 1);
        pattern::push(l, pattern::empty_capture(CapKind::Backref, 1), 1)?;
    }
    Ok(1)
}

unsafe fn lp_cp(l: *mut lua_State) -> Res {
    // SAFETY: stack work.
    unsafe {
        ffi::lua_pushnil(l);
        pattern::push(l, pattern::empty_capture(CapKind::Position, 0), 0)?;
    }
    Ok(1)
}

unsafe fn lp_carg(l: *mut lua_State) -> Res {
    // SAFETY: argument reads and stack work.
    unsafe {
        let n = arg_integer(l, 1)?;
        if !(1..=i16::MAX as i64).contains(&n) {
            return Err(Raise::arg(1, format_args!("invalid argument index")));
        }
        ffi::lua_pushnil(l);
        pattern::push(l, pattern::empty_capture(CapKind::Arg, n as u32), 0)?;
    }
    Ok(1)
}

/// Constant captures `lo..=hi`, joined as a balanced sequence.
fn consts(lo: u32, hi: u32) -> Tree {
    if lo == hi {
        return pattern::empty_capture(CapKind::Const, lo);
    }
    let mid = lo + (hi - lo) / 2;
    Node::new(Kind::Seq(consts(lo, mid), consts(mid + 1, hi), 0))
}

unsafe fn lp_cc(l: *mut lua_State) -> Res {
    // SAFETY: argument reads and stack work.
    unsafe {
        let n = ffi::lua_gettop(l);
        if n as u32 > pattern::MAX_KTABLE {
            return Err(raise!("too many Lua values in pattern"));
        }
        if n == 0 {
            ffi::lua_pushnil(l);
            pattern::push(l, Node::leaf_true(), 0)?;
            return Ok(1);
        }
        ffi::lua_createtable(l, n, 0);
        for i in 1..=n {
            ffi::lua_pushvalue(l, i);
            ffi::lua_rawseti(l, -2, i as ffi::lua_Integer);
        }
        let tree = if n == 1 {
            consts(1, 1)
        } else {
            Node::new(Kind::Capture(CapKind::Group, 0, consts(1, n as u32)))
        };
        pattern::push(l, tree, n as u32)?;
    }
    Ok(1)
}

/// Converts both operands; the ktables joined on top, with the shift of the second's.
unsafe fn operands<'a>(l: *mut lua_State) -> Result<(&'a Pattern, &'a Pattern, u32, u32), Raise> {
    // SAFETY: argument conversion and stack work.
    unsafe {
        let a = coerce::get(l, 1)?;
        let b = coerce::get(l, 2)?;
        let (ksize, koff) = pattern::join(l, 1, 2)?;
        Ok((a, b, ksize, koff))
    }
}

unsafe fn lp_add(l: *mut lua_State) -> Res {
    // SAFETY: argument conversion and stack work.
    unsafe {
        let a = coerce::get(l, 1)?;
        let b = coerce::get(l, 2)?;
        if let (Some(x), Some(y)) = (a.tree.charset(), b.tree.charset()) {
            ffi::lua_pushnil(l);
            pattern::push(l, Node::set(x.union(&y)), 0)?;
            return Ok(1);
        }
        if tree::nofail(&a.tree, &Ctx::TOP) || matches!(b.tree.kind, Kind::False) {
            ffi::lua_settop(l, 1);
            return Ok(1);
        }
        if matches!(a.tree.kind, Kind::False) {
            ffi::lua_settop(l, 2);
            return Ok(1);
        }
        let (a, b, ksize, koff) = operands(l)?;
        let node = Kind::Choice(a.tree.clone(), b.tree.clone(), koff);
        pattern::push(l, Node::new(node), ksize)?;
    }
    Ok(1)
}

unsafe fn lp_mul(l: *mut lua_State) -> Res {
    // SAFETY: argument conversion and stack work.
    unsafe {
        let a = coerce::get(l, 1)?;
        let b = coerce::get(l, 2)?;
        if matches!(a.tree.kind, Kind::False) || matches!(b.tree.kind, Kind::True) {
            ffi::lua_settop(l, 1);
            return Ok(1);
        }
        if matches!(a.tree.kind, Kind::True) {
            ffi::lua_settop(l, 2);
            return Ok(1);
        }
        let (a, b, ksize, koff) = operands(l)?;
        let node = Kind::Seq(a.tree.clone(), b.tree.clone(), koff);
        pattern::push(l, Node::new(node), ksize)?;
    }
    Ok(1)
}

unsafe fn lp_sub(l: *mut lua_State) -> Res {
    // SAFETY: argument conversion and stack work.
    unsafe {
        let a = coerce::get(l, 1)?;
        let b = coerce::get(l, 2)?;
        if let (Some(x), Some(y)) = (a.tree.charset(), b.tree.charset()) {
            ffi::lua_pushnil(l);
            pattern::push(l, Node::set(x.minus(&y)), 0)?;
            return Ok(1);
        }
        // a - b is !b a: b's values come first.
        ffi::lua_rotate(l, 1, 1);
        let (b, a, ksize, koff) = operands(l)?;
        let node = Kind::Seq(Node::new(Kind::Not(b.tree.clone())), a.tree.clone(), koff);
        pattern::push(l, Node::new(node), ksize)?;
    }
    Ok(1)
}

unsafe fn unary(l: *mut lua_State, make: fn(Tree) -> Kind) -> Res {
    // SAFETY: argument conversion and stack work.
    unsafe {
        let p = coerce::get(l, 1)?;
        push_like(l, 1, Node::new(make(p.tree.clone())))
    }
}

/// `n` copies of `p` in sequence, balanced.
fn copies(p: &Tree, n: u64) -> Tree {
    if n == 1 {
        return p.clone();
    }
    let half = n / 2;
    Node::new(Kind::Seq(copies(p, half), copies(p, n - half), 0))
}

unsafe fn lp_pow(l: *mut lua_State) -> Res {
    // SAFETY: argument conversion and stack work.
    unsafe {
        let p = coerce::get(l, 1)?;
        let n = arg_integer(l, 2)?;
        let t = &p.tree;
        let tree = if n >= 0 {
            if tree::nullable(t, &Ctx::TOP) {
                return Err(raise!("loop body may accept empty string"));
            }
            let rep = Node::new(Kind::Rep(t.clone()));
            if n == 0 {
                rep
            } else {
                if n > 1 << 20 {
                    return Err(raise!("pattern too complex"));
                }
                Node::new(Kind::Seq(copies(t, n as u64), rep, 0))
            }
        } else {
            if n < -(tree::MAX_DEPTH as i64) {
                return Err(raise!("pattern too complex"));
            }
            let mut acc = Node::new(Kind::Choice(t.clone(), Node::leaf_true(), 0));
            for _ in 1..n.unsigned_abs() {
                let seq = Node::new(Kind::Seq(t.clone(), acc, 0));
                acc = Node::new(Kind::Choice(seq, Node::leaf_true(), 0));
            }
            acc
        };
        push_like(l, 1, tree)
    }
}

unsafe fn lp_div(l: *mut lua_State) -> Res {
    // SAFETY: argument reads.
    unsafe {
        coerce::get(l, 1)?;
        match ffi::lua_type(l, 2) {
            ffi::LUA_TSTRING => keyed(l, CapKind::String),
            ffi::LUA_TTABLE => keyed(l, CapKind::Query),
            ffi::LUA_TFUNCTION => keyed(l, CapKind::Function),
            ffi::LUA_TNUMBER => {
                let n = arg_integer(l, 2)?;
                if !(0..=i16::MAX as i64).contains(&n) {
                    return Err(Raise::arg(2, format_args!("invalid number")));
                }
                let p = coerce::get(l, 1)?;
                push_like(
                    l,
                    1,
                    Node::new(Kind::Capture(CapKind::Num, n as u32, p.tree.clone())),
                )
            }
            _ => Err(raise!(
                "unexpected {} as 2nd operand to LPeg '/'",
                lua::type_name(l, 2)
            )),
        }
    }
}

/// `lpeg.match`'s starting byte, as LPeg crops `init`.
fn init_position(init: i64, len: usize) -> usize {
    if init > 0 {
        (init as u64 - 1).min(len as u64) as usize
    } else if init.unsigned_abs() <= len as u64 {
        len - init.unsigned_abs() as usize
    } else {
        0
    }
}

/// The first open call of `t`: its ktable index, shifted by `kb`.
fn first_open(t: &tree::Node, kb: u32) -> Option<u32> {
    if !t.open {
        return None;
    }
    match &t.kind {
        Kind::OpenCall(k) => Some(kb + k),
        Kind::Seq(a, b, off) | Kind::Choice(a, b, off) => {
            first_open(a, kb).or_else(|| first_open(b, kb + off))
        }
        Kind::Rep(p) | Kind::Not(p) | Kind::And(p) | Kind::Behind(p, _) => first_open(p, kb),
        Kind::Capture(_, _, p) | Kind::RunTime(_, p) => first_open(p, kb),
        _ => None,
    }
}

unsafe fn lp_match(l: *mut lua_State) -> Res {
    // SAFETY: stack work; from the match on, this frame only borrows (the vectors
    // belong to the pattern or to a userdata on the stack), as capture code that may
    // raise requires.
    unsafe {
        let p = coerce::get(l, 1)?;
        let subject = arg_bytes(l, 2)?;
        let init = init_position(arg_opt_integer(l, 3, 1)?, subject.len());
        let nargs = (ffi::lua_gettop(l) - 3).max(0);
        ffi::luaL_checkstack(l, 8, c"too many arguments".as_ptr());
        ffi::lua_settop(l, 3 + nargs);
        if let Some(k) = first_open(&p.tree, 0) {
            pattern::push_ktable(l, 1);
            ffi::lua_rawgeti(l, -1, k as ffi::lua_Integer);
            return Err(raise!(
                "rule '{}' used outside a grammar",
                pattern::key_text(l, -1)
            ));
        }
        let prog = p.program();
        pattern::push_ktable(l, 1);
        let mut env = Env {
            l,
            subject: 2,
            ktable: if p.ksize > 0 { ffi::lua_gettop(l) } else { 0 },
            args: 4,
            nargs,
        };
        let (bufs, own) = match p.take() {
            // `take` marked the vectors busy: no other match reaches them until
            // `release`, and the pattern outlives this call (it is argument 1).
            Some(b) => (&mut *b, true),
            None => (pattern::push_buffers(l), false),
        };
        let result = vm::run(prog, subject, init, bufs, &mut env);
        let end = match result {
            Ok(Some(end)) => end,
            Ok(None) => {
                if own {
                    p.release();
                }
                ffi::lua_pushnil(l);
                return Ok(1);
            }
            Err(e) => {
                if own {
                    p.release();
                }
                // Match-time values may fill the stack; raising needs room.
                ffi::lua_settop(l, 3 + nargs);
                return Err(e);
            }
        };
        let base = ffi::lua_gettop(l);
        let n = capture::finish(&env, subject, &bufs.caps);
        if own {
            p.release();
        }
        if n == 0 {
            ffi::lua_pushinteger(l, end as i64 + 1);
            return Ok(1);
        }
        Ok(ffi::lua_gettop(l) - base)
    }
}

unsafe fn lp_locale(l: *mut lua_State) -> Res {
    type Class = unsafe extern "C" fn(c_int) -> c_int;
    let classes: [(&CStr, Class); 11] = [
        (c"alnum", libc::isalnum),
        (c"alpha", libc::isalpha),
        (c"cntrl", libc::iscntrl),
        (c"digit", libc::isdigit),
        (c"graph", libc::isgraph),
        (c"lower", libc::islower),
        (c"print", libc::isprint),
        (c"punct", libc::ispunct),
        (c"space", libc::isspace),
        (c"upper", libc::isupper),
        (c"xdigit", libc::isxdigit),
    ];
    // SAFETY: argument reads and stack work; the ctype functions take any byte.
    unsafe {
        if ffi::lua_isnoneornil(l, 1) != 0 {
            ffi::lua_settop(l, 0);
            ffi::lua_createtable(l, 0, classes.len() as c_int);
        } else {
            arg_type(l, 1, ffi::LUA_TTABLE)?;
            ffi::lua_settop(l, 1);
        }
        for (name, class) in classes {
            let mut cs = Charset::EMPTY;
            for c in 0..=255u8 {
                if class(c as c_int) != 0 {
                    cs.add(c);
                }
            }
            ffi::lua_pushnil(l);
            pattern::push(l, Node::set(cs), 0)?;
            ffi::lua_setfield(l, 1, name.as_ptr());
        }
    }
    Ok(1)
}

unsafe fn lp_setmaxstack(l: *mut lua_State) -> Res {
    // SAFETY: argument reads and a registry write.
    unsafe {
        let n = arg_integer(l, 1)?;
        if !(1..=i32::MAX as i64 / 100).contains(&n) {
            return Err(Raise::arg(1, format_args!("out of range")));
        }
        ffi::lua_pushinteger(l, n);
        ffi::lua_rawsetp(
            l,
            ffi::LUA_REGISTRYINDEX,
            &MAXSTACK_KEY as *const u8 as *const c_void,
        );
    }
    Ok(0)
}

unsafe fn lp_type(l: *mut lua_State) -> Res {
    // SAFETY: argument reads.
    unsafe {
        ffi::luaL_checkany(l, 1);
        if pattern::test(l, 1).is_some() {
            ffi::lua_pushstring(l, c"pattern".as_ptr());
        } else {
            ffi::lua_pushnil(l);
        }
    }
    Ok(1)
}

unsafe fn lp_ptree(l: *mut lua_State) -> Res {
    // SAFETY: argument conversion.
    unsafe {
        let p = coerce::get(l, 1)?;
        println!("{}", super::print::tree(&p.tree));
    }
    Ok(0)
}

unsafe fn lp_pcode(l: *mut lua_State) -> Res {
    // SAFETY: argument conversion.
    unsafe {
        let p = coerce::get(l, 1)?;
        if p.tree.open {
            return Err(raise!("pattern has open calls"));
        }
        for (i, op) in p.program().code.iter().enumerate() {
            println!("{i:4}: {op:?}");
        }
    }
    Ok(0)
}
