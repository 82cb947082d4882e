//! Runs every Lua test service in test/ on a real node (the `skynet` binary built for
//! this test run, with this project's lualib/service) and checks the result line, the
//! exit status and the log lines each behaviour must produce.

mod common;

use common::{run_pass, LuaLib, NodeSpec};

#[test]
fn boot() {
    let r = run_pass(NodeSpec::new("test_boot"));
    let entries = r.log_entries();
    let expected = [
        "[:00000002] LAUNCH snlua bootstrap",
        "[:00000003] LAUNCH snlua launcher",
        "[:00000004] LAUNCH snlua cdummy",
        "[:00000005] LAUNCH harbor 0 4",
        "[:00000006] LAUNCH snlua datacenterd",
        "[:00000007] LAUNCH snlua service_mgr",
        "[:00000008] LAUNCH snlua test_boot",
    ];
    let mut last = 0;
    for e in expected {
        let pos = entries.iter().position(|l| *l == e);
        match pos {
            Some(p) if p >= last => last = p,
            _ => panic!("boot entry {e:?} missing or out of order\n{}", r.dump()),
        }
    }
    // bootstrap exits once the start service is up
    r.assert_log_entry("[:00000002] KILL self");
    r.cleanup();
}

#[test]
fn call() {
    let r = run_pass(NodeSpec::new("test_call"));
    // the handler error is logged by the core with its message
    let slave = &r.launched_n("snlua test_call slave", 1)[0];
    r.assert_lua_error(Some(slave), "boom");
    r.cleanup();
}

#[test]
fn response() {
    let r = run_pass(NodeSpec::new("test_response"));
    r.assert_log("Maybe forgot response session");
    r.cleanup();
}

#[test]
fn timeout() {
    let r = run_pass(NodeSpec::new("test_timeout"));
    r.assert_lua_error(Some("00000008"), "timeout boom");
    r.cleanup();
}

#[test]
fn sleep_wakeup_wait() {
    run_pass(NodeSpec::new("test_sleep").threads(2)).cleanup();
}

#[test]
fn fork() {
    let r = run_pass(NodeSpec::new("test_fork").threads(2));
    r.assert_lua_error(Some("00000008"), "fork boom");
    r.cleanup();
}

#[test]
fn queue() {
    run_pass(NodeSpec::new("test_queue").threads(2)).cleanup();
}

#[test]
fn dead_calls() {
    run_pass(NodeSpec::new("test_deadcall")).cleanup();
}

#[test]
fn kill_and_exit() {
    let r = run_pass(NodeSpec::new("test_kill"));
    // the third slave exits by itself, the fourth kills itself by handle
    let slaves = r.launched_n("snlua test_kill slave", 4);
    r.assert_log_entry(&format!("[:{}] KILL self", slaves[2]));
    let d = u32::from_str_radix(&slaves[3], 16).unwrap();
    r.assert_log_entry(&format!("[:{}] KILL :{d:x}", slaves[3]));
    // the first two are killed by the test service (handle 8)
    for s in &slaves[..2] {
        let h = u32::from_str_radix(s, 16).unwrap();
        r.assert_log_entry(&format!("[:00000008] KILL :{h:x}"));
    }
    r.cleanup();
}

#[test]
fn logon_message_log() {
    let dir = common::scratch_dir("logpath");
    let spec = NodeSpec::new("test_logon").line(&format!(
        "logpath = {}",
        common::lua_str(&dir.display().to_string())
    ));
    run_pass(spec);
}

#[test]
fn overload_warning() {
    // One worker thread: test_overload.lua relies on it to know the slave's queue was
    // found empty between two runs.
    let r = run_pass(NodeSpec::new("test_overload").threads(1));
    let slave = &r.launched_n("snlua test_overload slave", 1)[0];
    let prefix = format!("[:{slave}] error: May overload, message queue length = ");
    let mut lengths = Vec::new();
    for entry in r.log_entries() {
        if entry.contains("May overload") {
            let n = entry
                .strip_prefix(&prefix)
                .and_then(|n| n.parse::<usize>().ok());
            match n {
                Some(n) => lengths.push(n),
                None => panic!("unexpected warning {entry:?}\n{}", r.dump()),
            }
        }
    }
    // past 1024, then past the doubled thresholds 2048 and 4096, then past 1024 again
    // once the queue had emptied
    assert_eq!(lengths, [1025, 2049, 4097, 1025], "{}", r.dump());
    r.cleanup();
}

