//! The harbor's side of its links: the slave's commands (`N`, `S`, `A`), the 1-byte
//! handshake, frames coming in, and a link going down.

use super::frame::{BadFrame, Cookie, Outgoing, Reader};
use super::link::Link;
use super::{Harbor, REMOTE_MAX};
use crate::context;
use crate::handle::{HANDLE_MASK, HANDLE_REMOTE_SHIFT};
use crate::harbor::GLOBALNAME_LENGTH;
use crate::message::{Message, Payload, PTYPE_ERROR};
use crate::socket::record as sm;
use crate::socket::{self, Priority, SendBuffer};
use crate::{logging, strtol};

impl Harbor {
    /// A PTYPE_HARBOR text command from the slave (or, for `N`, redirected on behalf of
    /// the name's owner, `source`).
    pub(super) fn command(&mut self, source: u32, text: &[u8]) {
        let args = text.get(2..).unwrap_or(&[]);
        match text.first() {
            Some(b'N') => {
                if args.is_empty() || args.len() >= GLOBALNAME_LENGTH {
                    let name = String::from_utf8_lossy(args);
                    logging::error(self.me, format!("Invalid global name {name}"));
                    return;
                }
                self.bind_name(args, source);
            }
            Some(&c @ (b'S' | b'A')) => self.link_command(c, args),
            _ => logging::error(
                self.me,
                format!("Unknown command {}", String::from_utf8_lossy(text)),
            ),
        }
    }

    /// `S <socket> <id>` / `A <socket> <id>`: take the socket and send our id; an
    /// accepted link (whose id the slave already read) is up at once.
    fn link_command(&mut self, c: u8, args: &[u8]) {
        let (socket, used) = strtol::strtol(args, 10);
        let (id, _) = strtol::strtol(&args[used..], 10);
        if socket <= 0 || socket > i64::from(i32::MAX) || id <= 0 || id >= REMOTE_MAX as i64 {
            logging::error(
                self.me,
                format!(
                    "Invalid command {} {}",
                    c as char,
                    String::from_utf8_lossy(args)
                ),
            );
            return;
        }
        let (socket, id) = (socket as i32, id as usize);
        if self.links[id].socket().is_some() {
            logging::error(self.me, format!("Harbor {id} alreay exist"));
            return;
        }
        let queue = match std::mem::replace(&mut self.links[id], Link::Down) {
            Link::Wait(queue) => queue,
            _ => Vec::new(),
        };
        socket::start_socket(self.me, socket);
        socket::send(
            socket,
            SendBuffer::Bytes(vec![self.id as u8]),
            Priority::High,
        );
        match c {
            b'S' => self.links[id] = Link::Handshake { socket, queue },
            _ => self.link_up(id, socket, queue),
        }
    }

    fn link_up(&mut self, id: usize, socket: i32, queue: Vec<Outgoing>) {
        self.links[id] = Link::Up {
            socket,
            reader: Reader::default(),
        };
        for out in queue {
            self.write(id, socket, out);
        }
    }

    /// Marks a link down, tells the slave (`D id`) and bounces what waited for it.
    /// `close` closes its socket (not when the socket server already reported it
    /// gone: its id may be reused). Upstream says nothing to the slave when it closes
    /// a link itself (a bad handshake or frame); telling it lets `harbor.link` return.
    fn link_down(&mut self, id: usize, close: bool) {
        self.tell_slave(format!("D {id}").as_bytes());
        if close {
            if let Some(socket) = self.links[id].socket() {
                socket::close(self.me, socket);
            }
        }
        let queue = self.links[id].take_down();
        self.bounce_all(id, queue);
    }

    fn link_of(&self, socket: i32) -> Option<usize> {
        (1..REMOTE_MAX).find(|&i| self.links[i].socket() == Some(socket))
    }

    pub(super) fn socket_event(&mut self, msg: &Message) {
        let Some(r) = sm::decode(msg.bytes()) else {
            return;
        };
        match r.kind {
            sm::DATA => {
                // SAFETY: the message owns its DATA buffer of `ud` bytes until it is
                // freed below, after the last use of `data`.
                let data = unsafe { r.data() };
                self.data(r.id, data);
                // SAFETY: the buffer is not used after this point and freed only here.
                unsafe { sm::free_buffer(msg.bytes()) };
            }
            sm::CLOSE | sm::ERROR => match self.link_of(r.id) {
                Some(id) => self.link_down(id, false),
                None => logging::error(self.me, format!("Unknown fd ({}) closed", r.id)),
            },
            sm::CONNECT => {}
            sm::WARNING => {
                if let Some(id) = self.link_of(r.id) {
                    logging::error(
                        self.me,
                        format!("message havn't send to Harbor ({id}) reach {} K", r.ud),
                    );
                }
            }
            kind => logging::error(self.me, format!("recv invalid socket message type {kind}")),
        }
    }

    fn data(&mut self, socket: i32, mut data: &[u8]) {
        let Some(id) = self.link_of(socket) else {
            logging::error(self.me, format!("Invalid socket fd ({socket}) data"));
            return;
        };
        if let Link::Handshake { .. } = self.links[id] {
            let Some((&peer, rest)) = data.split_first() else {
                return;
            };
            if usize::from(peer) != id {
                logging::error(
                    self.me,
                    format!("Invalid shakehand id ({id}) from fd = {socket} , harbor = {peer}"),
                );
                self.link_down(id, true);
                return;
            }
            data = rest;
            let queue = std::mem::replace(&mut self.links[id], Link::Down).take_down();
            self.link_up(id, socket, queue);
        }
        let Link::Up { reader, .. } = &mut self.links[id] else {
            return;
        };
        let mut arrived = Vec::new();
        let fed = reader.feed(data, &mut |cookie, payload| arrived.push((cookie, payload)));
        for (cookie, payload) in arrived {
            self.arrive(cookie, payload);
        }
        if let Err(bad) = fed {
            let why = match bad {
                BadFrame::TooLong => format!("Message is too long from harbor {id}"),
                BadFrame::TooShort(n) => format!("Invalid message length {n} from harbor {id}"),
            };
            logging::error(self.me, why);
            self.link_down(id, true);
        }
    }

    /// A frame from another harbor: delivered here with its original source and session.
    fn arrive(&mut self, c: Cookie, payload: Payload) {
        let ptype = (c.destination >> HANDLE_REMOTE_SHIFT) as u8;
        let dest = (c.destination & HANDLE_MASK) | (self.id << HANDLE_REMOTE_SHIFT);
        let msg = Message::new(c.source, c.session as i32, ptype, payload);
        if context::deliver(dest, msg) {
            return;
        }
        if ptype != PTYPE_ERROR {
            self.send_handle(c.source, dest, PTYPE_ERROR, c.session, Payload::NULL);
        }
        logging::error(
            self.me,
            format!(
                "Unknown destination :{dest:x} from :{:x} type({ptype})",
                c.source
            ),
        );
    }
}
