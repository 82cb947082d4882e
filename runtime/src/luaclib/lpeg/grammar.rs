//! Grammars: a Lua table of rules becomes one tree whose `V(name)` references are
//! resolved to rule numbers, then checked as LPeg checks them: every referenced rule
//! exists, no rule can call itself without consuming input (left recursion), and no
//! loop body can match the empty string.
//!
//! The Lua side (collecting the rules, joining their ktables) is done first, while
//! nothing is owned; resolving and checking then only read the stack and return their
//! errors.

use super::pattern::{self, key_text, KeyText, MAX_KTABLE};
use super::tree::{self, Ctx, Grammar, Kind, Node, Rule, Tree};
use crate::lua::raise::{raise, Raise};
use mlua::ffi::{self, lua_State};
use std::ffi::c_int;

/// Most rules in a grammar.
pub const MAX_RULES: usize = 1000;

/// The stack slots of a grammar being built.
struct Slots {
    /// Rule `i + 1`'s pattern.
    rules: c_int,
    /// Rule `i + 1`'s key.
    keys: c_int,
    /// Key to rule number (from 1).
    index: c_int,
    /// The joined ktable.
    ktable: c_int,
}

/// Builds the grammar the table at `t` describes and pushes it as a pattern.
///
/// # Safety
/// `l` must be a valid Lua state; `t` a table.
pub unsafe fn build(l: *mut lua_State, t: c_int) -> Result<(), Raise> {
    // SAFETY: stack work; Lua calls that can raise happen before anything is owned.
    unsafe {
        let top = ffi::lua_gettop(l);
        ffi::luaL_checkstack(l, 12, c"grammar too large".as_ptr());
        let slots = collect(l, t)?;
        let n = ffi::lua_rawlen(l, slots.rules) as usize;
        let (koffs, ksize) = join(l, &slots, n)?;
        let g = resolve(l, &slots, &koffs)?;
        let tree = Node::new(Kind::Grammar(Box::new(g)));
        ffi::lua_pushvalue(l, slots.ktable);
        pattern::push(l, tree, ksize)?;
        ffi::lua_replace(l, top + 1);
        ffi::lua_settop(l, top + 1);
        Ok(())
    }
}

/// Pushes the rules, keys and index tables of the grammar at `t`; the initial rule
/// comes first.
unsafe fn collect(l: *mut lua_State, t: c_int) -> Result<Slots, Raise> {
    // SAFETY: stack work on a table.
    unsafe {
        let base = ffi::lua_gettop(l);
        ffi::lua_createtable(l, 8, 0);
        ffi::lua_createtable(l, 8, 0);
        ffi::lua_createtable(l, 0, 8);
        let (rules, keys, index) = (base + 1, base + 2, base + 3);
        // The initial rule: t[1] when a pattern, else the rule t[1] names.
        ffi::lua_rawgeti(l, t, 1);
        let named = pattern::test(l, -1).is_none();
        if named {
            if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                return Err(raise!("grammar has no initial rule"));
            }
            ffi::lua_pushvalue(l, -1);
            ffi::lua_rawget(l, t);
            if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                return Err(raise!("grammar has no initial rule"));
            }
            ffi::lua_settop(l, -2);
        } else {
            ffi::lua_settop(l, -2);
            ffi::lua_pushinteger(l, 1);
        }
        let initial = ffi::lua_gettop(l);
        if named {
            ffi::lua_pushvalue(l, initial);
            ffi::lua_rawget(l, t);
            if pattern::test(l, -1).is_none() {
                return Err(raise!(
                    "initial rule '{}' is not a pattern",
                    key_text(l, initial)
                ));
            }
            ffi::lua_settop(l, -2);
        }
        add_rule(l, t, initial, rules, keys, index)?;
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, t) != 0 {
            ffi::lua_settop(l, -2);
            let key = ffi::lua_gettop(l);
            let skip = ffi::lua_rawequal(l, key, initial) != 0
                || (named
                    && ffi::lua_isinteger(l, key) != 0
                    && ffi::lua_tointegerx(l, key, std::ptr::null_mut()) == 1);
            if !skip {
                add_rule(l, t, key, rules, keys, index)?;
            }
        }
        ffi::lua_settop(l, index);
        ffi::lua_pushnil(l);
        Ok(Slots {
            rules,
            keys,
            index,
            ktable: index + 1,
        })
    }
}

