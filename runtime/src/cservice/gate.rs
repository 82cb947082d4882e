//! The native `gate` service: a TCP front door that cuts client streams into packets by
//! a 2- or 4-byte big-endian length header and routes them to a broker, to each
//! connection's agent, or to the watchdog.
//!
//! Parameter: `"<S|L> <watchdog|!> <address> <client_tag> <max_connections>"`. The
//! watchdog hears `"<id> open <id> <peer>:0"` and `"<id> close"` (as PTYPE_TEXT) and
//! starts connections with `start <id>`; packets nobody else takes reach it as
//! `"<id> data "` + bytes. Packets into the gate (PTYPE_CLIENT) are bytes followed by a
//! 4-byte little-endian socket id, and are written to that connection.

use crate::context::{self, Context, InitFailed, Service};
use crate::message::{Message, Payload, PTYPE_CLIENT, PTYPE_SOCKET, PTYPE_TEXT};
use crate::send::query_name;
use crate::socket::record as sm;
use crate::socket::{self, Priority, SendBuffer};
use crate::{logging, strtol};
use std::collections::HashMap;
use std::sync::Arc;

const MAX_PACKET: usize = 16 * 1024 * 1024;
const BACKLOG: i32 = 128;
const PEER_NAME_MAX: usize = 31;

struct Connection {
    agent: u32,
    client: u32,
    buffer: Vec<u8>,
}

pub struct Gate {
    me: u32,
    header_size: usize,
    watchdog: u32,
    broker: u32,
    client_tag: u8,
    max_connections: usize,
    listen_id: i32,
    connections: HashMap<i32, Connection>,
}

/// The launch parameter, `"<S|L> <watchdog|!> <address> <client_tag> <max_connections>"`.
struct GateParam {
    header_size: usize,
    watchdog: u32,
    address: String,
    client_tag: u8,
    max_connections: usize,
}

/// A number as upstream's `sscanf("%d")` reads it (leading digits; 0 when none).
fn int_word(word: Option<&&str>) -> i64 {
    word.map_or(0, |w| strtol::strtol(w.as_bytes(), 10).0)
}

fn parse_param(me: u32, param: &str) -> Option<GateParam> {
    let words: Vec<&str> = param.split_whitespace().collect();
    if words.len() < 4 {
        logging::error(me, format!("Invalid gate parm {param}"));
        return None;
    }
    let max = usize::try_from(int_word(words.get(4))).unwrap_or(0);
    if max == 0 {
        logging::error(me, "Need max connection");
        return None;
    }
    let header_size = match words[0] {
        "S" => 2,
        "L" => 4,
        _ => {
            logging::error(me, "Invalid data header style");
            return None;
        }
    };
    let watchdog = match words[1] {
        "!" => 0,
        w => match query_name(me, w) {
            0 => {
                logging::error(me, format!("Invalid watchdog {w}"));
                return None;
            }
            h => h,
        },
    };
    let client_tag = match int_word(words.get(3)) as u8 {
        0 => PTYPE_CLIENT,
        t => t,
    };
    Some(GateParam {
        header_size,
        watchdog,
        address: words[2].to_owned(),
        client_tag,
        max_connections: max,
    })
}

/// `host:port` (split at the last `:`) or a bare port.
fn parse_listen(addr: &str) -> Option<(String, u16)> {
    let (host, port) = match addr.rfind(':') {
        Some(i) => (&addr[..i], &addr[i + 1..]),
        None => ("", addr),
    };
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    Some((host.to_owned(), port))
}

pub fn create(ctx: &Arc<Context>, param: Option<&str>) -> Result<Box<dyn Service>, InitFailed> {
    let me = ctx.handle;
    let param = param.unwrap_or("");
    let Some(p) = parse_param(me, param) else {
        return Err(InitFailed);
    };
    let Some((host, port)) = parse_listen(&p.address) else {
        logging::error(me, format!("Invalid gate address {}", p.address));
        return Err(InitFailed);
    };
    let listen_id = match socket::listen(me, &host, port, BACKLOG) {
        Ok(id) => id,
        Err(e) => {
            logging::error(me, format!("Listen error: {e}"));
            return Err(InitFailed);
        }
    };
    socket::start_socket(me, listen_id);
    Ok(Box::new(Gate {
        me,
        header_size: p.header_size,
        watchdog: p.watchdog,
        broker: 0,
        client_tag: p.client_tag,
        max_connections: p.max_connections,
        listen_id,
        connections: HashMap::new(),
    }))
}

impl Gate {
    fn report(&self, text: String) {
        if self.watchdog != 0 {
            context::deliver(
                self.watchdog,
                Message::new(self.me, 0, PTYPE_TEXT, Payload::copy_of(text.as_bytes())),
            );
        }
    }

    fn control(&mut self, text: &[u8]) {
        let text = String::from_utf8_lossy(text).into_owned();
        let mut words = text.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let id = |w: Option<&str>| w.and_then(|s| s.parse::<i32>().ok());
        match cmd {
            "kick" => {
                if let Some(id) = id(words.next()) {
                    if self.connections.contains_key(&id) {
                        socket::close(self.me, id);
                    }
                }
            }
            "forward" => {
                let (fd, agent, client) = (id(words.next()), words.next(), words.next());
                let hex = |w: Option<&str>| {
                    w.and_then(|s| s.strip_prefix(':'))
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                };
                if let (Some(fd), Some(agent), Some(client)) = (fd, hex(agent), hex(client)) {
                    if let Some(c) = self.connections.get_mut(&fd) {
                        c.agent = agent;
                        c.client = client;
                    }
                }
            }
            "broker" => {
                if let Some(name) = words.next() {
                    self.broker = query_name(self.me, name);
                }
            }
            "start" => {
                if let Some(id) = id(words.next()) {
                    if self.connections.contains_key(&id) {
                        socket::start_socket(self.me, id);
                    }
                }
            }
            "close" => {
                if self.listen_id >= 0 {
                    socket::close(self.me, self.listen_id);
                    self.listen_id = -1;
                }
            }
            _ => logging::error(self.me, format!("[gate] Unknown command : {text}")),
        }
    }

