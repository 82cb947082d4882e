//! C modules on this core: a C service and a Lua C module of our own (test/cmodule/),
//! compiled here with the system's `cc` against include/, loaded from `cpath` and
//! `lua_cpath` and exercised by test/test_cmodule.lua; and, with a built upstream tree
//! (`SKYNET_C`), upstream's own prebuilt `.so` files loaded into this binary.

mod common;

use common::{lua_str, repo_root, run_pass, scratch_dir, NodeSpec};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `cc` with the flags of a module built against include/ (a function used without a
/// declaration is an error) and `include_dirs` after include/.
fn cc(include_dirs: &[&Path]) -> Command {
    let mut cmd = Command::new("cc");
    cmd.args([
        "-std=gnu99",
        "-O2",
        "-Wall",
        "-Werror=implicit-function-declaration",
    ])
    .args(["-fPIC", "-I"])
    .arg(repo_root().join("include"));
    for dir in include_dirs {
        cmd.arg("-I").arg(dir);
    }
    cmd
}

/// Compiles `source` (relative to the repo) into the shared object `out`.
fn compile(source: &str, out: &Path) {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let status = cc(&[])
        .arg("-shared")
        .arg("-o")
        .arg(out)
        .arg(repo_root().join(source))
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
    compile(
        "test/cmodule/lua-symbols.c",
        &dir.join("luaclib/symbols.so"),
    );
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
    r.assert_log_entry(&format!("[:{c}] error: Destination address can't be 0"));
    r.assert_log_entry(&format!("[:{c}] error: The message to 8 is too large"));
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

/// The built upstream tree (`SKYNET_C`), if any.
fn upstream_c(test: &str) -> Option<PathBuf> {
    match std::env::var_os("SKYNET_C") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => {
            common::skipped(test, "SKYNET_C is not set");
            None
        }
    }
}

/// Links upstream's prebuilt modules into a fresh directory under names that the
/// built-in ones do not shadow: `up.NAME` services (their functions keep NAME, the part
/// after the last dot) and `NAME-c` Lua modules (Lua's searcher drops the hyphen's
/// suffix from `luaopen_`).
fn link_upstream(c: &Path) -> PathBuf {
    let dir = scratch_dir("cupstream-modules");
    std::fs::create_dir_all(dir.join("cservice")).unwrap();
    std::fs::create_dir_all(dir.join("luaclib")).unwrap();
    let link = |from: &str, to: &str| {
        std::os::unix::fs::symlink(c.join(from), dir.join(to)).unwrap();
    };
    link("cservice/logger.so", "cservice/up.logger.so");
    link("cservice/gate.so", "cservice/up.gate.so");
    link("luaclib/lpeg.so", "luaclib/lpeg-c.so");
    link("luaclib/bson.so", "luaclib/bson-c.so");
    link("luaclib/md5.so", "luaclib/md5_core-c.so");
    link("luaclib/sproto.so", "luaclib/sproto_core-c.so");
    dir
}

/// Runs test/test_cupstream.lua with the C services `PREFIX.logger` (as the node's
/// logger) and `PREFIX.gate` from `modules/cservice`, and, given upstream's `lualib`,
/// the Lua modules in `modules/luaclib`.
fn run_upstream_services(modules: &Path, prefix: &str, lualib: Option<&Path>, port: u16) {
    let mut spec = NodeSpec::new("test_cupstream")
        .line(&format!("logservice = \"{prefix}.logger\""))
        .line(&format!("cupstream_gate = \"{prefix}.gate\""))
        .line(&format!(
            "cpath = {}",
            lua_str(&format!("{}/cservice/?.so", modules.display()))
        ))
        .line(&format!(
            "lua_cpath = {}",
            lua_str(&format!("{}/luaclib/?.so", modules.display()))
        ))
        .line(&format!("cupstream_port = {port}"));
    if let Some(lualib) = lualib {
        spec = spec.line(&format!(
            "cupstream_lualib = {}",
            lua_str(&lualib.display().to_string())
        ));
    }
    let r = run_pass(spec);
    // Every line of this log was written by the C logger.
    r.assert_log_entry("[:00000008] hello through upstream's logger");
    r.assert_log_entry("[:00000003] LAUNCH snlua launcher");
    r.assert_log(&format!(
        "] LAUNCH {prefix}.gate S :00000008 127.0.0.1:{port} 0 16"
    ));
    r.cleanup();
}

#[test]
fn upstream_prebuilt_modules_needs_skynet_c() {
    let Some(c) = upstream_c("upstream_prebuilt_modules_needs_skynet_c") else {
        return;
    };
    let modules = link_upstream(&c);
    run_upstream_services(&modules, "up", Some(&c.join("lualib")), 23010);
    let _ = std::fs::remove_dir_all(modules);
}

#[test]
fn lpeg_test_suite_on_upstreams_lpeg_so_needs_skynet_c() {
    let Some(c) = upstream_c("lpeg_test_suite_on_upstreams_lpeg_so_needs_skynet_c") else {
        return;
    };
    let modules = link_upstream(&c);
    let dir = scratch_dir("cupstream-lpeg");
    let lpeg = c.join("3rd/lpeg");
    let script = format!(
        "package.cpath = {}\npackage.path = {}\npackage.loaded.lpeg = require \"lpeg-c\"\ndofile({})\n",
        lua_str(&format!("{}/luaclib/?.so", modules.display())),
        lua_str(&format!("{}/?.lua", lpeg.display())),
        lua_str(&lpeg.join("test.lua").display().to_string()),
    );
    std::fs::write(dir.join("run.lua"), script).unwrap();
    let r = common::run_node(&dir, &["lua".to_owned(), "run.lua".to_owned()], &[], None);
    assert!(
        r.status.is_some_and(|s| s.success()) && r.stdout.trim_end().ends_with("OK"),
        "LPeg's test.lua on upstream's lpeg.so\n{}",
        r.dump()
    );
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(modules);
}

/// Upstream's C sources that build against include/ unmodified, and those that do not
/// with the reason (each includes a header of skynet's internals, or calls a function
/// this core does not export).
const UPSTREAM_SOURCES: &[(&str, Option<&str>)] = &[
    ("service-src/service_gate.c", None),
    ("service-src/service_logger.c", None),
    ("service-src/service_harbor.c", Some("skynet_harbor_start")),
    ("service-src/service_snlua.c", Some("atomic.h")),
    ("lualib-src/lua-bson.c", Some("atomic.h")),
    ("lualib-src/lua-clientsocket.c", None),
    ("lualib-src/lua-cluster.c", None),
    ("lualib-src/lua-crypt.c", None),
    ("lualib-src/lua-datasheet.c", None),
    ("lualib-src/lua-debugchannel.c", Some("spinlock.h")),
    ("lualib-src/lua-memory.c", Some("malloc_hook.h")),
    ("lualib-src/lua-mongo.c", None),
    ("lualib-src/lua-multicast.c", Some("atomic.h")),
    ("lualib-src/lua-netpack.c", None),
    ("lualib-src/lua-seri.c", None),
    ("lualib-src/lua-sharedata.c", Some("atomic.h")),
    ("lualib-src/lua-sharetable.c", Some("lgc.h")),
    ("lualib-src/lua-skynet.c", None),
    ("lualib-src/lua-socket.c", None),
    ("lualib-src/lua-stm.c", Some("rwlock.h")),
];

#[test]
fn upstream_sources_build_against_include_needs_skynet_upstream() {
    let Some(upstream) = common::LuaLib::upstream() else {
        common::skipped(
            "upstream_sources_build_against_include_needs_skynet_upstream",
            "SKYNET_UPSTREAM is not set",
        );
        return;
    };
    let root = upstream.root;
    let out = scratch_dir("cupstream-objects");
    std::fs::create_dir_all(out.join("cservice")).unwrap();
    let lualib_src = root.join("lualib-src");
    for (source, failure) in UPSTREAM_SOURCES {
        let output = cc(&[&lualib_src])
            .arg("-c")
            .arg("-o")
            .arg(out.join("module.o"))
            .arg(root.join(source))
            .output()
            .expect("cc runs");
        let errors = String::from_utf8_lossy(&output.stderr);
        match failure {
            None => assert!(
                output.status.success(),
                "{source} does not build:\n{errors}"
            ),
            Some(why) => assert!(
                !output.status.success() && errors.contains(why),
                "{source} was expected to fail on {why}:\n{errors}"
            ),
        }
    }
    let _ = std::fs::remove_dir_all(out);
}
