//! `skynet lua SCRIPT ARGS`: the interpreter behaves like stock `lua` where a script can
//! see it: `arg`, warnings (off until `@on`, pieces joined on stderr), and an uncaught
//! error (message and traceback on stderr, exit status 1).

mod common;

use common::{scratch_dir, skynet_bin};
use std::process::{Command, Output};

fn run(script: &str, args: &[&str]) -> Output {
    let dir = scratch_dir("interpreter");
    let path = dir.join("script.lua");
    std::fs::write(&path, script).unwrap();
    let out = Command::new(skynet_bin())
        .arg("lua")
        .arg(&path)
        .args(args)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn args_and_warnings_as_stock_lua() {
    let out = run(
        r#"
        print(#arg, arg[1], arg[2], arg[0]:match "script.lua$")
        warn("hidden")
        warn("@on")
        warn("shown ", "in ", "pieces")
        warn("@off")
        warn("hidden again")
        "#,
        &["a", "b"],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2\ta\tb\tscript.lua\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Lua warning: shown in pieces\n"
    );
}

#[test]
fn an_uncaught_error_exits_with_1_and_a_traceback() {
    let out = run("local t = {}\nerror('boom')\n", &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("script.lua:2: boom"), "{err}");
    assert!(err.contains("stack traceback:"), "{err}");
}
