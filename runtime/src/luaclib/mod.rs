//! Native Lua modules, one file each (a directory for lpeg), named after the module.
//! Every snlua VM finds them in `package.preload`, so they win over any `.so` on
//! `lua_cpath` (Lua's own C searcher loads those; setting `package.preload[name] = nil`
//! before `require` makes a service take the `.so` instead).

pub mod bson;
pub mod clientsocket;
pub mod cluster;
pub mod core;
pub mod crypt;
pub mod datasheet;
pub mod debugchannel;
pub mod lpeg;
pub mod md5;
pub mod memory;
pub mod mongo;
pub mod multicast;
pub mod netpack;
pub mod profile;
pub mod seri;
pub mod sharedata;
pub mod sharetable;
pub mod socketdriver;
pub mod sproto;
pub mod stm;

use crate::lua::stack as lua;
use mlua::ffi::lua_State;

/// Registers the built-in modules in `package.preload`.
///
/// # Safety
/// `l` must be a valid Lua state with the package library open.
pub unsafe fn preload_all(l: *mut lua_State) {
    // SAFETY: forwarded.
    unsafe {
        lua::preload(l, c"skynet.core", core::open);
        lua::preload(l, c"skynet.memory", memory::open);
        lua::preload(l, c"skynet.netpack", netpack::open);
        lua::preload(l, c"skynet.crypt", crypt::open);
        lua::preload(l, c"skynet.socketdriver", socketdriver::open);
        lua::preload(l, c"skynet.cluster.core", cluster::open);
        lua::preload(l, c"skynet.stm", stm::open);
        lua::preload(l, c"skynet.sharedata.core", sharedata::open);
        lua::preload(l, c"skynet.sharetable.core", sharetable::open);
        lua::preload(l, c"skynet.datasheet.core", datasheet::open);
        lua::preload(l, c"bson", bson::open);
        lua::preload(l, c"md5.core", md5::open);
        lua::preload(l, c"lpeg", lpeg::open);
        lua::preload(l, c"skynet.mongo.driver", mongo::open);
        lua::preload(l, c"skynet.multicast.core", multicast::open);
        lua::preload(l, c"skynet.debugchannel", debugchannel::open);
        lua::preload(l, c"sproto.core", sproto::open);
    }
}