#[test]
fn endless_loop_and_signal() {
    let r = run_pass(NodeSpec::new("test_endless"));
    let slaves = r.launched_n("snlua test_endless slave", 2);
    for slave in &slaves {
        let needle = format!("] to [ :{slave} ] maybe in an endless loop (version = ");
        assert!(
            r.log_entries().iter().any(|l| l
                .starts_with("[:00000000] error: A message from [ :00000008 ]")
                && l.contains(&needle)),
            "no endless-loop report for :{slave}\n{}",
            r.dump()
        );
        r.assert_log_entry(&format!("[:{slave}] recv a signal 0"));
    }
    // the second slave does not catch the error: the core logs it
    r.assert_lua_error(Some(&slaves[1]), "signal 0");
    r.cleanup();
}

#[test]
fn memlimit() {
    let r = run_pass(NodeSpec::new("test_memlimit"));
    let slave = &r.launched_n("snlua test_memlimit slave", 1)[0];
    r.assert_log_entry(&format!("[:{slave}] Set memory limit to 4.00 M"));
    r.cleanup();
}

#[test]
fn names() {
    let r = run_pass(NodeSpec::new("test_names"));
    r.assert_log_entry("[:00000008] error: Can't register global name cglobal in C");
    r.cleanup();
}

#[test]
fn datacenter() {
    run_pass(NodeSpec::new("test_datacenter")).cleanup();
}

#[test]
fn uniqueservice() {
    let r = run_pass(NodeSpec::new("test_uniqueservice"));
    // the unique instances are launched by service_mgr's launcher call
    r.launched_n("snlua svc_echo first", 1);
    r.launched_n("snlua test_uniqueservice target", 1);
    r.cleanup();
}

#[test]
fn snax() {
    let r = run_pass(NodeSpec::new("test_snax"));
    // both snax services run in snaxd
    r.launched_n("snlua snaxd snax_counter", 2);
    r.cleanup();
}

#[test]
fn sproto() {
    run_pass(NodeSpec::new("test_sproto")).cleanup();
}

#[test]
fn serializer_round_trips() {
    run_pass(NodeSpec::new("test_serialize").threads(2)).cleanup();
}

#[test]
fn bad_input() {
    let r = run_pass(NodeSpec::new("test_badinput"));
    r.assert_log("svc_failing start boom");
    // the malformed message fails in the slave's dispatch and is logged by the core
    let slave = &r.launched_n("snlua test_badinput slave", 1)[0];
    r.assert_lua_error(Some(slave), "Invalid serialize stream");
    r.cleanup();
}

/// Every kind of error the native modules raise, 100,000 times each, leaves the Rust
/// heap charged to the service where it was: a raise skips no owned value.
#[test]
fn raises_leak_nothing() {
    let r = run_pass(NodeSpec::new("test_raise"));
    r.assert_log("test_raise: ");
    for line in r.log_entries() {
        if line.contains("test_raise: ") {
            println!("{line}");
        }
    }
    r.cleanup();
}

#[test]
fn socket_tcp() {
    let r = run_pass(NodeSpec::new("test_socket"));
    // one helper service takes over sockets handed to it
    r.launched_n("snlua test_socket owner", 1);
    // skynet.socket reports the flow control and the buffer limit in the log
    r.assert_log("] Pause socket (");
    r.assert_log("] Resume socket (");
    r.assert_log("] socket buffer overflow: fd=");
    r.cleanup();
}

#[test]
fn socket_write_order() {
    // Two workers: writers run in parallel, and one of the idle ones polls the sockets.
    // One worker: it polls between services, and the socket thread serves what it
    // queues while it runs (netstat, partial writes).
    for threads in [2, 1] {
        let r = run_pass(NodeSpec::new("test_socket_order").threads(threads));
        for w in 1..=4 {
            r.launched_n(&format!("snlua test_socket_order writer {w}"), 1);
        }
        r.cleanup();
    }
}

#[test]
fn socket_tcp_one_worker() {
    run_pass(NodeSpec::new("test_socket").threads(1)).cleanup();
}

