//! The socket thread (upstream's `socket_server.c` poll side): it owns every socket and
//! its write queues, polls them with mio (edge-triggered), serves the requests services
//! queue, and reports what happens to each socket's owner through the [`Node`]. It never
//! calls into a service, the scheduler or the log itself.
//!
//! Reads go into one 64 KiB scratch buffer and each read becomes a DATA payload of exactly
//! the bytes read: one `read` per wakeup for small frames, where upstream's adaptive
//! buffer (starting at 64 bytes) needs two. Writes go out at once when nothing is queued;
//! what the kernel does not take waits in two queues, high priority first.

use super::address::resolve;
use super::{
    encode_udp_address, error_text, release_id, shared, Event, Node, Priority, Request, SendBuffer,
    Shared, SocketInfo,
};
use crate::message::Payload;
use crossbeam::channel::Receiver;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The token of the waker that request() fires; socket tokens are socket ids.
pub(super) const WAKER: Token = Token(usize::MAX);
const SCRATCH: usize = 64 * 1024;
const WARNING_SIZE: usize = 1024 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// Listening, not accepting until started.
    PListen,
    Listen,
    Connecting,
    Connected,
    /// Accepted, inert until started.
    PAccept,
    /// Peer closed (EOF read) or reading stopped for a close.
    HalfCloseRead,
    /// A write failed: nothing more is written.
    HalfCloseWrite,
    Bind,
}

/// The family of a UDP socket, fixed when it is made: a datagram or a default
/// destination of the other family is refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Family {
    V4,
    V6,
}

impl Family {
    pub(super) fn of(addr: &SocketAddr) -> Family {
        match addr {
            SocketAddr::V4(_) => Family::V4,
            SocketAddr::V6(_) => Family::V6,
        }
    }
}

enum Io {
    Listener(TcpListener),
    Stream(TcpStream),
    /// An OS descriptor we read but do not own (not closed when the socket goes).
    Bound(RawFd),
    Udp(UdpSocket, Family),
}

/// Bytes waiting to be written (upstream's `write_buffer`).
struct WriteBuffer {
    buffer: SendBuffer,
    offset: usize,
    /// Destination of a datagram (UDP only).
    to: Option<SocketAddr>,
}

struct Socket {
    id: i32,
    owner: u32,
    io: Io,
    state: State,
    reading: bool,
    high: VecDeque<WriteBuffer>,
    low: VecDeque<WriteBuffer>,
    pending: usize,
    warn_level: usize,
    warned: bool,
    /// `close` came while data was pending: free once it is written.
    closing: bool,
    close_reported: bool,
    /// The peer closed its side: read until EOF even after a short read.
    eof_pending: bool,
    accepted: u64,
    bytes_read: u64,
    bytes_written: u64,
    read_time: u64,
    write_time: u64,
    local: Option<SocketAddr>,
    peer: Option<SocketAddr>,
    shared: Arc<Shared>,
}

impl Socket {
    /// Publishes a connected stream's descriptor for direct writes (direct.rs).
    fn open_gate(&self) {
        if let Io::Stream(t) = &self.io {
            self.shared.gate.lock().fd = t.as_raw_fd();
        }
    }

    fn new(id: i32, owner: u32, io: Io, state: State) -> Socket {
        Socket {
            id,
            owner,
            io,
            state,
            reading: false,
            high: VecDeque::new(),
            low: VecDeque::new(),
            pending: 0,
            warn_level: WARNING_SIZE,
            warned: false,
            closing: false,
            close_reported: false,
            eof_pending: false,
            accepted: 0,
            bytes_read: 0,
            bytes_written: 0,
            read_time: 0,
            write_time: 0,
            local: None,
            peer: None,
            // Every id is reserved before its request is queued, so it is registered;
            // were it not, a flag of its own would only mean senders never see `closing`.
            shared: shared(id).unwrap_or_default(),
        }
    }
}

/// `ip:port` as upstream renders it (IPv6 without brackets).
fn render(addr: &SocketAddr) -> String {
    format!("{}:{}", addr.ip(), addr.port())
}

pub(super) struct Server {
    /// Where events, log lines and the time come from and go.
    node: Arc<dyn Node>,
    poll: Poll,
    requests: Receiver<Request>,
    /// The readiness buffer; None once the server has stopped.
    events: Option<Events>,
    sockets: HashMap<i32, Socket>,
    scratch: Vec<u8>,
    /// A descriptor held in reserve: when accept runs out of descriptors it is given up
    /// to accept and close the pending connection, so the backlog does not wedge.
    spare_fd: Option<std::fs::File>,
}

