//! Native service modules by name, as `LAUNCH` names them (upstream's `skynet_module`).
//!
//! The node registers its built-in modules at boot (`cservice::register_all`); `LAUNCH`
//! looks them up here, so the code that launches services knows no module by name.

use crate::context::{Context, InitFailed, Service};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

/// Creates and initialises an instance for `ctx` with the launch parameter.
pub type Create = fn(&Arc<Context>, Option<&str>) -> Result<Box<dyn Service>, InitFailed>;

static MODULES: LazyLock<RwLock<HashMap<String, Create>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// Makes `name` launchable; a later registration of the same name replaces it.
pub fn register(name: &str, create: Create) {
    MODULES.write().insert(name.to_owned(), create);
}

/// The module called `name`, if registered.
pub fn find(name: &str) -> Option<Create> {
    MODULES.read().get(name).copied()
}