    /// Bytes to send followed by the 4-byte little-endian socket id.
    fn client_send(&mut self, source: u32, bytes: &[u8]) {
        if bytes.len() <= 4 {
            logging::error(self.me, format!("Invalid client message from {source:x}"));
            return;
        }
        let (data, id) = bytes.split_at(bytes.len() - 4);
        let id = i32::from_le_bytes([id[0], id[1], id[2], id[3]]);
        if self.connections.contains_key(&id) {
            socket::send(id, SendBuffer::Bytes(data.to_vec()), Priority::High);
        } else {
            logging::error(self.me, format!("Invalid client id {id} from {source:x}"));
        }
    }

    fn forward(&self, id: i32, c: &Connection, packet: &[u8]) {
        if self.broker != 0 {
            context::deliver(
                self.broker,
                Message::new(self.me, id, self.client_tag, Payload::copy_of(packet)),
            );
        } else if c.agent != 0 {
            context::deliver(
                c.agent,
                Message::new(c.client, id, self.client_tag, Payload::copy_of(packet)),
            );
        } else if self.watchdog != 0 {
            let mut text = format!("{id} data ").into_bytes();
            text.extend_from_slice(packet);
            context::deliver(
                self.watchdog,
                Message::new(self.me, id, PTYPE_TEXT, Payload::copy_of(&text)),
            );
        }
    }

    fn data(&mut self, id: i32, bytes: &[u8]) {
        let Some(mut c) = self.connections.remove(&id) else {
            logging::error(self.me, format!("Drop unknown connection {id} message"));
            socket::close(self.me, id);
            return;
        };
        c.buffer.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            let rest = &c.buffer[at..];
            if rest.len() < self.header_size {
                break;
            }
            let size = rest[..self.header_size]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            if size >= MAX_PACKET {
                logging::error(self.me, "Recv socket message > 16M");
                socket::close(self.me, id);
                // The connection is forgotten here, so its CLOSE event finds nothing to
                // report: tell the watchdog now, as upstream's gate does on that event.
                self.report(format!("{id} close"));
                return;
            }
            if rest.len() < self.header_size + size {
                break;
            }
            let packet = &rest[self.header_size..self.header_size + size];
            if size > 0 {
                self.forward(id, &c, packet);
            }
            at += self.header_size + size;
        }
        c.buffer.drain(..at);
        self.connections.insert(id, c);
    }

    fn socket_event(&mut self, msg: &Message) {
        let Some(r) = sm::decode(msg.bytes()) else {
            return;
        };
        match r.kind {
            sm::DATA => {
                // SAFETY: this message owns its DATA buffer until the record is freed.
                let bytes = unsafe { r.data() }.to_vec();
                // SAFETY: the buffer was copied out above and is not used again.
                unsafe { sm::free_buffer(msg.bytes()) };
                self.data(r.id, &bytes);
            }
            sm::CONNECT => {
                if r.id != self.listen_id && !self.connections.contains_key(&r.id) {
                    logging::error(self.me, format!("Close unknown connection {}", r.id));
                    socket::close(self.me, r.id);
                }
            }
            sm::CLOSE | sm::ERROR => {
                if self.connections.remove(&r.id).is_some() {
                    self.report(format!("{} close", r.id));
                    // A peer's EOF leaves the socket half open; free it now.
                    socket::close(self.me, r.id);
                }
            }
            sm::ACCEPT => {
                let new_id = r.ud;
                if self.connections.len() >= self.max_connections {
                    socket::close(self.me, new_id);
                    return;
                }
                let peer = &r.text[..r.text.len().min(PEER_NAME_MAX)];
                let peer = String::from_utf8_lossy(peer).into_owned();
                self.connections.insert(
                    new_id,
                    Connection {
                        agent: 0,
                        client: 0,
                        buffer: Vec::new(),
                    },
                );
                self.report(format!("{new_id} open {new_id} {peer}:0"));
                logging::error(self.me, format!("socket open: {new_id:x}"));
            }
            sm::WARNING => {
                logging::error(self.me, format!("fd ({}) send buffer ({})K", r.id, r.ud))
            }
            _ => {
                // SAFETY: an event the gate does not handle gives its buffer back.
                unsafe { sm::free_buffer(msg.bytes()) };
            }
        }
    }
}

impl Service for Gate {
    fn dispatch(&mut self, _ctx: &Arc<Context>, msg: Message) {
        match msg.ptype() {
            PTYPE_TEXT => self.control(msg.bytes()),
            PTYPE_CLIENT => self.client_send(msg.source, msg.bytes()),
            PTYPE_SOCKET => self.socket_event(&msg),
            _ => {}
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        for id in self.connections.keys() {
            socket::close(self.me, *id);
        }
        if self.listen_id >= 0 {
            socket::close(self.me, self.listen_id);
        }
    }
}
