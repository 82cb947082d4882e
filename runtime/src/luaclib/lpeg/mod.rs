//! `lpeg`: Parsing Expression Grammars for Lua, the LPeg 1.1 API, written here.
//!
//! A pattern is a tree ([`tree`]) built by the constructors and operators ([`api`]) from
//! arguments made patterns by [`coerce`], with its Lua values in a ktable ([`pattern`]);
//! grammars are resolved and checked when built ([`grammar`]). On its first match a
//! pattern is compiled ([`compile`]) to an instruction vector that the matcher ([`vm`])
//! runs with a backtrack stack; the captures it records become Lua values only once the
//! match succeeded ([`capture`]).

mod api;
mod capture;
mod charset;
mod coerce;
mod compile;
mod grammar;
mod pattern;
mod print;
mod tree;
mod utf;
mod vm;

pub use api::open;

/// Longest pattern `lpeg.B` looks behind.
const MAX_BEHIND: u32 = 255;
