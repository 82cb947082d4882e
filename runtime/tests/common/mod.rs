//! Shared harness for the integration tests: writes node configs into scratch
//! directories, runs the `skynet` binary that cargo built for this test run (with a
//! timeout, so a hung node fails the test instead of hanging `cargo test`), and offers
//! assertions over exit status, stdout/stderr and the logger's file.
//!
//! Each integration-test binary compiles this module separately and uses a different
//! subset of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Last-resort limit for one node run. The Lua side has its own watchdog (30 s by
/// default) that reports a readable failure first; this only catches nodes that never
/// got as far as running the test service.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(120);

/// An environment variable every node run sees unset.
pub const UNSET_VAR: &str = "SKYNET_TEST_SURELY_UNSET_VAR";

/// The repository root (the workspace directory holding lualib/, service/, test/).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("runtime/ has a parent directory")
        .to_path_buf()
}

/// The binary cargo built for this test run.
pub fn skynet_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_skynet"))
}

/// A fresh, empty scratch directory, unique per call even across parallel tests.
pub fn scratch_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir =
        std::env::temp_dir().join(format!("skynet-tests-{}-{}-{}", std::process::id(), tag, n));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub use skynet::config::lua_str;

/// Reports on the terminal that `test` (or a part of it) did not run, and why. The line
/// goes straight to the process's stderr: the test harness captures what `eprintln!`
/// writes and shows it only for failing tests or under `--nocapture`, so a skip would
/// otherwise look like any other "ok". Tests that can be skipped also say in their
/// name what they need.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// Which Lua library (lualib/ + service/ + loader) a node runs with.
#[derive(Clone, Debug)]
pub struct LuaLib {
    /// Directory holding `lualib/` and `service/`.
    pub root: PathBuf,
}

impl LuaLib {
    /// This project's own library, unless `SKYNET_TEST_LUALIB` names another checkout
    /// (a development aid: point the whole suite at upstream's Lua to check that a test
    /// itself is right).
    pub fn ours() -> LuaLib {
        match std::env::var_os("SKYNET_TEST_LUALIB") {
            Some(dir) if !dir.is_empty() => LuaLib {
                root: PathBuf::from(dir),
            },
            _ => LuaLib { root: repo_root() },
        }
    }

    /// Upstream's library, when `SKYNET_UPSTREAM` names a checkout.
    pub fn upstream() -> Option<LuaLib> {
        let dir = std::env::var_os("SKYNET_UPSTREAM")?;
        if dir.is_empty() {
            return None;
        }
        Some(LuaLib {
            root: PathBuf::from(dir),
        })
    }
}

/// Everything that varies between node runs.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The `start` service (a file in test/).
    pub start: String,
    pub threads: u32,
    pub lib: LuaLib,
    /// Config keys of the standard set to leave out (to see the core's defaults).
    pub omit: Vec<&'static str>,
    /// Extra config lines appended verbatim.
    pub extra: Vec<String>,
    /// Extra files written into the scratch directory (path relative to it, content).
    pub files: Vec<(String, String)>,
    /// Extra environment variables for the node process.
    pub env: Vec<(String, String)>,
}

impl NodeSpec {
    pub fn new(start: &str) -> NodeSpec {
        NodeSpec {
            start: start.to_owned(),
            threads: 4,
            lib: LuaLib::ours(),
            omit: Vec::new(),
            extra: Vec::new(),
            files: Vec::new(),
            env: Vec::new(),
        }
    }

    pub fn threads(mut self, n: u32) -> NodeSpec {
        self.threads = n;
        self
    }

    pub fn lib(mut self, lib: LuaLib) -> NodeSpec {
        self.lib = lib;
        self
    }

    pub fn omit(mut self, key: &'static str) -> NodeSpec {
        self.omit.push(key);
        self
    }

    pub fn line(mut self, line: &str) -> NodeSpec {
        self.extra.push(line.to_owned());
        self
    }

