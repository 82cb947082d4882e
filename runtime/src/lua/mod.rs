//! Hosting Lua VMs: everything the core does to a `lua_State` that is not a Lua module.
//!
//! The vendored Lua 5.5.1 is patched to share compiled prototypes, strings and library
//! layouts between VMs (vendor/lua-src/README.md); [`lshared`] declares that C API once.
//! [`codecache`] compiles each file once and hands out closures of the shared prototype,
//! [`stdlibs`] lays a new VM's standard libraries down from templates, [`host`] is what a
//! service's VM shares with the node (its allocator's accounting, its callback slot, its
//! signal trap), [`stack`] holds the helpers every native module uses to read and push
//! values, and [`raise`] is the one way native code raises a Lua error. [`interpreter`]
//! is `skynet lua`.

pub mod codecache;
pub mod host;
pub mod interpreter;
pub mod lshared;
pub mod raise;
pub mod stack;
pub mod stdlibs;
mod warn;

#[cfg(test)]
mod patch_tests;
#[cfg(test)]
pub(crate) mod testvm;
