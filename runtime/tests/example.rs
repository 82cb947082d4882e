//! The main example (examples/config) end to end: the node runs as a user would start
//! it (from the repository root, the example's own config with only the ports and the
//! log file changed), and the example's client (`skynet lua examples/client.lua`, a
//! second process fed commands on stdin) logs in, sets, gets and quits; two clients
//! share the store at the same time; a client that sends garbage is closed with a log
//! line while the others carry on.
//!
//! Ports: test k uses gate 22000+10k and debug console 22001+10k.

mod common;

use common::{lua_str, repo_root, scratch_dir, skynet_bin};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// How long any awaited event may take (a bound on waiting, not a timing assertion).
const PATIENCE: Duration = Duration::from_secs(30);

/// The example node; killed when dropped.
struct Node {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    gate: u16,
}

impl Node {
    fn start(k: u16) -> Node {
        let dir = scratch_dir("example");
        let log = dir.join("node.log");
        let gate = 22000 + 10 * k;
        let repo = repo_root();
        let config = format!(
            "include {}\ngate_port = {gate}\ndebug_port = {}\nlogger = {}\n",
            lua_str(&repo.join("examples/config").display().to_string()),
            gate + 1,
            lua_str(&log.display().to_string()),
        );
        let path = dir.join("config");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(skynet_bin())
            .arg(&path)
            .current_dir(&repo)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let node = Node {
            child,
            dir,
            log,
            gate,
        };
        node.wait_log("Watchdog listen on");
        node
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, needle: &str) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                start.elapsed() < PATIENCE,
                "no log line with {needle:?}\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // kept after a failure, for inspection
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The example client, its stdout read line by line.
struct Client {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    seen: Vec<String>,
    /// The session of the client's last request (its handshake is 1).
    session: u32,
}

impl Client {
    fn start(node: &Node) -> Client {
        let mut child = Command::new(skynet_bin())
            .args(["lua", "examples/client.lua", "127.0.0.1"])
            .arg(node.gate.to_string())
            .current_dir(repo_root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Client {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            session: 1,
        }
    }

    /// Waits for `want` as a whole output line.
    fn expect(&mut self, want: &str) {
        let start = Instant::now();
        loop {
            let left = PATIENCE.saturating_sub(start.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line == want;
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!("client never printed {want:?}; it printed {:#?}", self.seen),
            }
        }
    }

    /// Sends a command line; returns the session of the request it makes.
    fn send(&mut self, line: &str) -> u32 {
        writeln!(self.stdin, "{line}").unwrap();
        self.session += 1;
        self.session
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn login(c: &mut Client) {
    c.expect("RESPONSE\t1");
    c.expect("msg\tWelcome to skynet, I will send heartbeat every 5 sec.");
}

/// Stores a value and reads it back.
fn set_get(c: &mut Client, key: &str, value: &str) {
    let set = c.send(&format!("set {key} {value}"));
    c.expect(&format!("RESPONSE\t{set}"));
    let get = c.send(&format!("get {key}"));
    c.expect(&format!("RESPONSE\t{get}"));
    c.expect(&format!("result\t{value}"));
}

#[test]
fn client_logs_in_sets_gets_and_quits() {
    let node = Node::start(0);
    let mut c = Client::start(&node);
    login(&mut c);
    set_get(&mut c, "hello", "world");
    c.send("quit");
    c.expect("Server closed");
    node.wait_log("socket close");
}

#[test]
fn two_clients_share_the_store() {
    let node = Node::start(1);
    let mut a = Client::start(&node);
    let mut b = Client::start(&node);
    login(&mut a);
    login(&mut b);
    set_get(&mut a, "from_a", "1");
    set_get(&mut b, "from_b", "2");
    a.send("get from_b");
    a.expect("result\t2");
    b.send("get from_a");
    b.expect("result\t1");
    a.send("quit");
    a.expect("Server closed");
    b.send("get from_b");
    b.expect("result\t2");
}

#[test]
fn garbage_closes_only_its_client() {
    let node = Node::start(2);
    let mut good = Client::start(&node);
    login(&mut good);
    // a stream cut short, a header promising more records than there are bytes, and
    // a well-formed request for a protocol that does not exist
    for garbage in [&b"\x01\x02\x03"[..], b"\xff", b"\x01\x05", b"\x05\x01\xc8"] {
        let mut s = TcpStream::connect(("127.0.0.1", node.gate)).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut frame = (garbage.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(garbage);
        s.write_all(&frame).unwrap();
        // the server closes it: reads end (heartbeats may come first)
        let mut buf = [0u8; 256];
        while s.read(&mut buf).unwrap_or(0) > 0 {}
    }
    for reason in ["Invalid unpack stream", "decode error", "99 not found"] {
        node.wait_log(reason);
    }
    let start = Instant::now();
    while node.log().matches("agent: closing client").count() < 4 {
        assert!(start.elapsed() < PATIENCE, "{}", node.log());
        thread::sleep(Duration::from_millis(50));
    }
    set_get(&mut good, "still", "here");
}
