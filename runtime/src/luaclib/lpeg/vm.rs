//! The matcher: runs a compiled program over a subject with one backtrack stack (choice
//! points and return addresses) and records captures as a flat list of entries, which
//! are turned into Lua values only after the whole match succeeded (see `capture`).
//!
//! The only Lua work during a match is a match-time capture (`Cmt`), which the
//! environment runs under a protected call; its values stay on the Lua stack and are
//! dropped again when the match backtracks past them.

use super::capture::{self, Cap, Env, OPEN};
use super::compile::{Op, Program};
use super::tree::CapKind;
use crate::lua::raise::{raise, Raise};

/// A backtrack entry: a choice point, or a return address when `s == CALL`.
#[derive(Clone, Copy)]
struct Frame {
    s: usize,
    p: u32,
    caplevel: u32,
}

const CALL: usize = usize::MAX;

/// The vectors a match works in, kept by the pattern between matches.
#[derive(Default)]
pub struct Buffers {
    stack: Vec<Frame>,
    pub caps: Vec<Cap>,
}

/// The index of the open entry the last unmatched `Close` would close.
pub fn open_of(caps: &[Cap]) -> usize {
    let mut depth = 0usize;
    for i in (0..caps.len()).rev() {
        let c = &caps[i];
        if c.kind == CapKind::Close {
            depth += 1;
        } else if c.is_open() {
            if depth == 0 {
                return i;
            }
            depth -= 1;
        }
    }
    0
}

/// Drops the captures from `level` on, and the Lua values of the match-time captures
/// among them.
fn cut(caps: &mut Vec<Cap>, level: usize, ndyn: &mut usize, env: &mut Env) {
    if *ndyn > 0 {
        let mut lowest = None;
        for c in &caps[level..] {
            if c.kind == CapKind::Runtime && !c.is_open() {
                *ndyn -= 1;
                lowest = Some(lowest.map_or(c.k, |l: u32| l.min(c.k)));
            }
        }
        if let Some(k) = lowest {
            env.settop(k as i32 - 1);
        }
    }
    caps.truncate(level);
}

