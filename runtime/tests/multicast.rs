//! skynet.multicast on a real node: test/test_multicast.lua with our lualib (and, when
//! `SKYNET_UPSTREAM` is set, with upstream's lualib on our native module), and a channel
//! shared by two harbor nodes (test/test_multicast_harbor.lua; ports 22510-22513).

mod common;

use common::{run_pass, LuaLib, NodeSpec};
use std::net::TcpStream;
use std::time::{Duration, Instant};

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

/// Ports of the two-node test: the master, the two harbor addresses, and the port the
/// owner node listens on once it is up.
const MASTER: u16 = 22510;
const READY: u16 = 22513;

fn harbor_node(side: &str, harbor: u32, address: u16, standalone: bool) -> NodeSpec {
    let mut spec = NodeSpec::new("test_multicast_harbor")
        .omit("harbor")
        .line(&format!("harbor = {harbor}"))
        .line(&format!("master = \"127.0.0.1:{MASTER}\""))
        .line(&format!("address = \"127.0.0.1:{address}\""))
        .line(&format!("mc_side = \"{side}\""))
        .line(&format!("mc_ready_port = {READY}"));
    if standalone {
        spec = spec.line(&format!("standalone = \"127.0.0.1:{MASTER}\""));
    }
    spec
}

/// A channel of harbor 1 with subscribers on both nodes, our multicastd on each: a
/// publish from either node reaches both, and unsubscribe and delete cross the link.
#[test]
fn multicast_across_harbor_nodes() {
    let owner = std::thread::spawn(|| harbor_node("owner", 1, MASTER + 1, true).run());
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", READY)).is_err() {
        assert!(
            Instant::now() < deadline && !owner.is_finished(),
            "the owner node never got ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let remote = harbor_node("remote", 2, MASTER + 2, false).run();
    let owner = owner.join().expect("the owner node's thread");
    owner.assert_pass("test_multicast_harbor");
    remote.assert_pass("test_multicast_harbor");
    owner.cleanup();
    remote.cleanup();
}
