//! The `harbor` service: global names and links to the other harbors (services.md §2).
//!
//! Launched by cdummy (harbor 0) or cslave with `"<harbor id> <slave handle>"`. The
//! slave tells it, as PTYPE_HARBOR text, which global name belongs to whom (`N name`,
//! bound to the message's source) and which socket links it to which harbor (`S` for a
//! link we opened, `A` for one we accepted). It tells the slave, as PTYPE_TEXT, about a
//! link that dropped (`D id`) and a name nobody has bound yet (`Q name`).
//!
//! Remote sends reach it as hand-offs from the core (`crate::harbor`). A message for a
//! harbor whose link is not up yet waits in that link's queue; one for an unknown name
//! waits in the name's queue until the name is bound. Unlike upstream, which keeps
//! writing to a dropped link, a link that drops is marked down at once, so every message
//! for it (queued or later) bounces with PTYPE_ERROR and no caller waits for ever. For the
//! same reason a message too large for one frame bounces instead of going out.

mod control;
mod frame;
mod link;

use crate::context::{self, Context, InitFailed, Service};
use crate::handle::{HANDLE_MASK, HANDLE_REMOTE_SHIFT};
use crate::harbor::{self, Remote, Target};
use crate::message::{
    Message, Payload, PTYPE_ERROR, PTYPE_HARBOR, PTYPE_SOCKET, PTYPE_SYSTEM, PTYPE_TEXT,
};
use crate::socket::{self, Priority, SendBuffer};
use crate::{logging, strtol};
use frame::{Cookie, Outgoing};
use link::Link;
use std::collections::HashMap;
use std::sync::Arc;

/// Harbor ids are 1..REMOTE_MAX-1.
const REMOTE_MAX: usize = 256;

/// A global name: its handle once bound (0 before), and what waits for it.
#[derive(Default)]
struct Name {
    handle: u32,
    queue: Vec<Outgoing>,
}

pub struct Harbor {
    me: u32,
    id: u32,
    slave: u32,
    names: HashMap<Vec<u8>, Name>,
    links: Vec<Link>,
}

pub fn create(ctx: &Arc<Context>, param: Option<&str>) -> Result<Box<dyn Service>, InitFailed> {
    let mut words = param.unwrap_or("").split_whitespace();
    let mut number = || {
        words
            .next()
            .map_or(0, |w| strtol::strtol(w.as_bytes(), 10).0)
    };
    let id = number();
    let slave = u32::try_from(number()).unwrap_or(0);
    if slave == 0 {
        return Err(InitFailed);
    }
    ctx.reserve();
    harbor::start(ctx.handle);
    let links = (0..REMOTE_MAX)
        .map(|_| match id {
            0 => Link::Down,
            _ => Link::Wait(Vec::new()),
        })
        .collect();
    Ok(Box::new(Harbor {
        me: ctx.handle,
        id: id as u32 & 0xff,
        slave,
        names: HashMap::new(),
        links,
    }))
}

fn harbor_of(handle: u32) -> usize {
    (handle >> HANDLE_REMOTE_SHIFT) as usize
}

impl Harbor {
    fn tell_slave(&self, text: &[u8]) {
        context::deliver(
            self.slave,
            Message::new(self.me, 0, PTYPE_TEXT, Payload::copy_of(text)),
        );
    }

    /// The error reply to a message for harbor `harbor_id` that cannot get there (none
    /// for an error, which would otherwise bounce between two dead harbors).
    fn bounce(&mut self, harbor_id: usize, c: Cookie) {
        if (c.destination >> HANDLE_REMOTE_SHIFT) as u8 == PTYPE_ERROR {
            return;
        }
        let dead = (c.destination & HANDLE_MASK) | ((harbor_id as u32) << HANDLE_REMOTE_SHIFT);
        self.send_handle(c.source, dead, PTYPE_ERROR, c.session, Payload::NULL);
    }

    fn bounce_all(&mut self, harbor_id: usize, queue: Vec<Outgoing>) {
        for out in queue {
            self.bounce(harbor_id, out.cookie);
        }
    }

