//! Native services, one file each, found by module name as `LAUNCH` gives it.

pub mod gate;
pub mod harbor;
pub mod logger;
pub mod snlua;

use crate::context::{Context, InitFailed, Service};
use std::sync::Arc;

/// Creates and initialises an instance for `ctx` with the launch parameter.
pub type Create = fn(&Arc<Context>, Option<&str>) -> Result<Box<dyn Service>, InitFailed>;

pub fn find(module: &str) -> Option<Create> {
    match module {
        "snlua" => Some(snlua::create),
        "logger" => Some(logger::create),
        "harbor" => Some(harbor::create),
        "gate" => Some(gate::create),
        _ => None,
    }
}
