//! The pattern tree: what every constructor and operator builds, and the static facts
//! the compiler asks of it (can it match the empty string, can it fail, its fixed
//! length, the bytes it can start with).
//!
//! Trees are immutable and shared (`Rc`): combining two patterns allocates one node and
//! copies nothing. A node that names a Lua value (a constant, a function, a rule name)
//! holds an index into its pattern's ktable, relative to the subtree; a binary node says
//! by how much its right child's indices are shifted in the combined ktable (`koff`), so
//! a child keeps its own numbering wherever it is reused.
//!
//! Inside a grammar, `Call(i)` names rule `i` of the nearest enclosing grammar; the facts
//! about a call come from that grammar, which the queries receive as a [`Ctx`] chain.

use super::charset::Charset;
use std::rc::Rc;

pub type Tree = Rc<Node>;

/// Deepest tree accepted: the tree passes are recursive.
pub const MAX_DEPTH: u32 = 1500;

/// The capture kinds; their numbers are the matcher's capture tags.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub enum CapKind {
    Close,
    Position,
    Const,
    Backref,
    Arg,
    Simple,
    Table,
    Function,
    Accum,
    Query,
    String,
    Num,
    Subst,
    Fold,
    Runtime,
    Group,
}

pub struct Node {
    pub kind: Kind,
    /// Whether a capture can come out of this subtree.
    pub caps: bool,
    /// Whether the subtree holds an unresolved `OpenCall`.
    pub open: bool,
    pub depth: u32,
}

pub enum Kind {
    True,
    False,
    /// `n` arbitrary bytes.
    Any(u32),
    /// A literal of at least one byte.
    Str(Box<[u8]>),
    Set(Box<Charset>),
    /// One UTF-8 encoded code point in `lo..=hi` (`hi >= 0x80`).
    Utf(u32, u32),
    Seq(Tree, Tree, u32),
    Choice(Tree, Tree, u32),
    Rep(Tree),
    Not(Tree),
    And(Tree),
    Behind(Tree, u32),
    /// A capture of a kind; its ktable index (0 = none, or the number of `p / n` and
    /// `Carg`) and the captured pattern.
    Capture(CapKind, u32, Tree),
    /// `Cmt(p, f)`: `f` at ktable index.
    RunTime(u32, Tree),
    /// `V(name)` before its grammar is known: the name's ktable index.
    OpenCall(u32),
    Call(u32),
    Grammar(Box<Grammar>),
}

pub struct Grammar {
    pub rules: Vec<Rule>,
    /// Whether any rule holds a capture.
    pub caps: bool,
    pub nullable: Vec<bool>,
    pub nofail: Vec<bool>,
}

pub struct Rule {
    pub body: Tree,
    pub koff: u32,
}

impl Node {
    pub fn new(kind: Kind) -> Tree {
        let (caps, open, depth) = match &kind {
            Kind::Seq(a, b, _) | Kind::Choice(a, b, _) => {
                (a.caps || b.caps, a.open || b.open, a.depth.max(b.depth))
            }
            Kind::Rep(p) | Kind::Not(p) | Kind::And(p) | Kind::Behind(p, _) => {
                (p.caps, p.open, p.depth)
            }
            Kind::Capture(_, _, p) | Kind::RunTime(_, p) => (true, p.open, p.depth),
            Kind::OpenCall(_) => (false, true, 0),
            Kind::Grammar(g) => (
                g.caps,
                false,
                g.rules.iter().map(|r| r.body.depth).max().unwrap_or(0),
            ),
            _ => (false, false, 0),
        };
        Rc::new(Node {
            kind,
            caps,
            open,
            depth: depth + 1,
        })
    }

    /// A call node of a grammar whose rules hold captures or not.
    pub fn call(rule: u32, caps: bool) -> Tree {
        Rc::new(Node {
            kind: Kind::Call(rule),
            caps,
            open: false,
            depth: 1,
        })
    }

    /// The tree of a set of bytes, in its simplest form (as LPeg: no byte is false,
    /// every byte is any, one byte is that byte).
    pub fn set(cs: Charset) -> Tree {
        if cs == Charset::EMPTY {
            Node::new(Kind::False)
        } else if cs == Charset::FULL {
            Node::new(Kind::Any(1))
        } else if let Some(c) = cs.only() {
            Node::new(Kind::Str(Box::new([c])))
        } else {
            Node::new(Kind::Set(Box::new(cs)))
        }
    }

    pub fn leaf_true() -> Tree {
        Node::new(Kind::True)
    }

