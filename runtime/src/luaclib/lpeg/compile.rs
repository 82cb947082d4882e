//! The compiler: a pattern tree becomes a flat instruction vector for the matcher.
//!
//! The optimisations are the ones a PEG with a backtrack stack needs to run in constant
//! stack: a choice or a loop whose body can only fail on its first byte, or whose first
//! bytes cannot start what comes after it, is guarded by a test instruction instead of
//! a backtrack entry; a repeated set becomes one `Span`; a predicate on a fixed-length
//! pattern without captures steps back instead of backtracking; a call followed by a
//! return becomes a jump (tail call); jump chains are shortened.

use super::charset::Charset;
use super::tree::{self, CapKind, Ctx, Kind, Node};

#[derive(Clone, Copy, Debug)]
pub enum Op {
    /// Consume `n` bytes.
    Any(u32),
    Char(u8),
    Set(u32),
    Span(u32),
    Utf(u32, u32),
    TestAny(u32),
    TestChar(u8, u32),
    TestSet(u32, u32),
    Behind(u32),
    Ret,
    End,
    Choice(u32),
    Jmp(u32),
    Call(u32),
    Commit(u32),
    PartialCommit(u32),
    BackCommit(u32),
    FailTwice,
    Fail,
    /// A capture of a fixed length ending here: kind, value index, length.
    FullCap(CapKind, u32, u32),
    OpenCap(CapKind, u32),
    CloseCap,
    CloseRunTime,
}

pub struct Program {
    pub code: Vec<Op>,
    pub sets: Vec<Charset>,
}

/// The code of one grammar being compiled: where each rule starts, and the calls to
/// patch once all are placed.
struct Frame {
    starts: Vec<u32>,
    calls: Vec<(usize, u32)>,
}

struct Compiler {
    code: Vec<Op>,
    sets: Vec<Charset>,
    frames: Vec<Frame>,
}

/// Whether a capture kind's index names a ktable value (and is shifted with it).
fn keyed(kind: CapKind) -> bool {
    !matches!(
        kind,
        CapKind::Position
            | CapKind::Arg
            | CapKind::Simple
            | CapKind::Table
            | CapKind::Num
            | CapKind::Subst
            | CapKind::Close
    )
}

pub fn compile(t: &Node) -> Program {
    let mut c = Compiler {
        code: Vec::new(),
        sets: Vec::new(),
        frames: Vec::new(),
    };
    c.gen(t, &Ctx::TOP, 0, None, &Charset::FULL);
    c.code.push(Op::End);
    c.peephole();
    Program {
        code: c.code,
        sets: c.sets,
    }
}

impl Compiler {
    fn here(&self) -> u32 {
        self.code.len() as u32
    }

    fn set(&mut self, cs: &Charset) -> u32 {
        if let Some(i) = self.sets.iter().position(|s| s == cs) {
            return i as u32;
        }
        self.sets.push(*cs);
        (self.sets.len() - 1) as u32
    }

    /// A test that jumps (to be patched) when the next byte is not in `cs`.
    fn test(&mut self, cs: &Charset) -> usize {
        let op = if *cs == Charset::FULL {
            Op::TestAny(0)
        } else if let Some(c) = cs.only() {
            Op::TestChar(c, 0)
        } else {
            Op::TestSet(self.set(cs), 0)
        };
        self.code.push(op);
        self.code.len() - 1
    }

    fn jump(&mut self, op: Op) -> usize {
        self.code.push(op);
        self.code.len() - 1
    }

    /// Points the jump at `at` to `to`.
    fn patch(&mut self, at: usize, to: u32) {
        match &mut self.code[at] {
            Op::TestAny(l)
            | Op::TestChar(_, l)
            | Op::TestSet(_, l)
            | Op::Choice(l)
            | Op::Jmp(l)
            | Op::Call(l)
            | Op::Commit(l)
            | Op::PartialCommit(l)
            | Op::BackCommit(l) => *l = to,
            _ => {}
        }
    }

    fn patch_here(&mut self, at: usize) {
        let to = self.here();
        self.patch(at, to);
    }

    /// One byte of `cs`; `tested` is what a test just before already checked.
    fn byte(&mut self, cs: &Charset, tested: Option<&Charset>) {
        let op = if *cs == Charset::FULL || tested.is_some_and(|t| t.minus(cs) == Charset::EMPTY) {
            Op::Any(1)
        } else if let Some(c) = cs.only() {
            Op::Char(c)
        } else if *cs == Charset::EMPTY {
            Op::Fail
        } else {
            Op::Set(self.set(cs))
        };
        self.code.push(op);
    }