unsafe fn add_rule(
    l: *mut lua_State,
    t: c_int,
    key: c_int,
    rules: c_int,
    keys: c_int,
    index: c_int,
) -> Result<(), Raise> {
    // SAFETY: stack work on the tables `collect` made.
    unsafe {
        ffi::lua_pushvalue(l, key);
        ffi::lua_rawget(l, t);
        if pattern::test(l, -1).is_none() {
            return Err(raise!("rule '{}' is not a pattern", key_text(l, key)));
        }
        let n = ffi::lua_rawlen(l, rules) as usize + 1;
        if n > MAX_RULES {
            return Err(raise!("grammar has too many rules"));
        }
        ffi::lua_rawseti(l, rules, n as ffi::lua_Integer);
        ffi::lua_pushvalue(l, key);
        ffi::lua_rawseti(l, keys, n as ffi::lua_Integer);
        ffi::lua_pushvalue(l, key);
        ffi::lua_pushinteger(l, n as ffi::lua_Integer);
        ffi::lua_rawset(l, index);
    }
    Ok(())
}

/// Joins the rules' ktables into the one at `slots.ktable`: each rule's shift, and the
/// total.
unsafe fn join(l: *mut lua_State, slots: &Slots, n: usize) -> Result<(Vec<u32>, u32), Raise> {
    let mut total = 0u32;
    // SAFETY: stack work on the tables `collect` made; the Vec is only built after the
    // last call that can raise.
    unsafe {
        for i in 1..=n {
            ffi::lua_rawgeti(l, slots.rules, i as ffi::lua_Integer);
            total += pattern::test(l, -1).map_or(0, |p| p.ksize);
            ffi::lua_settop(l, -2);
        }
        if total > MAX_KTABLE {
            return Err(raise!("too many Lua values in pattern"));
        }
        ffi::lua_createtable(l, total as c_int, 0);
        ffi::lua_replace(l, slots.ktable);
        let mut at = 0;
        for i in 1..=n {
            ffi::lua_rawgeti(l, slots.rules, i as ffi::lua_Integer);
            let k = pattern::test(l, -1).map_or(0, |p| p.ksize);
            pattern::push_ktable(l, -1);
            for j in 1..=k {
                ffi::lua_rawgeti(l, -1, j as ffi::lua_Integer);
                ffi::lua_rawseti(l, slots.ktable, (at + j) as ffi::lua_Integer);
            }
            ffi::lua_settop(l, -3);
            at += k;
        }
        let mut koffs = Vec::with_capacity(n);
        at = 0;
        for i in 1..=n {
            ffi::lua_rawgeti(l, slots.rules, i as ffi::lua_Integer);
            koffs.push(at);
            at += pattern::test(l, -1).map_or(0, |p| p.ksize);
            ffi::lua_settop(l, -2);
        }
        Ok((koffs, total))
    }
}

/// Rebuilds the rules with their references resolved, then checks them.
unsafe fn resolve(l: *mut lua_State, slots: &Slots, koffs: &[u32]) -> Result<Grammar, Raise> {
    let n = koffs.len();
    let mut caps = false;
    let mut bodies = Vec::with_capacity(n);
    // SAFETY: raw reads of the tables `collect` made; the rules stay referenced by
    // `slots.rules` while the trees are read.
    unsafe {
        for (i, &koff) in koffs.iter().enumerate() {
            ffi::lua_rawgeti(l, slots.rules, i as ffi::lua_Integer + 1);
            let p = pattern::test(l, -1).ok_or_else(|| raise!("pattern expected"))?;
            ffi::lua_settop(l, -2);
            caps |= p.tree.caps;
            bodies.push((p.tree.clone(), koff));
        }
        let mut rules = Vec::with_capacity(n);
        for (body, koff) in bodies {
            let body = link(l, slots, &body, koff, caps)?;
            rules.push(Rule { body, koff });
        }
        let mut seen = vec![false; n];
        let reached = captures_from(0, &rules, &mut seen);
        let mut g = Grammar {
            rules,
            caps: reached,
            nullable: vec![false; n],
            nofail: vec![false; n],
        };
        check(l, slots, &mut g)?;
        Ok(g)
    }
}