    /// The set of bytes this pattern is, if it matches exactly one byte from a set.
    pub fn charset(&self) -> Option<Charset> {
        match &self.kind {
            Kind::Any(1) => Some(Charset::FULL),
            Kind::Str(s) if s.len() == 1 => Some(Charset::single(s[0])),
            Kind::Set(cs) => Some(**cs),
            _ => None,
        }
    }
}

/// The grammar a subtree's calls refer to: the innermost one enclosing it.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub g: Option<&'a Grammar>,
}

impl<'a> Ctx<'a> {
    pub const TOP: Ctx<'static> = Ctx { g: None };

    pub fn enter(&self, g: &'a Grammar) -> Ctx<'a> {
        Ctx { g: Some(g) }
    }

    fn rule(&self, i: u32) -> Option<&'a Grammar> {
        self.g.filter(|g| (i as usize) < g.rules.len())
    }
}

/// Whether `t` can match without consuming input.
pub fn nullable(t: &Node, ctx: &Ctx) -> bool {
    match &t.kind {
        Kind::True | Kind::Rep(_) | Kind::Not(_) | Kind::And(_) | Kind::Behind(..) => true,
        Kind::False | Kind::Any(_) | Kind::Str(_) | Kind::Set(_) | Kind::Utf(..) => false,
        Kind::OpenCall(_) => false,
        Kind::Seq(a, b, _) => nullable(a, ctx) && nullable(b, ctx),
        Kind::Choice(a, b, _) => nullable(a, ctx) || nullable(b, ctx),
        Kind::Capture(_, _, p) | Kind::RunTime(_, p) => nullable(p, ctx),
        Kind::Call(i) => ctx.rule(*i).is_some_and(|g| g.nullable[*i as usize]),
        Kind::Grammar(g) => g.nullable.first().copied().unwrap_or(false),
    }
}

/// Whether `t` always succeeds.
pub fn nofail(t: &Node, ctx: &Ctx) -> bool {
    match &t.kind {
        Kind::True | Kind::Rep(_) => true,
        Kind::False
        | Kind::Any(_)
        | Kind::Str(_)
        | Kind::Set(_)
        | Kind::Utf(..)
        | Kind::Not(_)
        | Kind::Behind(..)
        | Kind::OpenCall(_)
        | Kind::RunTime(..) => false,
        Kind::And(p) | Kind::Capture(_, _, p) => nofail(p, ctx),
        Kind::Seq(a, b, _) => nofail(a, ctx) && nofail(b, ctx),
        Kind::Choice(a, b, _) => nofail(a, ctx) || nofail(b, ctx),
        Kind::Call(i) => ctx.rule(*i).is_some_and(|g| g.nofail[*i as usize]),
        Kind::Grammar(g) => g.nofail.first().copied().unwrap_or(false),
    }
}

/// The number of bytes every match of `t` consumes, if it is fixed. `calls` bounds how
/// many rule calls are followed (a recursive rule has no fixed length).
pub fn fixedlen(t: &Node, ctx: &Ctx, calls: &mut u32) -> Option<u32> {
    match &t.kind {
        Kind::True | Kind::False | Kind::Not(_) | Kind::And(_) | Kind::Behind(..) => Some(0),
        Kind::Any(n) => Some(*n),
        Kind::Str(s) => u32::try_from(s.len()).ok(),
        Kind::Set(_) => Some(1),
        Kind::Utf(lo, hi) => {
            let n = super::utf::encoded_len(*lo);
            (n == super::utf::encoded_len(*hi)).then_some(n)
        }
        Kind::Rep(_) | Kind::RunTime(..) | Kind::OpenCall(_) => None,
        Kind::Seq(a, b, _) => fixedlen(a, ctx, calls)?.checked_add(fixedlen(b, ctx, calls)?),
        Kind::Choice(a, b, _) => {
            let n = fixedlen(a, ctx, calls)?;
            (fixedlen(b, ctx, calls)? == n).then_some(n)
        }
        Kind::Capture(_, _, p) => fixedlen(p, ctx, calls),
        Kind::Call(i) => {
            let g = ctx.rule(*i)?;
            if *calls == 0 {
                return None;
            }
            *calls -= 1;
            fixedlen(&g.rules[*i as usize].body, ctx, calls)
        }
        Kind::Grammar(g) => {
            let inner = ctx.enter(g);
            fixedlen(&g.rules.first()?.body, &inner, calls)
        }
    }
}

