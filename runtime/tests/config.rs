//! The config reader and the command line, end to end through the `skynet` binary:
//! the exact stderr texts and exit status 1 for every rejected config (core.md §10),
//! and, for accepted ones, the env a service sees: `$VAR` substitution, `include`
//! relative to the including file, value conversion and the defaults the core writes
//! back when a key is absent.

mod common;

use common::{run_node, scratch_dir, NodeSpec, RunResult, UNSET_VAR};
use std::collections::HashMap;

/// Runs the binary on a config with the given text, plus extra files, in a scratch dir.
fn run_config(text: &str, files: &[(&str, &str)], env: &[(&str, &str)]) -> RunResult {
    let dir = scratch_dir("config");
    std::fs::write(dir.join("config.lua"), text).unwrap();
    for (path, content) in files {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    run_node(&dir, &["config.lua".to_owned()], env, None)
}

/// The node refused to start: nothing on stdout, exactly `stderr` on stderr, status 1.
fn assert_rejected(r: RunResult, stderr: &str) {
    assert_eq!(r.stderr, stderr, "stderr\n{}", r.dump());
    assert_eq!(r.stdout, "", "stdout\n{}", r.dump());
    r.assert_status(1);
    r.cleanup();
}

#[test]
fn no_argument_prints_usage() {
    let dir = scratch_dir("usage");
    let r = run_node(&dir, &[], &[], None);
    assert_rejected(
        r,
        "Need a config file. Please read skynet wiki : https://github.com/cloudwu/skynet/wiki/Config\n\
         usage: skynet configfilename\n",
    );
}

#[test]
fn missing_config_file() {
    let dir = scratch_dir("missing");
    let r = run_node(&dir, &["nothere.lua".to_owned()], &[], None);
    assert_rejected(r, "./nothere.lua: No such file or directory\n");
}

#[test]
fn missing_config_file_absolute() {
    let dir = scratch_dir("missing-abs");
    let path = dir.join("sub").join("nothere.lua");
    let r = run_node(&dir, &[path.display().to_string()], &[], None);
    assert_rejected(
        r,
        &format!("{}: No such file or directory\n", path.display()),
    );
}

#[test]
fn syntax_error() {
    let r = run_config("thread = 2\nharbor = = 0\n", &[], &[]);
    assert_rejected(r, "config.lua:2: unexpected symbol near '='\n");
}

#[test]
fn standard_globals_are_out_of_reach() {
    // the chunk's _ENV is the result table: `tostring` is nil there
    let r = run_config("thread = 2\nx = tostring(1)\n", &[], &[]);
    assert!(
        r.stderr
            .starts_with("config.lua:2: attempt to call a nil value"),
        "{}",
        r.dump()
    );
    r.assert_status(1);
    r.cleanup();
}

#[test]
fn unset_environment_variable() {
    let r = run_config(&format!("thread = 2\nx = \"${UNSET_VAR}\"\n"), &[], &[]);
    assert_rejected(r, &format!("os.getenv() failed: {UNSET_VAR}\n"));
}

#[test]
fn non_string_key() {
    // the chunk assigns into its result table through _ENV
    let r = run_config("thread = 2\n_ENV[1] = 2\n", &[], &[]);
    assert_rejected(r, "Invalid config table\n");
}

#[test]
fn table_value() {
    let r = run_config("thread = 2\nx = {}\n", &[], &[]);
    assert_rejected(r, "Invalid config table key = x\n");
}

#[test]
fn function_value() {
    let r = run_config("f = function() end\n", &[], &[]);
    assert_rejected(r, "Invalid config table key = f\n");
}

#[test]
fn thread_zero() {
    let r = run_config("thread = 0\n", &[], &[]);
    assert_rejected(r, "Invalid thread 0 , should be in [1,1024]\n");
}

#[test]
fn thread_too_many() {
    let r = run_config("thread = 1025\n", &[], &[]);
    assert_rejected(r, "Invalid thread 1025 , should be in [1,1024]\n");
}

#[test]
fn missing_include() {
    let r = run_config(
        "thread = 2\ninclude \"sub/part.lua\"\n",
        &[("sub/part.lua", "include \"gone.lua\"\n")],
        &[],
    );
    // relative to the including file's directory
    assert_rejected(r, "./sub/gone.lua: No such file or directory\n");
}

#[test]
fn syntax_error_in_included_file() {
    let r = run_config(
        "thread = 2\ninclude \"sub/part.lua\"\n",
        &[("sub/part.lua", "x = 1\ny = )\n")],
        &[],
    );
    // the chunk name is the include argument as written
    assert_rejected(r, "sub/part.lua:2: unexpected symbol near ')'\n");
}

/// The `ENV key=value` lines test/test_env.lua printed.
fn env_lines(r: &RunResult) -> HashMap<String, String> {
    r.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ENV "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn env_values_includes_substitution_and_defaults() {
    let spec = NodeSpec::new("test_env")
        // absent keys the core must default and write back
        .omit("thread")
        .omit("bootstrap")
        .line("num_int = 3")
        .line("num_float = 2.0")
        .line("flag_on = true")
        .line("flag_off = false")
        .line("text = \"plain\"")
        // substituted textually, inside a string and as bare code
        .line("subst = \"pre-$SKYNET_TEST_WORD-post\"")
        .line("text = text .. $SKYNET_TEST_NUMBER")
        .line("overridden = \"main\"")
        .line("include \"conf/part.lua\"")
        .file(
            "conf/part.lua",
            "-- keys set before the include are visible here\n\
             included = text .. \"+part\"\n\
             overridden = \"part\"\n\
             include \"deeper/leaf.lua\"\n",
        )
        // relative to conf/, the including file's directory
        .file("conf/deeper/leaf.lua", "nested_include = \"leaf\"\n")
        .env("SKYNET_TEST_WORD", "word")
        .env("SKYNET_TEST_NUMBER", "42");
    let r = spec.run();
    r.assert_pass("test_env");
    let env = env_lines(&r);
    let expected = [
        ("thread", "8"),
        ("harbor", "0"),
        ("bootstrap", "snlua bootstrap"),
        ("logservice", "logger"),
        ("profile", "true"),
        ("cpath", "./cservice/?.so"),
        ("num_int", "3"),
        ("num_float", "2.0"),
        ("flag_on", "true"),
        ("flag_off", "false"),
        ("text", "plain42"),
        ("subst", "pre-word-post"),
        ("included", "plain42+part"),
        ("nested_include", "leaf"),
        ("overridden", "part"),
        ("absent_key", "<nil>"),
    ];
    for (k, v) in expected {
        assert_eq!(
            env.get(k).map(String::as_str),
            Some(v),
            "env {k}\n{}",
            r.dump()
        );
    }
    r.cleanup();
}
