//! Multi-node harbor tests: real `skynet` processes on 127.0.0.1 linked as harbor
//! slaves of one master. The harbor example of `examples/`, a link that drops, a peer
//! that answers the link handshake with the wrong id, and (with `SKYNET_C` naming a
//! built C skynet tree) the example with one node on C skynet, either way round.
//!
//! Ports: 21500-21599 (each test its own ten).

mod common;

use common::{lua_str, repo_root, scratch_dir, skipped, skynet_bin};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const PATIENCE: Duration = Duration::from_secs(30);

/// Which build a node runs, and the tree its Lua comes from.
#[derive(Clone)]
struct Build {
    bin: PathBuf,
    root: PathBuf,
    /// extra config lines (the C build's native module paths)
    extra: String,
}

impl Build {
    fn ours() -> Build {
        Build {
            bin: skynet_bin(),
            root: repo_root(),
            extra: String::new(),
        }
    }

    fn c() -> Option<Build> {
        let root = PathBuf::from(std::env::var_os("SKYNET_C").filter(|v| !v.is_empty())?);
        Some(Build {
            bin: root.join("skynet"),
            extra: format!(
                "cpath = {}\nlua_cpath = {}\n",
                lua_str(&format!("{}/cservice/?.so", root.display())),
                lua_str(&format!("{}/luaclib/?.so", root.display()))
            ),
            root,
        })
    }

    /// A harbor node's config: `services` is a directory on `luaservice`.
    fn config(
        &self,
        harbor: u32,
        master: u16,
        address: u16,
        standalone: bool,
        start: &str,
    ) -> String {
        let r = self.root.display();
        let repo = repo_root();
        let mut c = format!(
            "thread = 4\nharbor = {harbor}\nmaster = \"127.0.0.1:{master}\"\n\
             address = \"127.0.0.1:{address}\"\nstart = {}\nbootstrap = \"snlua bootstrap\"\n\
             luaservice = {}\nlualoader = {}\nlua_path = {}\n{}",
            lua_str(start),
            lua_str(&format!(
                "{r}/service/?.lua;{}/examples/harbor/?.lua;{}/test/?.lua",
                repo.display(),
                repo.display()
            )),
            lua_str(&format!("{r}/lualib/loader.lua")),
            lua_str(&format!("{r}/lualib/?.lua;{r}/lualib/?/init.lua")),
            self.extra
        );
        if standalone {
            c.push_str(&format!("standalone = \"127.0.0.1:{master}\"\n"));
        }
        c
    }
}

/// A running node; killed when dropped.
struct Node {
    child: Child,
    dir: PathBuf,
}