/// Whether `t` can fail only by failing on its first byte, so a test of that byte can
/// stand for it.
pub fn headfail(t: &Node, ctx: &Ctx) -> bool {
    match &t.kind {
        Kind::Any(1) | Kind::Set(_) | Kind::False => true,
        Kind::Str(s) => s.len() == 1,
        Kind::Any(_)
        | Kind::True
        | Kind::Rep(_)
        | Kind::RunTime(..)
        | Kind::Not(_)
        | Kind::Behind(..)
        | Kind::Utf(..)
        | Kind::OpenCall(_) => false,
        Kind::Capture(_, _, p) | Kind::And(p) => headfail(p, ctx),
        Kind::Seq(a, b, _) => nofail(b, ctx) && headfail(a, ctx),
        Kind::Choice(a, b, _) => headfail(a, ctx) && headfail(b, ctx),
        Kind::Call(i) => ctx
            .rule(*i)
            .is_some_and(|g| headfail(&g.rules[*i as usize].body, ctx)),
        Kind::Grammar(g) => {
            let inner = ctx.enter(g);
            g.rules.first().is_some_and(|r| headfail(&r.body, &inner))
        }
    }
}

/// The bytes a match of `t` followed by something starting with `follow` can start
/// with, and whether `t` may match without consuming (then the set says nothing about
/// the end of the subject, and a test on it must not replace `t`).
pub fn first(t: &Node, follow: &Charset, ctx: &Ctx) -> (Charset, bool) {
    match &t.kind {
        Kind::Any(_) => (Charset::FULL, false),
        Kind::Str(s) => (Charset::single(s[0]), false),
        Kind::Set(cs) => (**cs, false),
        Kind::Utf(lo, hi) => (
            Charset::range(super::utf::lead(*lo), super::utf::lead(*hi)),
            false,
        ),
        Kind::True => (*follow, true),
        Kind::False => (Charset::EMPTY, false),
        Kind::Seq(a, b, _) => {
            if !nullable(a, ctx) {
                first(a, &Charset::FULL, ctx)
            } else {
                let (fb, eb) = first(b, follow, ctx);
                let (fa, ea) = first(a, &fb, ctx);
                (fa, ea && eb)
            }
        }
        Kind::Choice(a, b, _) => {
            let (fa, ea) = first(a, follow, ctx);
            let (fb, eb) = first(b, follow, ctx);
            (fa.union(&fb), ea || eb)
        }
        Kind::Rep(p) => {
            let (fp, _) = first(p, follow, ctx);
            (fp.union(follow), true)
        }
        Kind::Capture(_, _, p) => first(p, follow, ctx),
        // A function can fail or succeed anywhere: what follows it is unknown.
        Kind::RunTime(_, p) => {
            let (fp, _) = first(p, &Charset::FULL, ctx);
            (fp, true)
        }
        Kind::And(p) => {
            let (fp, e) = first(p, follow, ctx);
            (fp.inter(follow), e)
        }
        Kind::Not(p) => match p.charset() {
            Some(cs) => (cs.complement(), true),
            None => (*follow, true),
        },
        Kind::Behind(..) => (*follow, true),
        Kind::OpenCall(_) => (Charset::FULL, true),
        Kind::Call(i) => match ctx.rule(*i) {
            Some(g) => first(&g.rules[*i as usize].body, follow, ctx),
            None => (Charset::FULL, true),
        },
        Kind::Grammar(g) => {
            let inner = ctx.enter(g);
            match g.rules.first() {
                Some(r) => first(&r.body, follow, &inner),
                None => (Charset::FULL, true),
            }
        }
    }
}

/// Whether `t` may call a match-time capture's function before consuming anything:
/// such a pattern is never skipped by a test, since the call itself is observable.
pub fn runs_first(t: &Node, ctx: &Ctx) -> bool {
    match &t.kind {
        Kind::RunTime(..) => true,
        Kind::Seq(a, b, _) => runs_first(a, ctx) || (nullable(a, ctx) && runs_first(b, ctx)),
        Kind::Choice(a, b, _) => runs_first(a, ctx) || runs_first(b, ctx),
        Kind::Rep(p) | Kind::Not(p) | Kind::And(p) | Kind::Capture(_, _, p) => runs_first(p, ctx),
        Kind::Call(i) => ctx
            .rule(*i)
            .is_some_and(|g| g.caps && runs_first(&g.rules[*i as usize].body, ctx)),
        Kind::Grammar(g) => {
            let inner = ctx.enter(g);
            g.rules.first().is_some_and(|r| runs_first(&r.body, &inner))
        }
        _ => false,
    }
}