/// `t` with its open calls (ktable indices shifted by `kb`) turned into calls.
unsafe fn link(
    l: *mut lua_State,
    slots: &Slots,
    t: &Tree,
    kb: u32,
    caps: bool,
) -> Result<Tree, Raise> {
    if !t.open {
        return Ok(t.clone());
    }
    // SAFETY: forwarded.
    let sub = |p: &Tree, off: u32| unsafe { link(l, slots, p, kb + off, caps) };
    Ok(match &t.kind {
        Kind::OpenCall(k) => {
            // SAFETY: raw reads; nothing is allocated.
            unsafe {
                ffi::lua_rawgeti(l, slots.ktable, (kb + k) as ffi::lua_Integer);
                ffi::lua_pushvalue(l, -1);
                ffi::lua_rawget(l, slots.index);
                let mut isnum = 0;
                let rule = ffi::lua_tointegerx(l, -1, &mut isnum);
                if isnum == 0 {
                    return Err(raise!(
                        "rule '{}' undefined in given grammar",
                        key_text(l, -2)
                    ));
                }
                ffi::lua_settop(l, -3);
                Node::call(rule as u32 - 1, caps)
            }
        }
        Kind::Seq(a, b, off) => Node::new(Kind::Seq(sub(a, 0)?, sub(b, *off)?, *off)),
        Kind::Choice(a, b, off) => Node::new(Kind::Choice(sub(a, 0)?, sub(b, *off)?, *off)),
        Kind::Rep(p) => Node::new(Kind::Rep(sub(p, 0)?)),
        Kind::Not(p) => Node::new(Kind::Not(sub(p, 0)?)),
        Kind::And(p) => Node::new(Kind::And(sub(p, 0)?)),
        Kind::Behind(p, n) => Node::new(Kind::Behind(sub(p, 0)?, *n)),
        Kind::Capture(kind, k, p) => Node::new(Kind::Capture(*kind, *k, sub(p, 0)?)),
        Kind::RunTime(k, p) => Node::new(Kind::RunTime(*k, sub(p, 0)?)),
        _ => t.clone(),
    })
}

/// Whether a capture can come out of rule `i` or the rules it calls (rules nothing
/// reaches do not count, as in LPeg).
fn captures_from(i: usize, rules: &[Rule], seen: &mut [bool]) -> bool {
    if seen[i] {
        return false;
    }
    seen[i] = true;
    captures_in(&rules[i].body, rules, seen)
}