    pub fn file(mut self, path: &str, content: &str) -> NodeSpec {
        self.files.push((path.to_owned(), content.to_owned()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> NodeSpec {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The config text. `log` is the logger's file.
    pub fn config(&self, log: &Path) -> String {
        let repo = repo_root();
        let lib = &self.lib.root;
        let test = repo.join("test");
        let p = |base: &Path, rest: &str| format!("{}/{}", base.display(), rest);
        let lines = [
            ("root", lua_str(&p(&repo, ""))),
            ("thread", self.threads.to_string()),
            ("harbor", "0".to_owned()),
            ("start", lua_str(&self.start)),
            ("bootstrap", lua_str("snlua bootstrap")),
            (
                "luaservice",
                lua_str(&format!(
                    "{};{}",
                    p(lib, "service/?.lua"),
                    p(&test, "?.lua")
                )),
            ),
            ("lualoader", lua_str(&p(lib, "lualib/loader.lua"))),
            // test/ is on the module path too, for the shared helper test/tester.lua
            (
                "lua_path",
                lua_str(&format!(
                    "{};{};{}",
                    p(lib, "lualib/?.lua"),
                    p(lib, "lualib/?/init.lua"),
                    p(&test, "?.lua")
                )),
            ),
            ("snax", lua_str(&p(&test, "?.lua"))),
            ("logger", lua_str(&log.display().to_string())),
        ];
        let mut c = String::new();
        for (key, value) in lines {
            if !self.omit.contains(&key) {
                let _ = writeln!(c, "{key} = {value}");
            }
        }
        for line in &self.extra {
            let _ = writeln!(c, "{line}");
        }
        c
    }

    /// Writes the config (as `config.lua`) and the extra files into a scratch directory
    /// and runs the node there with the config's relative path as its argument.
    pub fn run(&self) -> RunResult {
        let dir = scratch_dir(&self.start);
        let log = dir.join("node.log");
        std::fs::write(dir.join("config.lua"), self.config(&log)).unwrap();
        for (path, content) in &self.files {
            let full = dir.join(path);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            std::fs::write(full, content).unwrap();
        }
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        run_node(&dir, &["config.lua".to_owned()], &env, Some(log))
    }
}

/// What one node run produced.
#[derive(Debug)]
pub struct RunResult {
    /// None when the node was killed on timeout.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    /// The logger's file (empty if absent).
    pub log: String,
    pub dir: PathBuf,
}

fn drain<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs the binary with `args` in `dir`, extra environment `env`, and collects its
/// output; `log` is the logger file to read afterwards.
pub fn run_node(
    dir: &Path,
    args: &[String],
    env: &[(&str, &str)],
    log: Option<PathBuf>,
) -> RunResult {
    let mut cmd = Command::new(skynet_bin());
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // guaranteed unset, for the `$VAR` error test
    cmd.env_remove(UNSET_VAR);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > NODE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    let log = log
        .and_then(|p| std::fs::read(p).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    RunResult {
        status,
        stdout,
        stderr,
        log,
        dir: dir.to_path_buf(),
    }
}

impl RunResult {
    /// Everything, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- log ({}) ---\n{}",
            match self.status {
                Some(s) => format!("{s}"),
                None => format!("killed after {} s timeout", NODE_TIMEOUT.as_secs()),
            },
            self.stdout,
            self.stderr,
            self.dir.join("node.log").display(),
            self.log
        )
    }

    /// Log entries without the timestamp: `[:xxxxxxxx] text` (continuation lines of
    /// multi-line entries are kept as they are).
    pub fn log_entries(&self) -> Vec<&str> {
        self.log
            .lines()
            .map(|l| match l.find("[:") {
                Some(i) if i <= 24 => &l[i..],
                _ => l,
            })
            .collect()
    }

    /// The handles (8 lowercase hex digits) of services logged as
    /// `LAUNCH <cmdline>`, in launch order.
    pub fn launched(&self, cmdline: &str) -> Vec<String> {
        let suffix = format!("] LAUNCH {cmdline}");
        self.log_entries()
            .into_iter()
            .filter(|e| e.starts_with("[:") && e.len() == 10 + suffix.len() && e.ends_with(&suffix))
            .map(|e| e[2..10].to_owned())
            .collect()
    }

    /// Like `launched`, requiring exactly `n` such services.
    pub fn launched_n(&self, cmdline: &str, n: usize) -> Vec<String> {
        let v = self.launched(cmdline);
        assert!(
            v.len() == n,
            "expected {n} services launched as {cmdline:?}, found {v:?}\n{}",
            self.dump()
        );
        v
    }

    pub fn log_has(&self, needle: &str) -> bool {
        self.log.contains(needle)
    }

    pub fn assert_log(&self, needle: &str) {
        assert!(
            self.log_has(needle),
            "the log has no line containing {needle:?}\n{}",
            self.dump()
        );
    }

    pub fn assert_no_log(&self, needle: &str) {
        assert!(
            !self.log_has(needle),
            "the log unexpectedly contains {needle:?}\n{}",
            self.dump()
        );
    }

    /// The log has an entry exactly equal to `entry` (timestamp stripped).
    pub fn assert_log_entry(&self, entry: &str) {
        assert!(
            self.log_entries().contains(&entry),
            "the log has no entry {entry:?}\n{}",
            self.dump()
        );
    }

    /// A Lua error escaped a message handler of `service` (8 hex digits; any service if
    /// None) and the core logged it as `lua call [...] error : ...<needle>...`.
    pub fn assert_lua_error(&self, service: Option<&str>, needle: &str) {
        let prefix = service.map(|s| format!("[:{s}] lua call ["));
        let found = self.log_entries().iter().any(|e| {
            e.contains(needle)
                && match &prefix {
                    Some(p) => e.starts_with(p.as_str()),
                    None => e.contains("] lua call ["),
                }
                && e.contains("] error : ")
        });
        assert!(
            found,
            "no `lua call ... error` entry from {service:?} containing {needle:?}\n{}",
            self.dump()
        );
    }

    /// The lines of stdout starting with `TEST `.
    pub fn result_lines(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with("TEST "))
            .collect()
    }

    /// The node exited 0 and printed exactly one result line, `TEST PASS <name>`.
    pub fn assert_pass(&self, name: &str) {
        let expected = format!("TEST PASS {name}");
        let lines = self.result_lines();
        assert!(
            lines == [expected.as_str()],
            "expected exactly one result line {expected:?}, got {lines:?}\n{}",
            self.dump()
        );
        self.assert_status(0);
    }

    pub fn assert_status(&self, code: i32) {
        assert!(
            self.status.and_then(|s| s.code()) == Some(code),
            "expected exit status {code}\n{}",
            self.dump()
        );
    }

    /// Deletes the scratch directory (kept on failure, for inspection).
    pub fn cleanup(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the Lua test service `test/<name>.lua` with our library and checks it passed.
pub fn run_pass(spec: NodeSpec) -> RunResult {
    let r = spec.run();
    r.assert_pass(&spec.start);
    r
}
