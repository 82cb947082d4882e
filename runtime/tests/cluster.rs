//! Cluster: real nodes on 127.0.0.1 (ports 21000-21099) talking through
//! `skynet.cluster`: our two-node example, a peer killed with calls waiting, a reload
//! to a new address with calls in flight, `__nowaiting` and a traced call, malformed
//! streams, and (with `SKYNET_C`) a node of this core and a C skynet node calling each
//! other both ways.

mod common;

use common::{lua_str, repo_root, scratch_dir, skipped, NodeSpec};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a node may take to show a line before the test fails.
const WAIT: Duration = Duration::from_secs(60);

/// A node running in the background; killed when dropped.
struct Node {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    out: Arc<Mutex<String>>,
}

impl Node {
    /// Runs `bin` with `config` (text) in a scratch directory, with `files` beside it.
    fn spawn(
        tag: &str,
        bin: &Path,
        config: impl FnOnce(&Path) -> String,
        files: &[(String, String)],
    ) -> Node {
        let dir = scratch_dir(tag);
        let log = dir.join("node.log");
        std::fs::write(dir.join("config.lua"), config(&log)).unwrap();
        for (path, content) in files {
            std::fs::write(dir.join(path), content).unwrap();
        }
        let mut child = Command::new(bin)
            .arg(dir.join("config.lua"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let out = Arc::clone(&out);
            thread::spawn(move || {
                let mut pipe = pipe;
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Node {
            child,
            dir,
            log,
            out,
        }
    }

    /// A node of this core running `spec`.
    fn ours(tag: &str, spec: &NodeSpec) -> Node {
        Node::spawn(
            tag,
            &common::skynet_bin(),
            |log| spec.config(log),
            &spec.files,
        )
    }

    fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn out(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    fn dump(&self) -> String {
        format!(
            "--- {} output ---\n{}\n--- log ---\n{}",
            self.dir.display(),
            self.out(),
            self.log()
        )
    }

    fn wait_for(&mut self, what: &str, found: impl Fn(&Node) -> bool) {
        let start = Instant::now();
        while !found(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                if !found(self) {
                    panic!("node exited ({status}) before {what}\n{}", self.dump());
                }
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "no {what} after {WAIT:?}\n{}",
                self.dump()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_log(&mut self, needle: &str) {
        self.wait_for(&format!("log line {needle:?}"), |n| {
            n.log().contains(needle)
        });
    }

    fn wait_out(&mut self, needle: &str) {
        self.wait_for(&format!("output {needle:?}"), |n| n.out().contains(needle));
    }

    /// kill -9, and reap it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for a `tester` result line and checks it passed.
    fn assert_pass(&mut self, name: &str) {
        self.wait_out("TEST ");
        let _ = self.child.wait();
        let line = format!("TEST PASS {name}");
        assert!(self.out().contains(&line), "no {line:?}\n{}", self.dump());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn cluster_file(nodes: &[(&str, u16)]) -> (String, String) {
    let mut text = String::new();
    for (name, port) in nodes {
        text.push_str(&format!("{name} = \"127.0.0.1:{port}\"\n"));
    }
    ("clustername.lua".to_owned(), text)
}

/// A node of ours running `start` with the cluster file `nodes` and extra config lines.
fn spec(start: &str, nodes: &[(&str, u16)], lines: &[String]) -> NodeSpec {
    let (name, text) = cluster_file(nodes);
    let mut s = NodeSpec::new(start)
        .file(&name, &text)
        .line(&format!("cluster = {}", lua_str(&name)));
    for l in lines {
        s = s.line(l);
    }
    s
}

/// Our cluster server node (test/cluster_server.lua) opening `node` at `port`.
fn our_server(tag: &str, node: &str, port: u16, who: &str) -> Node {
    let s = spec(
        "cluster_server",
        &[(node, port)],
        &[
            format!("cluster_node = {}", lua_str(node)),
            format!("cluster_tag = {}", lua_str(who)),
        ],
    );
    let mut n = Node::ours(tag, &s);
    n.wait_log("cluster server ready");
    n
}

#[test]
fn two_node_example() {
    let repo = repo_root();
    let examples = format!(
        "luaservice = luaservice .. {}",
        lua_str(&format!(";{}/examples/?.lua", repo.display()))
    );
    let nodes = [("db", 21000), ("app", 21001)];
    let mut db = Node::ours(
        "cluster-db",
        &spec("cluster/db", &nodes, std::slice::from_ref(&examples)),
    );
    db.wait_log("node db is ready");
    let r = spec("cluster/app", &nodes, &[examples]).run();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "SET a ->\tnil",
            "GET a ->\tfoobar",
            "GET a by handle ->\tfoobar",
            "100 KiB value back ->\ttrue",
            "GET note ->\tsent, not called",
            "unknown name ->\tfalse",
            "cluster example done",
        ],
        "{}\n{}",
        r.dump(),
        db.dump()
    );
    db.wait_log("Register [sdb]");
    r.cleanup();
}

#[test]
fn peer_killed_while_calls_wait() {
    let port = 21010;
    let mut server = our_server("cluster-kill-1", "server", port, "first");
    let mut client = Node::ours(
        "cluster-kill-client",
        &spec("test_cluster_kill", &[("server", port)], &[]),
    );
    server.wait_log("holding 100 calls");
    server.kill();
    client.wait_log("all 100 calls failed");
    let _server = our_server("cluster-kill-2", "server", port, "second");
    client.assert_pass("test_cluster_kill");
}

#[test]
fn reload_moves_a_node_with_calls_in_flight() {
    let (pa, pb) = (21011, 21012);
    let _a = our_server("cluster-reload-a", "server", pa, "A");
    let _b = our_server("cluster-reload-b", "server", pb, "B");
    let mut client = Node::ours(
        "cluster-reload-client",
        &spec(
            "test_cluster_reload",
            &[("server", pb)],
            &[format!("cluster_a = \"127.0.0.1:{pa}\"")],
        ),
    );
    client.assert_pass("test_cluster_reload");
}

#[test]
fn nowaiting_fails_at_once_and_traces_cross_nodes() {
    let port = 21030;
    let server = our_server("cluster-nowait-server", "server", port, "S");
    let mut client = Node::ours(
        "cluster-nowait-client",
        &spec(
            "test_cluster_nowaiting",
            &[],
            &[format!("cluster_server = \"127.0.0.1:{port}\"")],
        ),
    );
    client.assert_pass("test_cluster_nowaiting");
    let out = client.out();
    let tag = out
        .lines()
        .find_map(|l| l.strip_prefix("TRACETAG "))
        .unwrap_or_else(|| panic!("no TRACETAG line\n{}", client.dump()))
        .trim()
        .to_owned();
    // The server logs the request under the client's tag, prefixed as upstream's
    // clustersender prefixes it: "(<this node>-<peer node>-<session>)<tag>".
    let needle = format!("){tag}>");
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("<TRACE (") && l.contains(&needle) && l.contains(" request")),
        "no {needle:?} request line in the server's log\n{}",
        server.dump()
    );
}

// ---- malformed streams, sent by hand ----

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn dial(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// A name query (address 0) for "echo": the request cluster.query sends.
fn query(session: u32) -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&session.to_le_bytes());
    // skynet.pack("echo"): a short string, (4 << 3) | 4, then the bytes
    body.push((4 << 3) | 4);
    body.extend_from_slice(b"echo");
    frame(&body)
}

/// Reads one response frame: session, type, payload.
fn response(s: &mut TcpStream) -> (u32, u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    let mut body = vec![0u8; u16::from_be_bytes(head) as usize];
    s.read_exact(&mut body).unwrap();
    let session = u32::from_le_bytes([body[0], body[1], body[2], body[3]]);
    (session, body[4], body[5..].to_vec())
}

fn assert_query_answers(s: &mut TcpStream, session: u32) {
    s.write_all(&query(session)).unwrap();
    let (got, kind, _) = response(s);
    assert_eq!((got, kind), (session, 1), "name query answered ok");
}

fn assert_closed(s: &mut TcpStream, what: &str) {
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => panic!("{what}: connection not closed: {e}"),
    }
}

fn noise(mut seed: u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn malformed_streams_close_only_their_connection() {
    let port = 21013;
    let mut server = our_server("cluster-bad", "server", port, "bad");
    let mut good = dial(port);
    assert_query_answers(&mut good, 1);

    let mut random = noise(0x9e37_79b9_7f4a_7c15, 40);
    random[0] = 0x9f;
    let mut past = vec![0x80u8, 200];
    past.extend_from_slice(b"ab");
    let mut head = vec![0x81u8, 5];
    head.extend_from_slice(b"@echo");
    head.extend_from_slice(&7u32.to_le_bytes());
    head.extend_from_slice(&0x10000u32.to_le_bytes());
    let mut last = vec![3u8];
    last.extend_from_slice(&7u32.to_le_bytes());
    last.extend_from_slice(b"too short");
    let mut cut = frame(&head);
    cut.extend_from_slice(&frame(&last));
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "random bytes",
            frame(&random),
            "Invalid req package type -97",
        ),
        (
            "a name past the frame",
            frame(&past),
            "Invalid cluster message (size=4)",
        ),
        (
            "a multipart message cut short",
            cut,
            "parts do not add up to its size",
        ),
        (
            "an unknown request type",
            frame(&[7, 1, 2, 3, 4, 5]),
            "Invalid req package type 7",
        ),
    ];
    for (i, (what, bytes, reason)) in cases.iter().enumerate() {
        let mut bad = dial(port);
        bad.write_all(bytes).unwrap();
        if what.contains("cut short") {
            let (session, kind, msg) = response(&mut bad);
            assert_eq!(
                (session, kind, msg.as_slice()),
                (7, 0, &b"Invalid large req"[..])
            );
        }
        assert_closed(&mut bad, what);
        server.wait_log(reason);
        assert!(
            server.log().contains("Close cluster connection"),
            "{what}\n{}",
            server.dump()
        );
        assert_query_answers(&mut good, 2 + i as u32);
    }
    // another node still gets through
    let r = spec(
        "test_cluster_peer",
        &[("server", port)],
        &["cluster_peer_tag = \"bad\"".to_owned()],
    )
    .run();
    r.assert_pass("test_cluster_peer");
    r.cleanup();
}

// ---- mixed nodes: this core and C skynet ----

/// The built C skynet tree, if `SKYNET_C` names one.
fn c_tree(test: &str) -> Option<PathBuf> {
    match std::env::var_os("SKYNET_C") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => {
            skipped(test, "SKYNET_C (a built C skynet tree) is not set");
            None
        }
    }
}

/// A C skynet node running our test service `start` with its own lualib.
fn c_node(tag: &str, tree: &Path, start: &str, nodes: &[(&str, u16)], lines: &[String]) -> Node {
    let test = repo_root().join("test");
    let (name, text) = cluster_file(nodes);
    let t = tree.display();
    let config = |log: &Path| {
        let mut c = format!(
            "thread = 4\nharbor = 0\nstart = {start}\nbootstrap = \"snlua bootstrap\"\n\
             luaservice = {luaservice}\nlualoader = {loader}\nlua_path = {lua_path}\n\
             lua_cpath = {cpath}\ncpath = {cservice}\nlogger = {logger}\ncluster = {cluster}\n\
             snax = {snax}\n",
            start = lua_str(start),
            luaservice = lua_str(&format!("{t}/service/?.lua;{}/?.lua", test.display())),
            loader = lua_str(&format!("{t}/lualib/loader.lua")),
            lua_path = lua_str(&format!(
                "{t}/lualib/?.lua;{t}/lualib/?/init.lua;{}/?.lua",
                test.display()
            )),
            cpath = lua_str(&format!("{t}/luaclib/?.so")),
            cservice = lua_str(&format!("{t}/cservice/?.so")),
            logger = lua_str(&log.display().to_string()),
            cluster = lua_str(&name),
            snax = lua_str(&format!("{}/?.lua", test.display())),
        );
        for l in lines {
            c.push_str(l);
            c.push('\n');
        }
        c
    };
    Node::spawn(tag, &tree.join("skynet"), config, &[(name.clone(), text)])
}

#[test]
fn our_node_calls_a_c_node_needs_skynet_c() {
    let Some(tree) = c_tree("our_node_calls_a_c_node_needs_skynet_c") else {
        return;
    };
    let port = 21020;
    let mut server = c_node(
        "cluster-c-server",
        &tree,
        "cluster_server",
        &[("server", port)],
        &[
            "cluster_node = \"server\"".to_owned(),
            "cluster_tag = \"c\"".to_owned(),
        ],
    );
    server.wait_log("cluster server ready");
    let r = spec(
        "test_cluster_peer",
        &[("server", port)],
        &["cluster_peer_tag = \"c\"".to_owned()],
    )
    .run();
    r.assert_pass("test_cluster_peer");
    r.cleanup();
}

#[test]
fn a_c_node_calls_ours_needs_skynet_c() {
    let Some(tree) = c_tree("a_c_node_calls_ours_needs_skynet_c") else {
        return;
    };
    let port = 21021;
    let _server = our_server("cluster-rust-server", "server", port, "rust");
    let mut client = c_node(
        "cluster-c-client",
        &tree,
        "test_cluster_peer",
        &[("server", port)],
        &["cluster_peer_tag = \"rust\"".to_owned()],
    );
    client.assert_pass("test_cluster_peer");
}