impl Node {
    /// Runs `bin` in `cwd` with `config` plus a logger file in a scratch directory.
    fn start(tag: &str, bin: &Path, cwd: &Path, config: &str) -> Node {
        let dir = scratch_dir(tag);
        let log = dir.join("node.log");
        let config = format!(
            "{config}\nlogger = {}\n",
            lua_str(&log.display().to_string())
        );
        std::fs::write(dir.join("config.lua"), config).unwrap();
        let child = Command::new(bin)
            .arg(dir.join("config.lua"))
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("stdout.txt")).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap())
            .spawn()
            .unwrap();
        Node { child, dir }
    }

    fn run(tag: &str, build: &Build, config: &str) -> Node {
        Node::start(tag, &build.bin, &build.root, config)
    }

    fn read(&self, file: &str) -> String {
        std::fs::read(self.dir.join(file))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn log(&self) -> String {
        self.read("node.log")
    }

    fn stdout(&self) -> String {
        self.read("stdout.txt")
    }

    fn dump(&self) -> String {
        format!(
            "node in {}\n--- log ---\n{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.dir.display(),
            self.log(),
            self.stdout(),
            self.read("stderr.txt")
        )
    }

    /// Waits until stdout (`in_log` false) or the log has a line containing `needle`.
    fn wait(&mut self, needle: &str, in_log: bool) {
        let start = Instant::now();
        loop {
            let text = if in_log { self.log() } else { self.stdout() };
            if text.contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("node exited ({status}) before {needle:?}\n{}", self.dump());
            }
            if start.elapsed() > PATIENCE {
                panic!("gave up waiting for {needle:?}\n{}", self.dump());
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_stdout(&mut self, needle: &str) {
        self.wait(needle, false);
    }

    fn wait_log(&mut self, needle: &str) {
        self.wait(needle, true);
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example's checks: node 2's visitor talks to node 1's hub.
fn assert_example(hub: &mut Node, visitor: &mut Node) {
    visitor.wait_stdout("harbor example done");
    let out = visitor.stdout();
    for line in [
        "HUB is :01000009 on harbor 1",
        "hello visitor by handle, this is the hub on harbor 1",
        "hello visitor by name, this is the hub on harbor 1",
        "the hub got 100000 bytes",
        "the hub got 4194304 bytes",
    ] {
        assert!(
            out.contains(line),
            "visitor lacks {line:?}\n{}",
            visitor.dump()
        );
    }
    hub.wait_stdout("hub got a note: sent from harbor 2");
    hub.wait_stdout("harbor 2 connected");
}

#[test]
fn harbor_example_runs_two_slaves_and_a_master() {
    let repo = repo_root();
    let example = |n: u32, lines: &str| {
        let path = repo.join(format!("examples/config.harbor{n}"));
        format!("{}\n{lines}", std::fs::read_to_string(path).unwrap())
    };
    let mut hub = Node::start(
        "harbor-example-1",
        &skynet_bin(),
        &repo,
        &example(
            1,
            "standalone = \"127.0.0.1:21500\"\nmaster = \"127.0.0.1:21500\"\naddress = \"127.0.0.1:21501\"",
        ),
    );
    hub.wait_stdout("waiting for harbor 2");
    let mut visitor = Node::start(
        "harbor-example-2",
        &skynet_bin(),
        &repo,
        &example(
            2,
            "master = \"127.0.0.1:21500\"\naddress = \"127.0.0.1:21502\"",
        ),
    );
    assert_example(&mut hub, &mut visitor);
    visitor.stop();
    hub.wait_stdout("harbor 2 left");
    hub.wait_log("slave 2 is down");
    hub.stop();
}

/// Also a call to harbor 2 made before its link is up: it waits in the router's queue
/// and goes out when the link comes up.
#[test]
fn a_dropped_link_reports_down_and_later_sends_bounce() {
    let ours = Build::ours();
    let mut node1 = Node::run(
        "harbor-drop-1",
        &ours,
        &ours.config(1, 21510, 21511, true, "harbor_drop"),
    );
    node1.wait_stdout("early call sent");
    let node2 = Node::run(
        "harbor-drop-2",
        &ours,
        &ours.config(2, 21510, 21512, false, "harbor_victim"),
    );
    node1.wait_stdout("victim answered pong again");
    node1.wait_stdout("early call answered :02000007");
    node1.wait_stdout("call by name before VICTIM existed: pong");
    node2.stop();
    node1.wait_stdout("harbor drop test done");
    assert!(
        node1.log().contains(" is too large."),
        "no log line for the message over 16 MiB\n{}",
        node1.dump()
    );
    let out = node1.stdout();
    for line in [
        "a call with 17 MiB: false",
        "harbor 2 is down",
        "call by handle after the drop: false",
        "call by name after the drop: false",
    ] {
        assert!(
            out.contains(line),
            "node 1 lacks {line:?}\n{}",
            node1.dump()
        );
    }
    node1.wait_log("Drop message to harbor 2 from 1000");
    node1.wait_log("slave 2 is down");
    node1.stop();
}

#[test]
fn a_peer_with_the_wrong_harbor_id_is_refused() {
    let ours = Build::ours();
    let mut node1 = Node::run(
        "harbor-refuse-1",
        &ours,
        &ours.config(1, 21520, 21521, true, "harbor_refuse"),
    );
    node1.wait_log("Shakehand ready");
    let fake = format!(
        "{}fake_master = \"127.0.0.1:21520\"\nfake_address = \"127.0.0.1:21522\"\n",
        ours.config(0, 21520, 21523, false, "harbor_fake_peer")
    );
    let mut peer = Node::run("harbor-refuse-peer", &ours, &fake);
    peer.wait_stdout("master answered W 1");
    peer.wait_stdout("peer says it is harbor 1");
    node1.wait_log("Invalid shakehand id (2) from fd = ");
    assert!(node1.log().contains(" , harbor = 3"), "{}", node1.dump());
    node1.wait_stdout("call to harbor 2: false");
    node1.wait_stdout("harbor 2 link is down");
    peer.wait_stdout("second harbor 2 answered: false");
    node1.wait_log("Slave 2 already register on 127.0.0.1:21522");
    peer.stop();
    node1.stop();
}

/// The harbor example with node 1 (hub and master) on `first` and node 2 on `second`.
fn mixed_example(first: &Build, second: &Build, port: u16) {
    let mut hub = Node::run(
        "harbor-mixed-1",
        first,
        &first.config(1, port, port + 1, true, "hub"),
    );
    hub.wait_stdout("waiting for harbor 2");
    let mut visitor = Node::run(
        "harbor-mixed-2",
        second,
        &second.config(2, port, port + 2, false, "visitor"),
    );
    assert_example(&mut hub, &mut visitor);
    visitor.stop();
    hub.wait_stdout("harbor 2 left");
    hub.stop();
}

#[test]
fn mixed_c_master_and_our_slave_needs_skynet_c() {
    let Some(c) = Build::c() else {
        return skipped(
            "mixed_c_master_and_our_slave_needs_skynet_c",
            "SKYNET_C is unset",
        );
    };
    mixed_example(&c, &Build::ours(), 21530);
}

#[test]
fn mixed_our_master_and_c_slave_needs_skynet_c() {
    let Some(c) = Build::c() else {
        return skipped(
            "mixed_our_master_and_c_slave_needs_skynet_c",
            "SKYNET_C is unset",
        );
    };
    mixed_example(&Build::ours(), &c, 21540);
}