#[test]
fn socket_udp() {
    let r = run_pass(NodeSpec::new("test_udp"));
    r.assert_log("] socket: drop udp package from ");
    if r.log_has("IPv6 part skipped") {
        common::skipped("socket_udp (its IPv6 part)", "this host has no ::1");
    }
    r.cleanup();
}

#[test]
fn socketchannel() {
    let r = run_pass(NodeSpec::new("test_socketchannel"));
    r.launched_n("snlua test_socketchannel server one", 1);
    r.launched_n("snlua test_socketchannel server two", 1);
    // what the db clients log for a refused connection, before raising the
    // [Error: socket] object
    r.assert_log("[:00000008] Connect failed Connection refused 127.0.0.1 ");
    r.assert_log("[:00000008] socket: connect to backup host 127.0.0.1 ");
    r.cleanup();
}

#[test]
fn debug_console() {
    let r = run_pass(NodeSpec::new("test_debug_console"));
    let console = &r.launched_n("snlua debug_console 127.0.0.1 0", 1)[0];
    r.assert_log(&format!("[:{console}] Start debug console at 127.0.0.1:"));
    r.assert_log(&format!("[:{console}] 127.0.0.1:"));
    r.cleanup();
}

/// Every test service in test/ has a test in one of the integration-test files
/// (helpers are named svc_*, snax_*, harbor_* and tester.lua), so none is silently left
/// out.
#[test]
fn every_test_service_is_run() {
    let tests_dir = common::repo_root().join("runtime").join("tests");
    let mut sources = String::new();
    for entry in std::fs::read_dir(&tests_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            sources.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    let dir = common::repo_root().join("test");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name
            .strip_prefix("test_")
            .and_then(|n| n.strip_suffix(".lua"))
        {
            if !sources.contains(&format!("\"test_{stem}\"")) {
                missing.push(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "test services without a test: {missing:?}"
    );
}

/// With `SKYNET_UPSTREAM` pointing at an upstream skynet checkout, a selection of the
/// same test services also runs on upstream's lualib/service: evidence that the tests
/// check skynet's behaviour rather than quirks of our Lua library.
#[test]
fn same_tests_pass_on_upstream_lualib_needs_skynet_upstream() {
    let Some(lib) = LuaLib::upstream() else {
        common::skipped(
            "same_tests_pass_on_upstream_lualib_needs_skynet_upstream",
            "SKYNET_UPSTREAM is unset",
        );
        return;
    };
    let tests = [
        "test_call",
        "test_response",
        "test_deadcall",
        "test_kill",
        "test_serialize",
        "test_sproto",
        "test_snax",
        "test_datacenter",
        "test_udp",
        "test_socketchannel",
        "test_debug_console",
    ];
    std::thread::scope(|s| {
        let handles: Vec<_> = tests
            .iter()
            .map(|t| {
                let spec = NodeSpec::new(t).lib(lib.clone());
                s.spawn(move || run_pass(spec).cleanup())
            })
            .collect();
        for h in handles {
            if let Err(e) = h.join() {
                std::panic::resume_unwind(e);
            }
        }
    });
}

#[test]
fn share() {
    run_pass(NodeSpec::new("test_share").threads(2)).cleanup();
}

#[test]
fn sharetable_lib() {
    run_pass(NodeSpec::new("test_sharetable").threads(2)).cleanup();
}

#[test]
fn sharedata_lib() {
    run_pass(NodeSpec::new("test_sharedata").threads(2)).cleanup();
}

#[test]
fn datasheet_lib() {
    run_pass(NodeSpec::new("test_datasheet").threads(2)).cleanup();
}

#[test]
fn sharemap_lib() {
    run_pass(NodeSpec::new("test_sharemap").threads(2)).cleanup();
}

#[test]
fn print_lines_stay_whole() {
    let r = run_pass(NodeSpec::new("test_print").threads(4));
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| !l.starts_with("TEST "))
        .collect();
    assert_eq!(lines.len(), 4 * 500, "{}", r.dump());
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert!(
            fields.len() == 7 && fields[0] == "P" && fields[3..] == ["a", "b", "c", "d"],
            "a mixed line: {line:?}"
        );
    }
    r.cleanup();
}
