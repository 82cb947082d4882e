//! The native `gate` service on real sockets: a node runs test/gate_watchdog.lua, which
//! launches the gate and echoes packets; the test opens connections from this process
//! over 127.0.0.1 and checks the echoes, the watchdog's open/close reports, that 10,000
//! concurrent connections are held, and that a frame over 16 MiB closes only its own
//! connection.

mod common;

use common::{scratch_dir, skynet_bin, NodeSpec};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Node {
    child: Child,
    log: PathBuf,
}

impl Node {
    fn start(port: u16, header: &str) -> Node {
        Node::start_limited(port, header, None)
    }

    /// Starts the node, optionally with a descriptor limit.
    fn start_limited(port: u16, header: &str, nofile: Option<u64>) -> Node {
        let spec = NodeSpec::new("gate_watchdog")
            .threads(2)
            .line(&format!("gate_port = {port}"))
            .line(&format!("gate_header = \"{header}\""));
        let dir = scratch_dir("gate");
        let log = dir.join("node.log");
        std::fs::write(dir.join("config.lua"), spec.config(&log)).unwrap();
        let mut cmd = Command::new(skynet_bin());
        cmd.arg("config.lua")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(n) = nofile {
            // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: n,
                        rlim_max: n,
                    };
                    libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().unwrap();
        let node = Node { child, log };
        node.wait_log("gate ready");
        node
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until the log holds `needle`.
    fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.log_text().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("log never showed {needle:?}:\n{}", self.log_text());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

fn echo(s: &mut TcpStream, body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    s.write_all(&frame).unwrap();
    let mut header = [0u8; 2];
    s.read_exact(&mut header).unwrap();
    let mut reply = vec![0u8; u16::from_be_bytes(header) as usize];
    s.read_exact(&mut reply).unwrap();
    reply
}

/// Raises this process's descriptor limit towards `want`; returns what it got.
fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(want);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

#[test]
fn gate_echoes_and_reports_open_and_close() {
    let node = Node::start(18561, "S");
    let mut a = connect(18561);
    let mut b = connect(18561);
    assert_eq!(echo(&mut a, b"hello"), b"hello");
    assert_eq!(echo(&mut b, &[7u8; 3000]), vec![7u8; 3000]);
    // A frame split across writes is reassembled.
    a.write_all(&[0, 5, b'w']).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    a.write_all(b"orld").unwrap();
    let mut reply = [0u8; 7];
    a.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"\0\x05world");
    drop(a);
    drop(b);
    let mut c = connect(18561);
    assert_eq!(echo(&mut c, b"report"), b"report");
    node.wait_log("report opened 3 closed 2");
    let log = node.log_text();
    assert_eq!(log.matches("socket open: ").count(), 3, "{log}");
}

/// Reads from a connection the node should have closed: returns once the read sees the
/// end of the stream or a reset. Bytes instead of a close, or the read timeout running
/// out (the connection still open), fail the test.
fn expect_closed(s: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => panic!("{what}: got {:?} instead of a close", &buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("{what}: the connection was not closed ({e})"),
        }
    }
}

#[test]
fn oversize_frame_closes_only_that_connection() {
    let node = Node::start(18562, "L");
    let mut good = connect(18562);
    let mut bad = connect(18562);
    let frame = |body: &[u8]| {
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    };
    good.write_all(&frame(b"before")).unwrap();
    let mut reply = [0u8; 10];
    good.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[4..], b"before");
    // A header announcing a 16 MiB frame (the gate takes less), and a little of the body.
    bad.write_all(&[0x01, 0x00, 0x00, 0x00, 1, 2, 3]).unwrap();
    node.wait_log("Recv socket message > 16M");
    expect_closed(&mut bad, "the connection that sent the oversize frame");
    // The other connection is still served, and the watchdog heard of exactly one close.
    good.write_all(&frame(b"after")).unwrap();
    let mut reply = [0u8; 9];
    good.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[4..], b"after");
    good.write_all(&frame(b"report")).unwrap();
    let mut reply = [0u8; 10];
    good.read_exact(&mut reply).unwrap();
    assert_eq!(&reply[4..], b"report");
    node.wait_log("report opened ");
    let log = node.log_text();
    let report = log
        .lines()
        .find(|l| l.contains("report opened "))
        .unwrap_or("");
    assert!(
        report.ends_with("report opened 2 closed 1"),
        "the watchdog should have heard of 2 opens and 1 close: {report}\n{log}"
    );
}

