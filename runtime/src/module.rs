//! Native service modules by name, as `LAUNCH` names them (upstream's `skynet_module`).
//!
//! The node registers its built-in modules at boot (`cservice::register_all`), and a
//! search for the others (the C services on `cpath`, `cservice/cmodule.rs`), which
//! registers each module it loads here, so a module is loaded once and shared by its
//! instances. `LAUNCH` looks modules up here and knows none by name.

use crate::context::{Context, InitFailed, Service};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock};

/// Creates and initialises an instance for `ctx` with the launch parameter.
pub type Create =
    Arc<dyn Fn(&Arc<Context>, Option<&str>) -> Result<Box<dyn Service>, InitFailed> + Send + Sync>;

/// Finds a module that is not registered yet, registering it; None (having said why on
/// stderr, as upstream) when there is none.
pub type Search = fn(&str) -> Option<Create>;

static MODULES: LazyLock<RwLock<HashMap<String, Create>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

static SEARCH: OnceLock<Search> = OnceLock::new();

/// Makes `name` launchable; a later registration of the same name replaces it.
pub fn register(
    name: &str,
    create: impl Fn(&Arc<Context>, Option<&str>) -> Result<Box<dyn Service>, InitFailed>
        + Send
        + Sync
        + 'static,
) {
    MODULES.write().insert(name.to_owned(), Arc::new(create));
}

/// Sets where modules that are not registered are looked for (once, at boot).
pub fn set_search(search: Search) {
    let _ = SEARCH.set(search);
}

/// The module registered as `name`, if any.
pub fn registered(name: &str) -> Option<Create> {
    MODULES.read().get(name).cloned()
}

/// The module called `name`: a registered one, or else what the search finds.
pub fn find(name: &str) -> Option<Create> {
    if let Some(create) = registered(name) {
        return Some(create);
    }
    match SEARCH.get() {
        Some(search) => search(name),
        None => {
            eprintln!("try open {name} failed : no such native service");
            None
        }
    }
}
