//! The socket server: one thread that owns every socket, driven by mio.
//!
//! Services never see file descriptors, only socket ids. The functions here are what
//! `skynet.socketdriver` and `gate` call from worker threads: each reserves an id
//! (synchronously, so `listen`/`connect` return it at once) and queues a [`Request`] for
//! the socket thread, which wakes through a mio `Waker`. Everything a socket does is
//! reported to its owner service as an [`Event`], handed to the [`Node`].
//!
//! Ids come from a counter that only moves forward (skipping ids still alive), as
//! upstream's, but there is no fixed table: the limit is the process's descriptors.
//!
//! This module owns the request queue, the id registry and the [`Node`] interface; the
//! socket thread itself is in `server.rs`, address arguments and their resolution in
//! `address.rs`, the PTYPE_SOCKET record in `record.rs`. It sits below the services and
//! the scheduler and knows nothing of them (it imports nothing of this crate above
//! [`crate::message`]): what it needs from the node it gets through [`Node`].

mod address;
mod direct;
mod poller;
pub mod record;
mod server;

pub use address::{
    decode_udp_address, encode_udp_address, parse_address, resolve_all, AddressError,
};
pub use poller::{lend, wake, worker_polls};
pub use record::Event;

use crate::message::Payload;
use address::resolve_or_any;
use crossbeam::channel::{self, Receiver, Sender};
use parking_lot::Mutex;
use server::Family;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};

/// Bytes queued for writing: copied from Lua, or a payload buffer handed over.
pub enum SendBuffer {
    Bytes(Vec<u8>),
    Payload(Payload),
}

impl SendBuffer {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            SendBuffer::Bytes(v) => v,
            SendBuffer::Payload(p) => p.bytes(),
        }
    }
}

/// Which write queue a send joins: `send` is high, `lsend` low (socket.md §4.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Priority {
    High,
    Low,
}

enum Request {
    Listen {
        id: i32,
        owner: u32,
        listener: std::net::TcpListener,
    },
    Connect {
        id: i32,
        owner: u32,
        host: String,
        port: u16,
    },
    Bind {
        id: i32,
        owner: u32,
        fd: RawFd,
    },
    Start {
        id: i32,
        owner: u32,
    },
    Pause {
        id: i32,
    },
    Close {
        id: i32,
        owner: u32,
        shutdown: bool,
    },
    Nodelay {
        id: i32,
    },
    /// Counted in the socket's `Gate::in_flight` (direct.rs); `offset` bytes of the
    /// buffer were written directly already.
    Send {
        id: i32,
        buffer: SendBuffer,
        offset: usize,
        priority: Priority,
    },
    Udp {
        id: i32,
        owner: u32,
        socket: std::net::UdpSocket,
        family: Family,
        peer: Option<SocketAddr>,
    },
    UdpConnect {
        id: i32,
        peer: SocketAddr,
    },
    UdpSend {
        id: i32,
        buffer: SendBuffer,
        to: SocketAddr,
    },
    Info {
        reply: Sender<Vec<SocketInfo>>,
    },
    Exit,
}

/// One line of `socketdriver.info()` (netstat).
#[derive(Debug, Default, Clone)]
pub struct SocketInfo {
    pub id: i32,
    pub owner: u32,
    /// `LISTEN`, `TCP`, `UDP`, `BIND` or `CLOSING`.
    pub kind: &'static str,
    pub accepted: u64,
    pub read: u64,
    pub write: u64,
    pub wbuffer: u64,
    pub rtime: u64,
    pub wtime: u64,
    pub reading: bool,
    pub writing: bool,
    pub sock: Option<String>,
    pub peer: Option<String>,
}

/// What other threads may know about a live socket.
#[derive(Default)]
struct Shared {
    /// Closed locally with data still to write: sends are refused.
    pub closing: AtomicBool,
    /// Who may write to the socket: a worker directly, or only the socket thread.
    gate: Mutex<direct::Gate>,
}

struct Registry {
    next_id: AtomicI32,
    live: Mutex<HashMap<i32, Arc<Shared>>>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    next_id: AtomicI32::new(0),
    live: Mutex::new(HashMap::new()),
});