/// The spare descriptor. Without one (none to be had) accept still reports running out
/// of descriptors, it only cannot drain the backlog.
fn open_spare() -> Option<std::fs::File> {
    std::fs::File::open("/dev/null").ok()
}

impl Server {
    pub(super) fn new(poll: Poll, requests: Receiver<Request>, node: Arc<dyn Node>) -> Server {
        Server {
            node,
            poll,
            requests,
            events: Some(Events::with_capacity(256)),
            sockets: HashMap::new(),
            scratch: vec![0; SCRATCH],
            spare_fd: open_spare(),
        }
    }

    /// One turn of the poll loop: waits up to `timeout` for readiness (the waker only
    /// ends the wait), handles it, then serves the queued requests. False once `Exit`
    /// was served (every socket is closed then) or the poll set broke.
    pub(super) fn turn(&mut self, timeout: Option<Duration>) -> bool {
        // Taken out for the turn: handling readiness needs the server mutably.
        let Some(mut events) = self.events.take() else {
            return false;
        };
        if let Err(e) = self.poll.poll(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                // Upstream logs this and polls again. Any error but EINTR means the poll
                // set itself is broken (EBADF, EINVAL), so polling again would only spin.
                self.node
                    .log(&format!("socket-server error: {}", error_text(&e)));
                return false;
            }
        }
        for ev in events.iter() {
            if ev.token() == WAKER {
                continue;
            }
            let id = ev.token().0 as i32;
            if ev.is_read_closed() {
                self.peer_closed(id);
            }
            self.ready(
                id,
                ev.is_readable() || ev.is_read_closed(),
                ev.is_writable() || ev.is_error(),
            );
        }
        self.events = Some(events);
        while let Ok(r) = self.requests.try_recv() {
            if !self.serve(r) {
                self.close_all();
                self.events = None;
                return false;
            }
        }
        true
    }

    /// Whether requests wait to be served.
    pub(super) fn has_requests(&self) -> bool {
        !self.requests.is_empty()
    }

    fn register(&mut self, s: &mut Socket) -> io::Result<()> {
        let token = Token(s.id as usize);
        let registry = self.poll.registry();
        match &mut s.io {
            Io::Listener(l) => registry.register(l, token, Interest::READABLE),
            Io::Stream(t) => registry.register(t, token, Interest::READABLE | Interest::WRITABLE),
            Io::Bound(fd) => registry.register(&mut SourceFd(fd), token, Interest::READABLE),
            Io::Udp(u, _) => registry.register(u, token, Interest::READABLE | Interest::WRITABLE),
        }
    }

    fn insert(&mut self, mut s: Socket) -> bool {
        match self.register(&mut s) {
            Ok(()) => {
                self.sockets.insert(s.id, s);
                true
            }
            Err(e) => {
                self.refuse(s.id, s.owner, &e);
                false
            }
        }
    }

    /// Frees a socket; CLOSE goes to `notify` unless one was already reported.
    fn free(&mut self, id: i32, notify: Option<u32>) {
        let Some(mut s) = self.sockets.remove(&id) else {
            return;
        };
        s.shared.gate.lock().fd = -1;
        let registry = self.poll.registry();
        let deregistered = match &mut s.io {
            Io::Listener(l) => registry.deregister(l),
            Io::Stream(t) => registry.deregister(t),
            Io::Bound(fd) => registry.deregister(&mut SourceFd(fd)),
            Io::Udp(u, _) => registry.deregister(u),
        };
        match deregistered {
            Ok(()) => {}
            // A bound descriptor its owner has closed already left the poll set then.
            Err(e) if matches!(s.io, Io::Bound(_)) && e.raw_os_error() == Some(libc::EBADF) => {}
            Err(e) => self.node.log(&format!(
                "socket-server: socket ({id}) error: deregister: {}.",
                error_text(&e)
            )),
        }
        if let (Some(owner), false) = (notify, s.close_reported) {
            self.node.deliver(owner, Event::close(id));
        }
        release_id(id);
    }

    fn close_all(&mut self) {
        let ids: Vec<i32> = self.sockets.keys().copied().collect();
        for id in ids {
            self.free(id, None);
        }
    }

    /// Serves one request; false means exit.
    fn serve(&mut self, r: Request) -> bool {
        match r {
            Request::Listen {
                id,
                owner,
                listener,
            } => self.listen(id, owner, listener),
            Request::Connect {
                id,
                owner,
                host,
                port,
            } => self.connect(id, owner, &host, port),
            Request::Bind { id, owner, fd } => self.bind(id, owner, fd),
            Request::Start { id, owner } => self.start(id, owner),
            Request::Pause { id } => {
                if let Some(s) = self.sockets.get_mut(&id) {
                    s.reading = false;
                }
            }
            Request::Close {
                id,
                owner,
                shutdown,
            } => self.close(id, owner, shutdown),
            Request::Nodelay { id } => self.nodelay(id),
            Request::Send {
                id,
                buffer,
                offset,
                priority,
            } => self.take_send(id, buffer, offset, priority),
            Request::Udp {
                id,
                owner,
                socket,
                family,
                peer,
            } => self.udp(id, owner, socket, family, peer),
            Request::UdpConnect { id, peer } => self.udp_connect(id, peer),
            Request::UdpSend { id, buffer, to } => self.udp_send(id, buffer, to),
            Request::Info { reply } => {
                // The asker waits for this reply; were it gone, nobody would be told.
                let _ = reply.send(self.info());
            }
            Request::Exit => return false,
        }
        true
    }

    /// A socket that could not be opened: ERROR to its owner, and the id goes.
    fn refuse(&self, id: i32, owner: u32, e: &io::Error) {
        self.node.deliver(owner, Event::error(id, &error_text(e)));
        release_id(id);
    }

    fn listen(&mut self, id: i32, owner: u32, listener: std::net::TcpListener) {
        // The CONNECT event carries the bound address (the port, when 0 was asked for);
        // upstream reports a failing getsockname as ERROR.
        let local = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => return self.refuse(id, owner, &e),
        };
        let mut s = Socket::new(
            id,
            owner,
            Io::Listener(TcpListener::from_std(listener)),
            State::PListen,
        );
        s.local = Some(local);
        if self.insert(s) {
            let ip = local.ip().to_string();
            let port = i32::from(local.port());
            self.node.deliver(owner, Event::connect(id, port, &ip));
        }
    }

    /// `bind`: reads a descriptor the service handed over, at once.
    fn bind(&mut self, id: i32, owner: u32, fd: RawFd) {
        // The socket thread must never block on a read.
        if let Err(e) = set_nonblocking(fd) {
            return self.refuse(id, owner, &e);
        }
        let mut s = Socket::new(id, owner, Io::Bound(fd), State::Bind);
        s.reading = true;
        if self.insert(s) {
            self.node.deliver(owner, Event::connect(id, 0, "binding"));
            self.read(id);
        }
    }

    /// A UDP socket made by `udp`, `udp_listen` or `udp_dial`; reading is on at once.
    fn udp(
        &mut self,
        id: i32,
        owner: u32,
        socket: std::net::UdpSocket,
        family: Family,
        peer: Option<SocketAddr>,
    ) {
        let io = Io::Udp(UdpSocket::from_std(socket), family);
        let mut s = Socket::new(id, owner, io, State::Connected);
        s.reading = true;
        s.peer = peer;
        if self.insert(s) {
            self.read(id);
        }
    }

    fn nodelay(&mut self, id: i32) {
        if let Some(Socket {
            io: Io::Stream(t), ..
        }) = self.sockets.get(&id)
        {
            if let Err(e) = t.set_nodelay(true) {
                self.node.log(&format!(
                    "socket-server: socket ({id}) error: TCP_NODELAY: {}.",
                    error_text(&e)
                ));
            }
        }
    }

    fn connect(&mut self, id: i32, owner: u32, host: &str, port: u16) {
        let opened = resolve(host, port).and_then(|addr| Ok((addr, connect_nonblocking(addr)?)));
        let (addr, stream) = match opened {
            Ok(opened) => opened,
            Err(e) => return self.refuse(id, owner, &e),
        };
        let mut s = Socket::new(id, owner, Io::Stream(stream), State::Connecting);
        s.reading = true;
        s.peer = Some(addr);
        self.insert(s);
    }

    fn start(&mut self, id: i32, owner: u32) {
        let Some(s) = self.sockets.get_mut(&id) else {
            self.node.deliver(owner, Event::error(id, "invalid socket"));
            return;
        };
        let previous = s.state;
        match previous {
            State::PListen | State::PAccept => {
                s.owner = owner;
                s.reading = true;
                s.state = if previous == State::PListen {
                    State::Listen
                } else {
                    s.open_gate();
                    State::Connected
                };
                self.node.deliver(owner, Event::connect(id, 0, "start"));
            }
            State::Connected | State::Bind | State::Listen => {
                s.owner = owner;
                s.reading = true;
                self.node.deliver(owner, Event::connect(id, 0, "transfer"));
            }
            State::HalfCloseRead => {
                self.node.deliver(owner, Event::error(id, "socket closed"));
                return;
            }
            State::Connecting | State::HalfCloseWrite => {
                s.owner = owner;
                s.reading = true;
            }
        }
        // Edge-triggered: what arrived while the socket was inert will not be signalled.
        match previous {
            State::PListen => self.accept(id),
            _ => self.read(id),
        }
    }

    fn close(&mut self, id: i32, owner: u32, shutdown: bool) {
        let Some(s) = self.sockets.get_mut(&id) else {
            return;
        };
        let data_pending = s.pending > 0 && s.state != State::HalfCloseWrite;
        if shutdown || !data_pending {
            self.free(id, Some(owner));
            return;
        }
        s.reading = false;
        s.closing = true;
        s.shared.closing.store(true, Ordering::Release);
        if let Io::Stream(t) = &s.io {
            match t.shutdown(std::net::Shutdown::Read) {
                // ENOTCONN: the peer is gone already, there is no reading to stop.
                Err(e) if e.kind() != io::ErrorKind::NotConnected => self.node.log(&format!(
                    "socket-server: socket ({id}) error: shutdown: {}.",
                    error_text(&e)
                )),
                _ => {}
            }
        }
        if !s.close_reported {
            s.close_reported = true;
            self.node.deliver(owner, Event::close(id));
        }
    }

    /// A send request from a worker: it leaves the gate's `in_flight` for this thread's
    /// queues (direct.rs), which count as a backlog until [`Server::settle`] finds them
    /// written.
    fn take_send(&mut self, id: i32, buffer: SendBuffer, offset: usize, priority: Priority) {
        let Some(s) = self.sockets.get(&id) else {
            return;
        };
        {
            let mut gate = s.shared.gate.lock();
            gate.in_flight -= 1;
            gate.backlog = true;
        }
        self.send(id, buffer, offset, priority);
        self.settle(id);
    }

    /// Lets workers write directly again once this thread has nothing left to write.
    fn settle(&mut self, id: i32) {
        if let Some(s) = self.sockets.get(&id) {
            s.shared.gate.lock().backlog = s.pending > 0;
        }
    }

    fn send(&mut self, id: i32, buffer: SendBuffer, offset: usize, priority: Priority) {
        let Some(s) = self.sockets.get_mut(&id) else {
            return;
        };
        match s.state {
            State::Listen | State::PListen => {
                self.node
                    .log(&format!("socket-server error: write to listen fd {id}."));
                return;
            }
            State::PAccept | State::HalfCloseWrite | State::Bind => return,
            _ => {}
        }
        let len = buffer.as_slice().len() - offset;
        if len == 0 {
            return;
        }
        if let Io::Udp(..) = s.io {
            let to = s.peer;
            match to {
                Some(to) => self.udp_send(id, buffer, to),
                None => self.node.log(&format!(
                    "socket-server: udp socket ({id}) error: no default destination."
                )),
            }
            return;
        }
        let pending = WriteBuffer {
            buffer,
            offset,
            to: None,
        };
        if priority == Priority::Low && !(s.high.is_empty() && s.low.is_empty()) {
            s.low.push_back(pending);
        } else {
            s.high.push_back(pending);
        }
        s.pending += len;
        if s.state == State::Connected || s.state == State::HalfCloseRead {
            self.flush(id);
        }
        self.check_warning(id);
    }

    fn check_warning(&mut self, id: i32) {
        let Some(s) = self.sockets.get_mut(&id) else {
            return;
        };
        if s.pending >= WARNING_SIZE && s.pending >= s.warn_level {
            s.warn_level *= 2;
            s.warned = true;
            let kb = s.pending.div_ceil(1024) as i32;
            self.node.deliver(s.owner, Event::warning(id, kb));
        }
    }

    /// The peer's FIN is in: reads go on past a short read until they see it, because
    /// an edge that brought data and FIN together will not come again.
    fn peer_closed(&mut self, id: i32) {
        if let Some(s) = self.sockets.get_mut(&id) {
            s.eof_pending = true;
        }
    }

    /// Handles readiness of `id`.
    fn ready(&mut self, id: i32, readable: bool, writable: bool) {
        let Some(s) = self.sockets.get_mut(&id) else {
            return;
        };
        match s.state {
            State::Listen if readable => self.accept(id),
            State::Connecting if writable => self.finish_connect(id),
            _ => {
                if writable {
                    self.flush(id);
                    self.settle(id);
                }
                if readable {
                    self.read(id);
                }
            }
        }
    }

    fn finish_connect(&mut self, id: i32) {
        let Some(s) = self.sockets.get_mut(&id) else {
            return;
        };
        let Io::Stream(t) = &s.io else { return };
        let result = match t.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => t.peer_addr(),
        };
        match result {
            Ok(peer) => {
                s.state = State::Connected;
                s.open_gate();
                s.peer = Some(peer);
                // Only netstat shows the local address: without one it shows none.
                s.local = t.local_addr().ok();
                let owner = s.owner;
                self.node
                    .deliver(owner, Event::connect(id, 0, &peer.ip().to_string()));
                self.flush(id);
                self.settle(id);
                self.read(id);
            }
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
            Err(e) => {
                let owner = s.owner;
                self.node.deliver(owner, Event::error(id, &error_text(&e)));
                s.close_reported = true;
                self.free(id, None);
            }
        }
    }

    fn accept(&mut self, id: i32) {
        loop {
            let Some(s) = self.sockets.get_mut(&id) else {
                return;
            };
            if s.state != State::Listen {
                return;
            }
            let Io::Listener(l) = &s.io else { return };
            match l.accept() {
                Ok((stream, peer)) => {
                    s.accepted += 1;
                    s.read_time = self.node.now();
                    let owner = s.owner;
                    let new_id = super::reserve_id();
                    let mut conn = Socket::new(new_id, owner, Io::Stream(stream), State::PAccept);
                    conn.peer = Some(peer);
                    if let Io::Stream(t) = &conn.io {
                        // Only netstat shows the local address: without one it shows none.
                        conn.local = t.local_addr().ok();
                        // Keepalive only finds dead peers sooner: without it the connection
                        // still works, so it is kept and the failure logged.
                        if let Err(e) = socket2::SockRef::from(t).set_keepalive(true) {
                            self.node.log(&format!(
                                "socket-server: socket ({new_id}) error: SO_KEEPALIVE: {}.",
                                error_text(&e)
                            ));
                        }
                    }
                    if self.insert(conn) {
                        self.node
                            .deliver(owner, Event::accept(id, new_id, &render(&peer)));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let owner = s.owner;
                    self.node.deliver(owner, Event::error(id, &error_text(&e)));
                    let out_of_fds =
                        matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE));
                    if !out_of_fds || self.spare_fd.is_none() {
                        return;
                    }
                    // Edge-triggered: unless the pending connection goes, no new edge
                    // comes. Spend the spare descriptor to accept and drop it. (Linux
                    // reports EMFILE even with nothing pending: stop when none is.)
                    self.spare_fd = None;
                    let drained = match self.sockets.get(&id) {
                        Some(Socket {
                            io: Io::Listener(l),
                            ..
                        }) => l.accept().is_err(),
                        _ => true,
                    };
                    self.spare_fd = open_spare();
                    if drained {
                        return;
                    }
                }
            }
        }
    }

    fn read(&mut self, id: i32) {
        loop {
            let Some(s) = self.sockets.get_mut(&id) else {
                return;
            };
            if !s.reading
                || !matches!(
                    s.state,
                    State::Connected | State::Bind | State::HalfCloseWrite
                )
            {
                return;
            }
            let result = match &mut s.io {
                Io::Stream(t) => t.read(&mut self.scratch),
                Io::Bound(fd) => read_fd(*fd, &mut self.scratch),
                Io::Udp(u, _) => match u.recv_from(&mut self.scratch) {
                    Ok((n, from)) => {
                        s.bytes_read += n as u64;
                        s.read_time = self.node.now();
                        let mut datagram = self.scratch[..n].to_vec();
                        datagram.extend_from_slice(&encode_udp_address(&from));
                        self.node
                            .deliver(s.owner, Event::udp(id, Payload::copy_of(&datagram), n));
                        continue;
                    }
                    Err(e) => Err(e),
                },
                Io::Listener(_) => return,
            };
            match result {
                Ok(0) => {
                    let owner = s.owner;
                    if s.state == State::Bind || s.state == State::HalfCloseWrite {
                        self.free(id, Some(owner));
                    } else {
                        s.state = State::HalfCloseRead;
                        s.close_reported = true;
                        self.node.deliver(owner, Event::close(id));
                    }
                    return;
                }
                Ok(n) => {
                    s.bytes_read += n as u64;
                    s.read_time = self.node.now();
                    let data = Payload::copy_of(&self.scratch[..n]);
                    self.node.deliver(s.owner, Event::data(id, data, n));
                    if n < self.scratch.len() && !s.eof_pending {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let owner = s.owner;
                    self.node.deliver(owner, Event::error(id, &error_text(&e)));
                    s.close_reported = true;
                    self.free(id, None);
                    return;
                }
            }
        }
    }

    /// Writes what is queued, high priority first.
    fn flush(&mut self, id: i32) {
        let Some(s) = self.sockets.get_mut(&id) else {
            return;
        };
        if let Io::Udp(u, _) = &s.io {
            while let Some(p) = s.high.front() {
                let len = p.buffer.as_slice().len();
                // udp_send queues every datagram with its destination.
                let sent = match p.to {
                    Some(to) => u.send_to(p.buffer.as_slice(), to),
                    None => Err(io::ErrorKind::AddrNotAvailable.into()),
                };
                match sent {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Ok(n) => {
                        s.bytes_written += n as u64;
                        s.write_time = self.node.now();
                    }
                    // A datagram that cannot go is dropped, as upstream drops it.
                    Err(e) => self.node.log(&format!(
                        "socket-server : udp ({id}) sendto error {}.",
                        error_text(&e)
                    )),
                }
                s.pending -= len;
                s.high.pop_front();
            }
            return;
        }
        let Io::Stream(t) = &mut s.io else { return };
        if !matches!(s.state, State::Connected | State::HalfCloseRead) {
            return;
        }
        loop {
            if s.high.is_empty() {
                match s.low.pop_front() {
                    // A low-priority buffer, once started, completes before anything else.
                    Some(p) => s.high.push_back(p),
                    None => break,
                }
            }
            let Some(front) = s.high.front_mut() else {
                break;
            };
            let bytes = &front.buffer.as_slice()[front.offset..];
            match t.write(bytes) {
                Ok(n) => {
                    s.bytes_written += n as u64;
                    s.write_time = self.node.now();
                    s.pending -= n;
                    front.offset += n;
                    if front.offset == front.buffer.as_slice().len() {
                        s.high.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    s.state = State::HalfCloseWrite;
                    s.shared.gate.lock().fd = -1;
                    s.high.clear();
                    s.low.clear();
                    s.pending = 0;
                    let owner = s.owner;
                    let closing = s.closing;
                    self.node.deliver(owner, Event::error(id, &error_text(&e)));
                    if closing {
                        self.free(id, None);
                    }
                    return;
                }
            }
        }
        if s.warned {
            s.warned = false;
            s.warn_level = WARNING_SIZE;
            self.node.deliver(s.owner, Event::warning(id, 0));
        }
        if s.closing {
            self.free(id, None);
        }
    }

    fn udp_connect(&mut self, id: i32, peer: SocketAddr) {
        let Some(s) = self.sockets.get_mut(&id) else {
            return;
        };
        let Io::Udp(_, family) = s.io else { return };
        if family == Family::of(&peer) {
            s.peer = Some(peer);
        } else {
            let owner = s.owner;
            self.node
                .deliver(owner, Event::error(id, "protocol mismatch"));
        }
    }

    fn udp_send(&mut self, id: i32, buffer: SendBuffer, to: SocketAddr) {
        let Some(s) = self.sockets.get_mut(&id) else {
            return;
        };
        let Io::Udp(_, family) = s.io else { return };
        if family != Family::of(&to) {
            self.node.log(&format!(
                "socket-server: udp socket ({id}) error: type mismatch."
            ));
            return;
        }
        s.pending += buffer.as_slice().len();
        s.high.push_back(WriteBuffer {
            buffer,
            offset: 0,
            to: Some(to),
        });
        self.flush(id);
    }

    /// netstat: the sockets that are listening, connected or half closed, in
    /// descending id order as upstream lists them.
    fn info(&self) -> Vec<SocketInfo> {
        let mut all: Vec<SocketInfo> = self
            .sockets
            .values()
            .filter_map(|s| {
                let kind = match (&s.io, s.state) {
                    (Io::Listener(_), State::Listen) => "LISTEN",
                    (Io::Udp(..), _) => "UDP",
                    (Io::Bound(_), _) => "BIND",
                    (Io::Stream(_), State::Connected) => "TCP",
                    (Io::Stream(_), State::HalfCloseRead | State::HalfCloseWrite) => "CLOSING",
                    _ => return None,
                };
                let (direct_written, direct_time) = {
                    let gate = s.shared.gate.lock();
                    (gate.written, gate.write_time)
                };
                Some(SocketInfo {
                    id: s.id,
                    owner: s.owner,
                    kind,
                    accepted: s.accepted,
                    read: s.bytes_read,
                    write: s.bytes_written + direct_written,
                    wbuffer: s.pending as u64,
                    rtime: s.read_time,
                    wtime: s.write_time.max(direct_time),
                    reading: s.reading,
                    writing: s.pending > 0,
                    sock: s.local.as_ref().map(render),
                    peer: s.peer.as_ref().map(render),
                })
            })
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.id));
        all
    }
}

