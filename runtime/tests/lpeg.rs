//! The built-in `lpeg` module and lualib/re.lua: our own cases (test/lpeg_cases.lua)
//! under `skynet lua` and inside a service, a seeded fuzz run of a million matches, and
//! LPeg's own test suite (upstream's 3rd/lpeg/test.lua, unmodified) with upstream's
//! re.lua and with ours, when `SKYNET_UPSTREAM` names a checkout.

mod common;

use common::{repo_root, run_pass, skipped, skynet_bin, NodeSpec};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `skynet lua script args` in `dir` with `LUA_PATH` set to `lua_path`.
fn skynet_lua(dir: &Path, lua_path: &str, script: &str, args: &[&str]) -> Output {
    Command::new(skynet_bin())
        .current_dir(dir)
        .env("LUA_PATH", lua_path)
        .env_remove("LUA_PATH_5_5")
        .arg("lua")
        .arg(script)
        .args(args)
        .output()
        .expect("run skynet lua")
}

/// Asserts the run succeeded and its last line is `OK`; returns its stdout.
fn assert_ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.lines().last() == Some("OK"),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}

#[test]
fn lpeg_cases_in_skynet_lua() {
    let root = repo_root();
    let out = skynet_lua(&root, ";;", "test/lpeg_test.lua", &[]);
    let stdout = assert_ok(&out, "test/lpeg_test.lua");
    assert!(stdout.contains("10 cases"), "{stdout}");
}

#[test]
fn lpeg_cases_in_a_service() {
    run_pass(NodeSpec::new("test_lpeg")).cleanup();
}

/// A million random matches of random patterns: none may crash or hang, and every
/// error must be one of LPeg's texts (the script checks them).
#[test]
fn lpeg_fuzz_a_million_matches() {
    let root = repo_root();
    let out = skynet_lua(&root, ";;", "test/lpeg_fuzz.lua", &["1", "2000", "500"]);
    let stdout = assert_ok(&out, "test/lpeg_fuzz.lua");
    assert!(stdout.contains("1000000 inputs"), "{stdout}");
}

fn upstream_lpeg_dir(test: &str) -> Option<std::path::PathBuf> {
    match std::env::var_os("SKYNET_UPSTREAM") {
        Some(dir) if !dir.is_empty() => Some(Path::new(&dir).join("3rd/lpeg")),
        _ => {
            skipped(test, "SKYNET_UPSTREAM is not set");
            None
        }
    }
}

#[test]
fn upstream_lpeg_test_lua_prints_ok_needs_skynet_upstream() {
    let test = "upstream_lpeg_test_lua_prints_ok_needs_skynet_upstream";
    let Some(dir) = upstream_lpeg_dir(test) else {
        return;
    };
    let out = skynet_lua(&dir, "./?.lua", "test.lua", &[]);
    assert_ok(&out, "upstream test.lua with upstream re.lua");
}

#[test]
fn upstream_lpeg_test_lua_with_our_re_needs_skynet_upstream() {
    let test = "upstream_lpeg_test_lua_with_our_re_needs_skynet_upstream";
    let Some(dir) = upstream_lpeg_dir(test) else {
        return;
    };
    let ours = repo_root().join("lualib/?.lua");
    let out = skynet_lua(&dir, &ours.to_string_lossy(), "test.lua", &[]);
    assert_ok(&out, "upstream test.lua with our re.lua");
}
