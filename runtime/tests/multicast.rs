//! skynet.multicast on a real node: test/test_multicast.lua with our lualib (and, when
//! `SKYNET_UPSTREAM` is set, with upstream's lualib on our native module).

mod common;

use common::{run_pass, LuaLib, NodeSpec};

fn check(r: &common::RunResult) {
    let subs = r.launched_n("snlua test_multicast sub", 8);
    // a failing subscriber dispatch and a cell of the wrong size: logged by the core,
    // the subscriber lives on (the test then sees it receive again)
    r.assert_lua_error(None, "subscriber dispatch boom");
    r.assert_lua_error(Some(&subs[0]), "Invalid multicast package size 3");
    r.launched_n("snlua multicastd", 1);
}

#[test]
fn multicast() {
    let r = run_pass(NodeSpec::new("test_multicast"));
    check(&r);
    r.cleanup();
}

#[test]
fn multicast_on_upstream_lualib_needs_skynet_upstream() {
    let Some(lib) = LuaLib::upstream() else {
        common::skipped(
            "multicast_on_upstream_lualib_needs_skynet_upstream",
            "SKYNET_UPSTREAM is not set",
        );
        return;
    };
    let r = run_pass(NodeSpec::new("test_multicast").lib(lib));
    check(&r);
    r.cleanup();
}
