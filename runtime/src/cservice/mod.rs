//! Native services, one file each, found by module name as `LAUNCH` gives it; a name
//! that is none of them is a C service on `cpath` (`cmodule.rs`).

pub mod cmodule;
pub mod gate;
pub mod harbor;
pub mod logger;
pub mod snlua;

use crate::module;

/// Makes every native service launchable by name, and the C services on `cpath`.
pub fn register_all() {
    module::register("snlua", snlua::create);
    module::register("logger", logger::create);
    module::register("harbor", harbor::create);
    module::register("gate", gate::create);
    module::set_search(cmodule::search);
}