#[test]
fn gate_holds_ten_thousand_connections_needs_nofile_10200() {
    const N: usize = 10_000;
    let limit = raise_fd_limit(N as u64 + 1000);
    if limit < N as u64 + 200 {
        common::skipped(
            "gate_holds_ten_thousand_connections_needs_nofile_10200",
            &format!("this process may open only {limit} descriptors (ulimit -Hn)"),
        );
        return;
    }
    let node = Node::start(18563, "S");
    // A hundred at a time: a client far ahead of the node overflows the listen backlog,
    // and each dropped SYN costs the client a one-second retransmit.
    let mut conns: Vec<TcpStream> = Vec::with_capacity(N);
    for batch in 1..=N / 100 {
        conns.extend((0..100).map(|_| connect(18563)));
        node.wait_log(&format!("opened {}\n", batch * 100));
    }
    // Every connection is live: a sample round trip on every 500th.
    for (i, c) in conns.iter_mut().enumerate().step_by(500) {
        let body = format!("conn {i}");
        assert_eq!(echo(c, body.as_bytes()), body.as_bytes());
    }
    let mut last = conns.pop().unwrap();
    assert_eq!(echo(&mut last, b"report"), b"report");
    node.wait_log(&format!("report opened {N} closed 0"));
    drop(conns);
    node.wait_log(&format!("closed {}", (N - 1) / 1000 * 1000));
}

/// Whether the node has closed this non-blocking connection (end of stream or reset);
/// false while it is open. The gate never sends anything unasked.
fn is_closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("unexpected bytes {:?}", &buf[..n]),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => false,
        Err(e) => panic!("reading a flood connection: {e}"),
    }
}

#[test]
fn running_out_of_descriptors_does_not_wedge_the_listener() {
    let node = Node::start_limited(18564, "S", Some(64));
    // Far more connections than the node has descriptors for.
    let mut flood: Vec<TcpStream> = (0..150)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", 18564)).ok())
        .collect();
    for c in &flood {
        c.set_nonblocking(true).unwrap();
    }
    // The gate takes connections until the node runs out of descriptors; from then on
    // each pending one is accepted with the descriptor held in reserve and closed at
    // once, so none is left waiting in the listen backlog (where, with edge-triggered
    // polling, it would stop the listener from ever hearing of new ones). Wait until
    // every connection is accounted for: opened by the gate, or closed by the node.
    let mut closed = vec![false; flood.len()];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (c, closed) in flood.iter_mut().zip(closed.iter_mut()) {
            if !*closed {
                *closed = is_closed(c);
            }
        }
        let opened = node.log_text().matches("socket open: ").count();
        let dropped = closed.iter().filter(|c| **c).count();
        if opened + dropped == flood.len() && dropped > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "of {} connections the gate opened {opened} and the node closed {dropped}; \
             the rest still wait:\n{}",
            flood.len(),
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(flood);
    // Once the flood is gone the gate accepts and serves again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = connect(18564);
        let mut frame = vec![0, 2];
        frame.extend_from_slice(b"ok");
        let _ = c.write_all(&frame);
        let mut reply = [0u8; 4];
        c.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        if c.read_exact(&mut reply).is_ok() {
            assert_eq!(&reply, b"\0\x02ok");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gate never served again:\n{}",
            node.log_text()
        );
    }
}
