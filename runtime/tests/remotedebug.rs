//! Remote debugging on a real node: test/test_remotedebug.lua drives `debug <address>`
//! over the debug console's TCP port (attach, breakpoint, step, locals, detach).

mod common;

use common::{run_pass, NodeSpec};

/// The console's port, in this test's range.
const CONSOLE_PORT: u16 = 22501;

#[test]
fn remote_debug_session() {
    let r = run_pass(
        NodeSpec::new("test_remotedebug")
            .threads(2)
            .line(&format!("remotedebug_port = {CONSOLE_PORT}")),
    );
    let target = &r.launched_n("snlua test_remotedebug target", 1)[0];
    // two debug_agents: the session, and the second attach that was refused
    r.launched_n("snlua debug_agent", 2);
    r.assert_log_entry(&format!("[:{target}] Enter debug mode"));
    r.assert_log_entry(&format!("[:{target}] Leave debug mode"));
    r.assert_lua_error(Some(target), "Already in debug mode");
    r.cleanup();
}