fn captures_in(t: &Node, rules: &[Rule], seen: &mut [bool]) -> bool {
    match &t.kind {
        Kind::Capture(..) | Kind::RunTime(..) => true,
        Kind::Call(i) => captures_from(*i as usize, rules, seen),
        Kind::Seq(a, b, _) | Kind::Choice(a, b, _) => {
            captures_in(a, rules, seen) || captures_in(b, rules, seen)
        }
        Kind::Rep(p) | Kind::Not(p) | Kind::And(p) | Kind::Behind(p, _) => {
            captures_in(p, rules, seen)
        }
        _ => t.caps,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Visit {
    New,
    Active,
    Done,
}

/// Left recursion, nullable and nofail rules, then empty loops.
unsafe fn check(l: *mut lua_State, slots: &Slots, g: &mut Grammar) -> Result<(), Raise> {
    let n = g.rules.len();
    let mut state = vec![Visit::New; n];
    let mut nullable = vec![false; n];
    for i in 0..n {
        if let Err(bad) = left(&Node::call(i as u32, false), g, &mut state, &mut nullable) {
            // SAFETY: forwarded.
            let name = unsafe { rule_name(l, slots, bad) };
            return Err(raise!("rule '{name}' may be left recursive"));
        }
    }
    g.nullable = nullable;
    let mut memo = vec![None; n];
    for i in 0..n {
        let v = nofail_rule(i, g, &mut memo);
        g.nofail[i] = v;
    }
    let ctx = Ctx { g: Some(&*g) };
    for (i, r) in g.rules.iter().enumerate() {
        if empty_loop(&r.body, &ctx) {
            // SAFETY: forwarded.
            let name = unsafe { rule_name(l, slots, i as u32) };
            return Err(raise!("empty loop in rule '{name}'"));
        }
    }
    Ok(())
}

/// The key of rule `rule` as errors show it.
///
/// # Safety
/// The key stays referenced by the keys table while the text is used.
unsafe fn rule_name<'a>(l: *mut lua_State, slots: &Slots, rule: u32) -> KeyText<'a> {
    // SAFETY: a raw read of the keys table `collect` made.
    unsafe {
        ffi::lua_rawgeti(l, slots.keys, rule as ffi::lua_Integer + 1);
        key_text(l, -1)
    }
}

/// Walks the part of `t` reached before anything is consumed: whether `t` can match
/// empty, or the rule found again on the way (left recursion).
fn left(t: &Node, g: &Grammar, state: &mut [Visit], nullable: &mut [bool]) -> Result<bool, u32> {
    match &t.kind {
        Kind::Call(i) => {
            let i = *i as usize;
            match state[i] {
                Visit::Active => Err(i as u32),
                Visit::Done => Ok(nullable[i]),
                Visit::New => {
                    state[i] = Visit::Active;
                    let r = left(&g.rules[i].body, g, state, nullable)?;
                    nullable[i] = r;
                    state[i] = Visit::Done;
                    Ok(r)
                }
            }
        }
        Kind::Seq(a, b, _) => {
            if left(a, g, state, nullable)? {
                left(b, g, state, nullable)
            } else {
                Ok(false)
            }
        }
        Kind::Choice(a, b, _) => {
            let x = left(a, g, state, nullable)?;
            let y = left(b, g, state, nullable)?;
            Ok(x || y)
        }
        Kind::Rep(p) | Kind::Not(p) | Kind::And(p) => {
            left(p, g, state, nullable)?;
            Ok(true)
        }
        Kind::Capture(_, _, p) | Kind::RunTime(_, p) => left(p, g, state, nullable),
        _ => Ok(tree::nullable(t, &Ctx::TOP)),
    }
}

fn nofail_rule(i: usize, g: &Grammar, memo: &mut [Option<bool>]) -> bool {
    if let Some(v) = memo[i] {
        return v;
    }
    // A rule met again while deciding itself is not left recursive, so it consumed
    // input before: that path is not "always succeeds" evidence.
    memo[i] = Some(false);
    let v = nofail_in(&g.rules[i].body, g, memo);
    memo[i] = Some(v);
    v
}

fn nofail_in(t: &Node, g: &Grammar, memo: &mut [Option<bool>]) -> bool {
    match &t.kind {
        Kind::Call(i) => nofail_rule(*i as usize, g, memo),
        Kind::And(p) | Kind::Capture(_, _, p) => nofail_in(p, g, memo),
        Kind::Seq(a, b, _) => nofail_in(a, g, memo) && nofail_in(b, g, memo),
        Kind::Choice(a, b, _) => nofail_in(a, g, memo) || nofail_in(b, g, memo),
        _ => tree::nofail(t, &Ctx::TOP),
    }
}

/// Whether some loop in `t` (outside nested grammars, checked when built) has a body
/// that can match empty.
fn empty_loop(t: &Node, ctx: &Ctx) -> bool {
    match &t.kind {
        Kind::Rep(p) => tree::nullable(p, ctx) || empty_loop(p, ctx),
        Kind::Seq(a, b, _) | Kind::Choice(a, b, _) => empty_loop(a, ctx) || empty_loop(b, ctx),
        Kind::Not(p) | Kind::And(p) | Kind::Behind(p, _) => empty_loop(p, ctx),
        Kind::Capture(_, _, p) | Kind::RunTime(_, p) => empty_loop(p, ctx),
        _ => false,
    }
}