/// Runs `prog` from byte `init`: the end of the match, or `None` when it fails.
///
/// # Safety
/// `env` must describe the stack of the running `lpeg.match`, and every frame up to its
/// entry may only borrow: a match-time capture's function may raise.
pub unsafe fn run(
    prog: &Program,
    subject: &[u8],
    init: usize,
    bufs: &mut Buffers,
    env: &mut Env,
) -> Result<Option<usize>, Raise> {
    let code = &prog.code[..];
    let sets = &prog.sets[..];
    let len = subject.len();
    let stack = &mut bufs.stack;
    let caps = &mut bufs.caps;
    stack.clear();
    caps.clear();
    let max = env.max_stack();
    let mut ndyn = 0usize;
    let mut s = init;
    let mut pc = 0usize;
    macro_rules! push {
        ($f:expr) => {{
            if stack.len() >= max {
                return Err(raise!("backtrack stack overflow (current limit is {max})"));
            }
            stack.push($f);
        }};
    }
    loop {
        let ok = match code[pc] {
            Op::Any(n) => {
                let ok = len - s >= n as usize;
                if ok {
                    s += n as usize;
                    pc += 1;
                }
                ok
            }
            Op::Char(c) => {
                let ok = s < len && subject[s] == c;
                if ok {
                    s += 1;
                    pc += 1;
                }
                ok
            }
            Op::Set(i) => {
                let ok = s < len && sets[i as usize].has(subject[s]);
                if ok {
                    s += 1;
                    pc += 1;
                }
                ok
            }
            Op::Span(i) => {
                let cs = &sets[i as usize];
                while s < len && cs.has(subject[s]) {
                    s += 1;
                }
                pc += 1;
                true
            }
            Op::Utf(lo, hi) => match super::utf::decode(&subject[s..]) {
                Some((cp, n)) if lo <= cp && cp <= hi => {
                    s += n;
                    pc += 1;
                    true
                }
                _ => false,
            },
            Op::TestAny(l) => {
                pc = if s < len { pc + 1 } else { l as usize };
                true
            }
            Op::TestChar(c, l) => {
                pc = if s < len && subject[s] == c {
                    pc + 1
                } else {
                    l as usize
                };
                true
            }
            Op::TestSet(i, l) => {
                pc = if s < len && sets[i as usize].has(subject[s]) {
                    pc + 1
                } else {
                    l as usize
                };
                true
            }
            Op::Behind(n) => {
                let ok = n as usize <= s;
                if ok {
                    s -= n as usize;
                    pc += 1;
                }
                ok
            }
            Op::Ret => {
                match stack.pop() {
                    Some(f) => pc = f.p as usize,
                    None => return Ok(Some(s)),
                }
                true
            }
            Op::End => return Ok(Some(s)),
            Op::Choice(l) => {
                push!(Frame {
                    s,
                    p: l,
                    caplevel: caps.len() as u32,
                });
                pc += 1;
                true
            }
            Op::Jmp(l) => {
                pc = l as usize;
                true
            }
            Op::Call(l) => {
                push!(Frame {
                    s: CALL,
                    p: pc as u32 + 1,
                    caplevel: 0,
                });
                pc = l as usize;
                true
            }
            Op::Commit(l) => {
                stack.pop();
                pc = l as usize;
                true
            }
            Op::PartialCommit(l) => {
                if let Some(f) = stack.last_mut() {
                    f.s = s;
                    f.caplevel = caps.len() as u32;
                }
                pc = l as usize;
                true
            }
            Op::BackCommit(l) => {
                if let Some(f) = stack.pop() {
                    s = f.s;
                    cut(caps, f.caplevel as usize, &mut ndyn, env);
                }
                pc = l as usize;
                true
            }
            Op::FailTwice => {
                stack.pop();
                false
            }
            Op::Fail => false,
            Op::FullCap(kind, k, n) => {
                caps.push(Cap {
                    s: s - n as usize,
                    len: n as usize,
                    k,
                    kind,
                });
                pc += 1;
                true
            }
            Op::OpenCap(kind, k) => {
                caps.push(Cap {
                    s,
                    len: OPEN,
                    k,
                    kind,
                });
                pc += 1;
                true
            }
            Op::CloseCap => {
                match caps.last_mut() {
                    Some(c) if c.is_open() => c.len = s - c.s,
                    _ => caps.push(Cap {
                        s,
                        len: 0,
                        k: 0,
                        kind: CapKind::Close,
                    }),
                }
                pc += 1;
                true
            }
            Op::CloseRunTime => {
                let open = open_of(caps);
                caps.push(Cap {
                    s,
                    len: 0,
                    k: 0,
                    kind: CapKind::Close,
                });
                // SAFETY: forwarded; this frame only borrows.
                match unsafe { capture::runtime(env, subject, caps, open, s)? } {
                    None => false,
                    Some((np, first, n)) => {
                        // The values of match-time captures nested in this one were
                        // consumed by its function: its results take their place, as
                        // an anonymous group spanning what it matched.
                        let mut lowest: Option<u32> = None;
                        for c in &caps[open + 1..] {
                            if c.kind == CapKind::Runtime && !c.is_open() {
                                ndyn -= 1;
                                lowest = Some(lowest.map_or(c.k, |l| l.min(c.k)));
                            }
                        }
                        let base = match lowest {
                            Some(k) => env.move_values(first, n, k as i32),
                            None => first,
                        };
                        s = np;
                        if n == 0 {
                            caps.truncate(open);
                        } else {
                            caps.truncate(open + 1);
                            caps[open].kind = CapKind::Group;
                            caps[open].k = 0;
                            for i in 0..n {
                                caps.push(Cap {
                                    s,
                                    len: 0,
                                    k: (base + i) as u32,
                                    kind: CapKind::Runtime,
                                });
                            }
                            caps.push(Cap {
                                s,
                                len: 0,
                                k: 0,
                                kind: CapKind::Close,
                            });
                            ndyn += n as usize;
                        }
                        pc += 1;
                        true
                    }
                }
            }
        };
        if ok {
            continue;
        }
        loop {
            match stack.pop() {
                None => return Ok(None),
                Some(f) if f.s != CALL => {
                    s = f.s;
                    pc = f.p as usize;
                    if caps.len() > f.caplevel as usize {
                        cut(caps, f.caplevel as usize, &mut ndyn, env);
                    }
                    break;
                }
                Some(_) => {}
            }
        }
    }
}