    fn gen(&mut self, t: &Node, ctx: &Ctx, kb: u32, tested: Option<&Charset>, follow: &Charset) {
        match &t.kind {
            Kind::True => {}
            Kind::False | Kind::OpenCall(_) => self.code.push(Op::Fail),
            Kind::Any(1) => self.byte(&Charset::FULL, tested),
            Kind::Any(n) => self.code.push(Op::Any(*n)),
            Kind::Str(s) => {
                self.byte(&Charset::single(s[0]), tested);
                self.code.extend(s[1..].iter().map(|&c| Op::Char(c)));
            }
            Kind::Set(cs) => self.byte(cs, tested),
            Kind::Utf(lo, hi) => self.code.push(Op::Utf(*lo, *hi)),
            Kind::Seq(a, b, off) => {
                let fa = if matches!(a.kind, Kind::Rep(_) | Kind::Choice(..) | Kind::Seq(..)) {
                    tree::first(b, follow, ctx).0
                } else {
                    Charset::FULL
                };
                self.gen(a, ctx, kb, tested, &fa);
                let tb = if tree::fixedlen(a, ctx, &mut 8) == Some(0) {
                    tested
                } else {
                    None
                };
                self.gen(b, ctx, kb + off, tb, follow);
            }
            Kind::Choice(a, b, off) => self.choice(a, b, ctx, kb, kb + off, tested, follow),
            Kind::Rep(p) => self.rep(p, ctx, kb, follow),
            Kind::Not(p) => self.not(p, ctx, kb),
            Kind::And(p) => self.and(p, ctx, kb, tested),
            Kind::Behind(p, n) => {
                if *n > 0 {
                    self.code.push(Op::Behind(*n));
                }
                self.gen(p, ctx, kb, None, &Charset::FULL);
            }
            Kind::Capture(kind, k, p) => {
                let k = if keyed(*kind) && *k != 0 { kb + k } else { *k };
                match (p.caps, tree::fixedlen(p, ctx, &mut 8)) {
                    (false, Some(n)) => {
                        self.gen(p, ctx, kb, tested, follow);
                        self.code.push(Op::FullCap(*kind, k, n));
                    }
                    _ => {
                        self.code.push(Op::OpenCap(*kind, k));
                        self.gen(p, ctx, kb, tested, follow);
                        self.code.push(Op::CloseCap);
                    }
                }
            }
            Kind::RunTime(k, p) => {
                self.code.push(Op::OpenCap(CapKind::Runtime, kb + k));
                self.gen(p, ctx, kb, tested, &Charset::FULL);
                self.code.push(Op::CloseRunTime);
            }
            Kind::Call(i) => {
                let at = self.jump(Op::Call(0));
                if let Some(f) = self.frames.last_mut() {
                    f.calls.push((at, *i));
                }
            }
            Kind::Grammar(g) => {
                let inner = ctx.enter(g);
                let call = self.jump(Op::Call(0));
                let skip = self.jump(Op::Jmp(0));
                self.frames.push(Frame {
                    starts: Vec::with_capacity(g.rules.len()),
                    calls: vec![(call, 0)],
                });
                for r in &g.rules {
                    let start = self.here();
                    if let Some(f) = self.frames.last_mut() {
                        f.starts.push(start);
                    }
                    self.gen(&r.body, &inner, kb + r.koff, None, &Charset::FULL);
                    self.code.push(Op::Ret);
                }
                if let Some(f) = self.frames.pop() {
                    for (at, rule) in f.calls {
                        let to = f.starts.get(rule as usize).copied().unwrap_or(0);
                        self.patch(at, to);
                    }
                }
                self.patch_here(skip);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn choice(
        &mut self,
        a: &Node,
        b: &Node,
        ctx: &Ctx,
        ka: u32,
        kb: u32,
        tested: Option<&Charset>,
        follow: &Charset,
    ) {
        if tree::nofail(a, ctx) {
            self.gen(a, ctx, ka, tested, follow);
            return;
        }
        let (fa, ea) = tree::first(a, &Charset::FULL, ctx);
        let ea = ea || tree::runs_first(a, ctx);
        let disjoint = || !tree::runs_first(b, ctx) && fa.disjoint(&tree::first(b, follow, ctx).0);
        if tree::headfail(a, ctx) || (!ea && disjoint()) {
            let test = self.test(&fa);
            self.gen(a, ctx, ka, Some(&fa), follow);
            let done = self.jump(Op::Jmp(0));
            self.patch_here(test);
            self.gen(b, ctx, kb, tested, follow);
            self.patch_here(done);
        } else {
            let test = (!ea).then(|| self.test(&fa));
            let choice = self.jump(Op::Choice(0));
            // A failure inside `a` goes back to `b`, not out: what follows the
            // choice says nothing about it.
            self.gen(a, ctx, ka, test.map(|_| &fa), &Charset::FULL);
            let commit = self.jump(Op::Commit(0));
            self.patch_here(choice);
            if let Some(test) = test {
                self.patch_here(test);
            }
            self.gen(b, ctx, kb, tested, follow);
            self.patch_here(commit);
        }
    }

    fn rep(&mut self, p: &Node, ctx: &Ctx, kb: u32, follow: &Charset) {
        if let Some(cs) = p.charset() {
            let i = self.set(&cs);
            self.code.push(Op::Span(i));
            return;
        }
        let (fp, ep) = tree::first(p, &Charset::FULL, ctx);
        let ep = ep || tree::runs_first(p, ctx);
        if tree::headfail(p, ctx) || (!ep && fp.disjoint(follow)) {
            let top = self.here();
            let test = self.test(&fp);
            self.gen(p, ctx, kb, Some(&fp), &Charset::FULL);
            self.code.push(Op::Jmp(top));
            self.patch_here(test);
        } else {
            let test = (!ep).then(|| self.test(&fp));
            let choice = self.jump(Op::Choice(0));
            let top = self.here();
            // Later rounds jump back past the test: nothing is known of the byte.
            self.gen(p, ctx, kb, None, &Charset::FULL);
            self.code.push(Op::PartialCommit(top));
            self.patch_here(choice);
            if let Some(test) = test {
                self.patch_here(test);
            }
        }
    }

    fn not(&mut self, p: &Node, ctx: &Ctx, kb: u32) {
        if let Some(cs) = p.charset() {
            let test = self.test(&cs);
            self.code.push(Op::Fail);
            self.patch_here(test);
        } else {
            let choice = self.jump(Op::Choice(0));
            self.gen(p, ctx, kb, None, &Charset::FULL);
            self.code.push(Op::FailTwice);
            self.patch_here(choice);
        }
    }

    fn and(&mut self, p: &Node, ctx: &Ctx, kb: u32, tested: Option<&Charset>) {
        match tree::fixedlen(p, ctx, &mut 8) {
            Some(n) if !p.caps && n <= super::MAX_BEHIND => {
                self.gen(p, ctx, kb, tested, &Charset::FULL);
                if n > 0 {
                    self.code.push(Op::Behind(n));
                }
            }
            _ => {
                let choice = self.jump(Op::Choice(0));
                self.gen(p, ctx, kb, tested, &Charset::FULL);
                let back = self.jump(Op::BackCommit(0));
                self.patch_here(choice);
                self.code.push(Op::Fail);
                self.patch_here(back);
            }
        }
    }

    /// Where a jump to `to` really lands, past chains of plain jumps.
    fn land(&self, mut to: u32) -> u32 {
        for _ in 0..self.code.len() {
            match self.code.get(to as usize) {
                Some(Op::Jmp(next)) if *next != to => to = *next,
                _ => break,
            }
        }
        to
    }

    fn peephole(&mut self) {
        for pc in 0..self.code.len() {
            let op = self.code[pc];
            match op {
                Op::Jmp(l) => {
                    let to = self.land(l);
                    self.code[pc] = match self.code[to as usize] {
                        Op::Ret => Op::Ret,
                        Op::End => Op::End,
                        Op::Fail => Op::Fail,
                        _ => Op::Jmp(to),
                    };
                }
                Op::Call(l) => {
                    let after = self.land(pc as u32 + 1);
                    if matches!(self.code.get(after as usize), Some(Op::Ret)) {
                        self.code[pc] = Op::Jmp(self.land(l));
                    }
                }
                Op::Choice(l)
                | Op::Commit(l)
                | Op::PartialCommit(l)
                | Op::BackCommit(l)
                | Op::TestAny(l)
                | Op::TestChar(_, l)
                | Op::TestSet(_, l) => {
                    let to = self.land(l);
                    self.patch(pc, to);
                }
                _ => {}
            }
        }
    }
}
