//! skynet: a Rust core for the skynet Lua actor framework.
//!
//! The layout follows skynet's own: one concept a file (handles, queues, contexts,
//! commands, timer, scheduler), native services under `cservice`, native Lua modules
//! under `luaclib`.

pub mod cabi;
pub mod command;
pub mod config;
pub mod context;
pub mod cservice;
pub mod daemon;
pub mod dispatch;
pub mod env;
pub mod handle;
pub mod harbor;
pub mod launch;
pub mod logging;
pub mod lua;
pub mod luaclib;
pub mod memory;
pub mod message;
pub mod module;
pub mod mq;
pub mod msglog;
pub mod scheduler;
pub mod send;
pub mod socket;
pub mod start;
pub mod strtol;
pub mod timer;

/// The node's allocator in the unit tests too, so a test can count the Rust heap that
/// native code leaves behind (`memory::of`).
#[cfg(test)]
#[global_allocator]
static ALLOC: memory::CountingAlloc = memory::CountingAlloc;