    fn write(&mut self, harbor_id: usize, socket: i32, out: Outgoing) {
        match frame::encode(&out) {
            Some(bytes) => {
                socket::send(socket, SendBuffer::Bytes(bytes), Priority::High);
            }
            None => {
                let c = out.cookie;
                logging::error(
                    self.me,
                    format!(
                        "remote message from :{:08x} to :{:08x} is too large.",
                        c.source, c.destination
                    ),
                );
                self.bounce(harbor_id, c);
            }
        }
    }

    /// Sends to a handle: here, over its harbor's link, into that link's queue, or
    /// back as an error when the link is down.
    fn send_handle(&mut self, dest: u32, source: u32, ptype: u8, session: u32, payload: Payload) {
        let harbor_id = harbor_of(dest);
        if harbor_id as u32 == self.id {
            context::deliver(dest, Message::new(source, session as i32, ptype, payload));
            return;
        }
        let out = Outgoing {
            cookie: Cookie {
                source,
                destination: (u32::from(ptype) << HANDLE_REMOTE_SHIFT) | (dest & HANDLE_MASK),
                session,
            },
            payload,
        };
        match &mut self.links[harbor_id] {
            Link::Wait(queue) | Link::Handshake { queue, .. } => queue.push(out),
            Link::Up { socket, .. } => {
                let socket = *socket;
                self.write(harbor_id, socket, out);
            }
            Link::Down => {
                logging::error(
                    self.me,
                    format!(
                        "Drop message to harbor {harbor_id} from {source:x} to {dest:x} (session = {}, msgsz = {})",
                        session as i32,
                        out.payload.len()
                    ),
                );
                self.bounce(harbor_id, out.cookie);
            }
        }
    }

    fn send_name(&mut self, name: Vec<u8>, source: u32, ptype: u8, session: u32, payload: Payload) {
        let query = [&b"Q "[..], &name].concat();
        let entry = self.names.entry(name).or_default();
        if entry.handle != 0 {
            let dest = entry.handle;
            self.send_handle(dest, source, ptype, session, payload);
            return;
        }
        entry.queue.push(Outgoing {
            cookie: Cookie {
                source,
                destination: u32::from(ptype) << HANDLE_REMOTE_SHIFT,
                session,
            },
            payload,
        });
        self.tell_slave(&query);
    }

    /// `N name`: binds the name and sends what waited for it.
    fn bind_name(&mut self, name: &[u8], handle: u32) {
        let entry = self.names.entry(name.to_vec()).or_default();
        entry.handle = handle;
        let queue = std::mem::take(&mut entry.queue);
        if queue.is_empty() {
            return;
        }
        let harbor_id = harbor_of(handle);
        let dead = harbor_id as u32 != self.id && matches!(self.links[harbor_id], Link::Down);
        if dead {
            let name = String::from_utf8_lossy(name);
            logging::error(
                self.me,
                format!("Drop message to {name} (in harbor {harbor_id})"),
            );
        }
        for mut out in queue {
            out.cookie.destination |= handle & HANDLE_MASK;
            let c = out.cookie;
            if dead {
                self.bounce(harbor_id, c);
            } else {
                let ptype = (c.destination >> HANDLE_REMOTE_SHIFT) as u8;
                self.send_handle(handle, c.source, ptype, c.session, out.payload);
            }
        }
    }

    fn remote(&mut self, source: u32, session: i32, r: Remote) {
        let session = session as u32;
        match r.target {
            Target::Handle(dest) => self.send_handle(dest, source, r.ptype, session, r.payload),
            Target::Name(name) => self.send_name(name, source, r.ptype, session, r.payload),
        }
    }
}

impl Service for Harbor {
    fn dispatch(&mut self, _ctx: &Arc<Context>, msg: Message) {
        match msg.ptype() {
            PTYPE_SYSTEM => {
                let (source, session) = (msg.source, msg.session);
                if let Ok(r) = harbor::decode(msg) {
                    self.remote(source, session, r);
                }
            }
            PTYPE_HARBOR => self.command(msg.source, msg.bytes()),
            PTYPE_SOCKET => self.socket_event(&msg),
            t => {
                logging::error(
                    self.me,
                    format!("recv invalid message from {:x},  type = {t}", msg.source),
                );
                if msg.session != 0 && t != PTYPE_ERROR {
                    context::deliver(
                        msg.source,
                        Message::new(self.me, msg.session, PTYPE_ERROR, Payload::NULL),
                    );
                }
            }
        }
    }
}