/// Everything the socket server needs from the node it runs in; nothing else reaches
/// out of this module, so it imports nothing above [`crate::message`].
///
/// Three calls, because the socket thread does three things that reach outside: it
/// reports events to services, it logs (upstream's `skynet_error(NULL, ...)` lines), and
/// it stamps reads and writes with the node's time for `socketdriver.info()` (upstream's
/// timer thread pushes that time into its socket server). Waking a sleeping worker is
/// part of [`Node::deliver`], not a call of its own: the socket thread wakes workers for
/// nothing but a delivered event (upstream's socket thread also wakes one after each
/// forwarded message), so a separate call would only be a way to forget it.
///
/// A trait object rather than generics: the server is started once, and the dynamic
/// call costs nothing next to a queue push; tests give the server a node of their own.
pub trait Node: Send + Sync + 'static {
    /// Hands `event` to service `owner` as its PTYPE_SOCKET message
    /// ([`Event::into_message`]) and wakes a worker if all sleep. When there is no such
    /// service, the event and its DATA/UDP buffer are freed (dropping an `Event` does
    /// that; a message made from one needs `record::free_buffer`).
    fn deliver(&self, owner: u32, event: Event);
    /// Logs one line as the node's error log does, with source 0.
    fn log(&self, text: &str);
    /// The node's time in centiseconds since boot (`skynet.now()`).
    fn now(&self) -> u64;
    /// Whether a worker sleeps for want of work: it would poll if the socket thread
    /// let go of the role (poller.rs).
    fn idle_worker(&self) -> bool;
}

struct Channel {
    tx: Sender<Request>,
    waker: Arc<mio::Waker>,
    /// For the one thing worth logging on this side: a wake-up that failed.
    node: Arc<dyn Node>,
}

static CHANNEL: OnceLock<Channel> = OnceLock::new();

/// Starts the socket server, which reports to `node`, and its thread; call once at boot.
pub fn start(node: Arc<dyn Node>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let (tx, rx): (Sender<Request>, Receiver<Request>) = channel::unbounded();
    let poll = mio::Poll::new()?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), server::WAKER)?);
    // A second server would get requests no service can address: refuse it.
    let channel = Channel {
        tx,
        waker: waker.clone(),
        node: node.clone(),
    };
    let server = server::Server::new(poll, rx, node.clone());
    if CHANNEL.set(channel).is_err() || !poller::install(server, waker, node) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the socket server is already running",
        ));
    }
    std::thread::Builder::new()
        .name("socket".into())
        .spawn(poller::socket_thread)
}

/// Asks the socket thread to close everything and stop.
pub fn exit() {
    request(Request::Exit);
}

/// The OS text of an error (strerror's, as upstream reports it), without Rust's
/// " (os error N)".
fn error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// Queues `r` for the socket thread and wakes it. Before the server starts, or once it
/// has stopped, there is nobody to serve the request: it is dropped, and with it any
/// buffer it carries (an `info` asker then gets an empty list).
fn request(r: Request) {
    let Some(ch) = CHANNEL.get() else { return };
    if ch.tx.send(r).is_err() {
        return;
    }
    if let Err(e) = ch.waker.wake() {
        ch.node.log(&format!(
            "socket-server : send ctrl command error {}.",
            error_text(&e)
        ));
    }
    poller::nudge();
}

/// Reserves a fresh socket id.
fn reserve_id() -> i32 {
    let mut live = REGISTRY.live.lock();
    loop {
        let id = REGISTRY
            .next_id
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.wrapping_add(1) & 0x7fff_ffff)
            })
            .map(|n| n.wrapping_add(1) & 0x7fff_ffff)
            .unwrap_or(1);
        if id != 0 && !live.contains_key(&id) {
            live.insert(id, Arc::default());
            return id;
        }
    }
}

fn shared(id: i32) -> Option<Arc<Shared>> {
    REGISTRY.live.lock().get(&id).cloned()
}

/// Forgets an id for good (the socket thread freed it).
fn release_id(id: i32) {
    REGISTRY.live.lock().remove(&id);
}

/// `listen`: binds and listens now; the CONNECT event (local ip, port) follows.
pub fn listen(owner: u32, host: &str, port: u16, backlog: i32) -> std::io::Result<i32> {
    let listener = bind_listener(host, port, backlog)?;
    let id = reserve_id();
    request(Request::Listen {
        id,
        owner,
        listener,
    });
    Ok(id)
}

/// `connect`: returns the id at once; CONNECT or ERROR follows.
pub fn connect(owner: u32, host: &str, port: u16) -> i32 {
    let id = reserve_id();
    request(Request::Connect {
        id,
        owner,
        host: host.to_owned(),
        port,
    });
    id
}