/// `read` on a bound descriptor (std has no type for a descriptor it does not own).
fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` writable bytes, which is all read(2) writes;
    // a descriptor that is not open only makes it fail with EBADF.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Sets O_NONBLOCK on a descriptor (std has no call for one it does not own).
fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL only reads the descriptor's status flags; a descriptor that is not
    // open only makes it fail with EBADF. No memory of ours is involved.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above; F_SETFL changes only the status flags of `fd`.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A TCP connect that does not wait: EINPROGRESS is finished by `finish_connect`.
fn connect_nonblocking(addr: SocketAddr) -> io::Result<TcpStream> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    sock.set_nonblocking(true)?;
    sock.set_keepalive(true)?;
    match sock.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let std_stream: std::net::TcpStream = sock.into();
    Ok(TcpStream::from_std(std_stream))
}

#[cfg(test)]
mod tests {
    use super::super::{bind_listener, record, reserve_id};
    use super::*;
    use crossbeam::channel::{unbounded, Receiver as Rx, Sender as Tx};
    use std::time::Duration;

    /// One delivered event: owner, type, id, ud and its string or data.
    type Seen = (u32, i32, i32, i32, Vec<u8>);

    /// A node that records what the server reports, without any service behind it.
    struct Recorder {
        events: Tx<Seen>,
        lines: Tx<String>,
    }

    impl Node for Recorder {
        fn deliver(&self, owner: u32, event: Event) {
            let m = event.into_message();
            let r = record::decode(m.bytes()).expect("a whole record");
            // SAFETY: the message holds a fresh record whose DATA/UDP buffer (if any) is
            // live; it is copied, then freed once.
            let body = unsafe {
                let body = if r.buffer.is_null() {
                    r.text.to_vec()
                } else {
                    r.data().to_vec()
                };
                record::free_buffer(m.bytes());
                body
            };
            let _ = self.events.send((owner, r.kind, r.id, r.ud, body));
        }

        fn log(&self, text: &str) {
            let _ = self.lines.send(text.to_owned());
        }

        fn now(&self) -> u64 {
            42
        }

        fn idle_worker(&self) -> bool {
            false
        }
    }

    struct Running {
        tx: crossbeam::channel::Sender<Request>,
        waker: Arc<mio::Waker>,
        events: Rx<Seen>,
        lines: Rx<String>,
        thread: std::thread::JoinHandle<()>,
    }

    impl Running {
        fn start() -> Running {
            let (events_tx, events) = unbounded();
            let (lines_tx, lines) = unbounded();
            let node = Arc::new(Recorder {
                events: events_tx,
                lines: lines_tx,
            });
            let (tx, rx) = unbounded();
            let poll = Poll::new().expect("poll");
            let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER).expect("waker"));
            let mut server = Server::new(poll, rx, node);
            let thread = std::thread::spawn(move || while server.turn(None) {});
            Running {
                tx,
                waker,
                events,
                lines,
                thread,
            }
        }

        fn request(&self, r: Request) {
            self.tx.send(r).expect("server alive");
            self.waker.wake().expect("wake");
        }

        /// A high-priority send through the socket thread, counted as `send` counts it.
        fn queue_send(&self, id: i32, bytes: &[u8]) {
            if let Some(s) = shared(id) {
                s.gate.lock().in_flight += 1;
            }
            self.request(Request::Send {
                id,
                buffer: SendBuffer::Bytes(bytes.to_vec()),
                offset: 0,
                priority: Priority::High,
            });
        }

        fn next(&self) -> Seen {
            self.events
                .recv_timeout(Duration::from_secs(10))
                .expect("an event")
        }

        fn stop(self) {
            self.request(Request::Exit);
            self.thread.join().expect("server thread");
        }
    }

    #[test]
    fn a_connection_reported_through_the_node() {
        let server = Running::start();
        let listener = bind_listener("127.0.0.1", 0, 32).expect("bind");
        let id = reserve_id();
        server.request(Request::Listen {
            id,
            owner: 7,
            listener,
        });
        let (owner, kind, at, port, ip) = server.next();
        assert_eq!(
            (owner, kind, at, &ip[..]),
            (7, record::CONNECT, id, &b"127.0.0.1"[..])
        );
        assert!(port > 0);

        server.request(Request::Start { id, owner: 8 });
        assert_eq!(
            server.next(),
            (8, record::CONNECT, id, 0, b"start".to_vec())
        );

        let mut client = std::net::TcpStream::connect(("127.0.0.1", port as u16)).expect("connect");
        let (owner, kind, at, conn, peer) = server.next();
        assert_eq!((owner, kind, at), (8, record::ACCEPT, id));
        let from = client.local_addr().expect("local address");
        assert_eq!(peer, format!("127.0.0.1:{}", from.port()).into_bytes());

        server.request(Request::Start { id: conn, owner: 9 });
        assert_eq!(
            server.next(),
            (9, record::CONNECT, conn, 0, b"start".to_vec())
        );
        client.write_all(b"hello").expect("client write");
        assert_eq!(server.next(), (9, record::DATA, conn, 5, b"hello".to_vec()));

        server.queue_send(conn, b"world");
        let mut got = [0; 5];
        client.read_exact(&mut got).expect("client read");
        assert_eq!(&got, b"world");

        let (reply, info) = unbounded();
        server.request(Request::Info { reply });
        let info = info.recv_timeout(Duration::from_secs(10)).expect("info");
        let tcp = info.iter().find(|s| s.id == conn).expect("the connection");
        assert_eq!((tcp.kind, tcp.owner, tcp.read, tcp.write), ("TCP", 9, 5, 5));
        assert_eq!(
            (tcp.rtime, tcp.wtime),
            (42, 42),
            "stamped with the node's time"
        );

        server.queue_send(id, b"x");
        let line = server.lines.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            line.expect("a log line"),
            format!("socket-server error: write to listen fd {id}.")
        );

        drop(client);
        assert_eq!(server.next(), (9, record::CLOSE, conn, 0, Vec::new()));
        server.stop();
    }

    #[test]
    fn connect_failures_in_upstream_words() {
        let server = Running::start();
        let id = reserve_id();
        server.request(Request::Connect {
            id,
            owner: 3,
            host: String::new(),
            port: 80,
        });
        let error = (
            3,
            record::ERROR,
            id,
            0,
            b"Name or service not known".to_vec(),
        );
        assert_eq!(server.next(), error);

        // A port nobody listens on any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let id = reserve_id();
        server.request(Request::Connect {
            id,
            owner: 3,
            host: "127.0.0.1".into(),
            port,
        });
        let refused = (3, record::ERROR, id, 0, b"Connection refused".to_vec());
        assert_eq!(server.next(), refused);
        server.stop();
    }

    #[test]
    fn a_bad_descriptor_is_refused() {
        let server = Running::start();
        let id = reserve_id();
        server.request(Request::Bind {
            id,
            owner: 4,
            fd: -1,
        });
        let error = (4, record::ERROR, id, 0, b"Bad file descriptor".to_vec());
        assert_eq!(server.next(), error);
        assert!(shared(id).is_none(), "the id is released");
        server.stop();
    }

    #[test]
    fn udp_keeps_to_its_family() {
        let server = Running::start();
        let local: SocketAddr = "127.0.0.1:0".parse().expect("literal");
        let socket = std::net::UdpSocket::bind(local).expect("udp bind");
        socket.set_nonblocking(true).expect("nonblocking");
        let at = socket.local_addr().expect("bound address");
        let id = reserve_id();
        server.request(Request::Udp {
            id,
            owner: 5,
            socket,
            family: Family::of(&local),
            peer: None,
        });

        let peer = std::net::UdpSocket::bind("127.0.0.1:0").expect("peer bind");
        peer.send_to(b"ping", at).expect("peer send");
        let (owner, kind, from_id, size, body) = server.next();
        assert_eq!((owner, kind, from_id, size), (5, record::UDP, id, 4));
        let from = peer.local_addr().expect("peer address");
        assert_eq!(
            &body[..],
            b"ping",
            "the address follows the data, unseen here"
        );

        server.request(Request::UdpSend {
            id,
            buffer: SendBuffer::Bytes(b"pong".to_vec()),
            to: from,
        });
        let mut got = [0; 8];
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let (n, sender) = peer.recv_from(&mut got).expect("peer receive");
        assert_eq!((&got[..n], sender), (&b"pong"[..], at));

        let v6: SocketAddr = "[::1]:9".parse().expect("literal");
        server.request(Request::UdpSend {
            id,
            buffer: SendBuffer::Bytes(b"x".to_vec()),
            to: v6,
        });
        let line = server.lines.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            line.expect("a log line"),
            format!("socket-server: udp socket ({id}) error: type mismatch.")
        );
        server.request(Request::UdpConnect { id, peer: v6 });
        let mismatch = (5, record::ERROR, id, 0, b"protocol mismatch".to_vec());
        assert_eq!(server.next(), mismatch);
        server.stop();
    }
}
