//! C modules on this core: a C service and a Lua C module of our own (test/cmodule/),
//! compiled here with the system's `cc` against include/, loaded from `cpath` and
//! `lua_cpath` and exercised by test/test_cmodule.lua; and, with a built upstream tree
//! (`SKYNET_C`), upstream's own prebuilt `.so` files loaded into this binary.

mod common;

use common::{lua_str, repo_root, run_pass, scratch_dir, NodeSpec};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles `source` (relative to the repo) into the shared object `out`.
fn compile(source: &str, out: &Path) {
    let root = repo_root();
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let status = Command::new("cc")
        .args([
            "-std=gnu99",
            "-O2",
            "-Wall",
            "-Werror=implicit-function-declaration",
        ])
        .args(["-shared", "-fPIC", "-o"])
        .arg(out)
        .arg("-I")
        .arg(root.join("include"))
        .arg(root.join(source))
        .status()
        .expect("cc runs");
    assert!(status.success(), "cc failed on {source}");
}

/// Builds the test modules into a fresh directory: cservice/ and luaclib/.
fn build_modules() -> PathBuf {
    let dir = scratch_dir("cmodule-build");
    compile(
        "test/cmodule/service_cprobe.c",
        &dir.join("cservice/cprobe.so"),
    );
    compile(
        "test/cmodule/service_noinit.c",
        &dir.join("cservice/noinit.so"),
    );
    compile("test/cmodule/lua-ctest.c", &dir.join("luaclib/ctest.so"));
    std::fs::write(dir.join("cservice/garbage.so"), "not an ELF file\n").unwrap();
    dir
}

#[test]
fn c_service_and_lua_c_module() {
    let build = build_modules();
    let spec = NodeSpec::new("test_cmodule")
        .line(&format!(
            "cpath = {}",
            lua_str(&format!("{}/cservice/?.so", build.display()))
        ))
        .line(&format!(
            "lua_cpath = {}",
            lua_str(&format!("{}/luaclib/?.so", build.display()))
        ))
        .line("cmodule_port = 23001");
    let r = run_pass(spec);
    let c = &r.launched_n("cprobe first", 1)[0];
    r.assert_log_entry(&format!("[:{c}] cprobe init first"));
    r.assert_log_entry("[:00000000] cprobe release");
    r.assert_log(" error: launch cprobe FAILED");
    let stderr = &r.stderr;
    assert!(
        stderr.contains("try open nosuchmodule failed : ")
            && stderr.contains("nosuchmodule.so: cannot open shared object file"),
        "missing module\n{}",
        r.dump()
    );
    assert!(
        stderr.contains("try open garbage failed : ") && stderr.contains("garbage.so: "),
        "not a shared object\n{}",
        r.dump()
    );
    assert!(
        !stderr.contains("try open noinit failed"),
        "a module without _init opens; it is refused without a word, as upstream\n{}",
        r.dump()
    );
    r.cleanup();
    let _ = std::fs::remove_dir_all(build);
}

#[test]
fn include_lua_headers_are_the_vendored_luas() {
    let root = repo_root();
    for h in ["lua.h", "lauxlib.h", "luaconf.h", "lualib.h"] {
        let ours = std::fs::read(root.join("include").join(h)).unwrap();
        let vendored = std::fs::read(root.join("vendor/lua-src/lua-5.5.1").join(h)).unwrap();
        assert!(
            ours == vendored,
            "include/{h} differs from the vendored Lua's"
        );
    }
}