/// `bind`: wraps an OS descriptor (stdin for the console).
pub fn bind(owner: u32, fd: RawFd) -> i32 {
    let id = reserve_id();
    request(Request::Bind { id, owner, fd });
    id
}

pub fn start_socket(owner: u32, id: i32) {
    request(Request::Start { id, owner });
}

pub fn pause(id: i32) {
    request(Request::Pause { id });
}

pub fn close(owner: u32, id: i32) {
    request(Request::Close {
        id,
        owner,
        shutdown: false,
    });
}

pub fn shutdown(owner: u32, id: i32) {
    request(Request::Close {
        id,
        owner,
        shutdown: true,
    });
}

pub fn nodelay(id: i32) {
    request(Request::Nodelay { id });
}

/// `send`/`lsend`: false when the id is unknown (or, for high priority, closing); the
/// buffer is dropped (freed) then. A high-priority send to a connected socket with
/// nothing queued is written from the calling thread (direct.rs); what the kernel does
/// not take, and every low-priority send, goes to the socket thread.
pub fn send(id: i32, buffer: SendBuffer, priority: Priority) -> bool {
    let Some(s) = shared(id) else { return false };
    if priority == Priority::High && s.closing.load(Ordering::Acquire) {
        return false;
    }
    let mut gate = s.gate.lock();
    let offset = match priority {
        Priority::High => gate.try_write(buffer.as_slice(), now),
        Priority::Low => 0,
    };
    if offset > 0 && offset == buffer.as_slice().len() {
        return true;
    }
    // Counted and queued before the gate opens again: a later send sees it and queues
    // behind it.
    gate.in_flight += 1;
    request(Request::Send {
        id,
        buffer,
        offset,
        priority,
    });
    true
}

/// The node's time, for the netstat stamp of a direct write.
fn now() -> u64 {
    CHANNEL.get().map_or(0, |ch| ch.node.now())
}

/// Binds and listens (synchronously, on the calling service's thread, so that `listen`
/// can fail at once).
fn bind_listener(host: &str, port: u16, backlog: i32) -> std::io::Result<std::net::TcpListener> {
    let addr = resolve_or_any(host, port)?;
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(backlog)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

fn new_udp(owner: u32, local: SocketAddr, peer: Option<SocketAddr>) -> std::io::Result<i32> {
    let socket = UdpSocket::bind(local)?;
    socket.set_nonblocking(true)?;
    let id = reserve_id();
    request(Request::Udp {
        id,
        owner,
        socket,
        family: Family::of(&local),
        peer,
    });
    Ok(id)
}

fn unspecified_like(addr: &SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// `udp`: a UDP socket bound to `local` (None: an unbound IPv4 socket); reading is on.
pub fn udp(owner: u32, local: Option<(&str, u16)>) -> std::io::Result<i32> {
    let addr = match local {
        Some((host, port)) => resolve_or_any(host, port)?,
        None => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
    };
    new_udp(owner, addr, None)
}

/// `udp_listen`: a UDP socket bound to `host:port`.
pub fn udp_listen(owner: u32, host: &str, port: u16) -> std::io::Result<i32> {
    new_udp(owner, resolve_or_any(host, port)?, None)
}

/// `udp_dial`: a UDP socket whose default destination is `host:port`.
pub fn udp_dial(owner: u32, host: &str, port: u16) -> std::io::Result<i32> {
    let peer = resolve_or_any(host, port)?;
    new_udp(owner, unspecified_like(&peer), Some(peer))
}

/// `udp_connect`: sets the default destination of a UDP socket.
pub fn udp_connect(id: i32, host: &str, port: u16) -> std::io::Result<()> {
    let peer = resolve_or_any(host, port)?;
    request(Request::UdpConnect { id, peer });
    Ok(())
}

/// `udp_send`: false when the id is unknown.
pub fn udp_send(id: i32, to: SocketAddr, buffer: SendBuffer) -> bool {
    match shared(id) {
        Some(_) => {
            request(Request::UdpSend { id, buffer, to });
            true
        }
        None => false,
    }
}

/// `info`: every live socket, as the socket thread sees it.
pub fn info() -> Vec<SocketInfo> {
    let (tx, rx) = channel::bounded(1);
    request(Request::Info { reply: tx });
    // No server to answer: no sockets.
    rx.recv().unwrap_or_default()
}
