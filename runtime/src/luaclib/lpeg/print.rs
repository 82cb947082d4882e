//! `lpeg.ptree`'s text: a pattern tree, one node a line, indented by depth.

use super::tree::{Kind, Node};
use std::fmt::Write;

pub fn tree(t: &Node) -> String {
    let mut out = String::new();
    node(t, 0, &mut out);
    out
}

fn node(t: &Node, depth: usize, out: &mut String) {
    let pad = depth * 2;
    // Writing to a String cannot fail.
    let _ = match &t.kind {
        Kind::True => writeln!(out, "{:pad$}true", ""),
        Kind::False => writeln!(out, "{:pad$}false", ""),
        Kind::Any(n) => writeln!(out, "{:pad$}any {n}", ""),
        Kind::Str(s) => writeln!(out, "{:pad$}string {:?}", "", String::from_utf8_lossy(s)),
        Kind::Set(cs) => writeln!(out, "{:pad$}set {:x?}", "", cs.0),
        Kind::Utf(lo, hi) => writeln!(out, "{:pad$}utf {lo:#x}-{hi:#x}", ""),
        Kind::Seq(..) => writeln!(out, "{:pad$}seq", ""),
        Kind::Choice(..) => writeln!(out, "{:pad$}choice", ""),
        Kind::Rep(_) => writeln!(out, "{:pad$}rep", ""),
        Kind::Not(_) => writeln!(out, "{:pad$}not", ""),
        Kind::And(_) => writeln!(out, "{:pad$}and", ""),
        Kind::Behind(_, n) => writeln!(out, "{:pad$}behind {n}", ""),
        Kind::Capture(kind, k, _) => writeln!(out, "{:pad$}capture {kind:?} {k}", ""),
        Kind::RunTime(k, _) => writeln!(out, "{:pad$}runtime {k}", ""),
        Kind::OpenCall(k) => writeln!(out, "{:pad$}opencall {k}", ""),
        Kind::Call(i) => writeln!(out, "{:pad$}call rule {i}", ""),
        Kind::Grammar(g) => writeln!(out, "{:pad$}grammar {} rules", "", g.rules.len()),
    };
    match &t.kind {
        Kind::Seq(a, b, _) | Kind::Choice(a, b, _) => {
            node(a, depth + 1, out);
            node(b, depth + 1, out);
        }
        Kind::Rep(p)
        | Kind::Not(p)
        | Kind::And(p)
        | Kind::Behind(p, _)
        | Kind::Capture(_, _, p)
        | Kind::RunTime(_, p) => node(p, depth + 1, out),
        Kind::Grammar(g) => {
            for r in &g.rules {
                node(&r.body, depth + 1, out);
            }
        }
        _ => {}
    }
}
