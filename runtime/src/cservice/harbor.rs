//! The `harbor` service: global names and messages for other nodes.
//!
//! Launched by cdummy (harbor 0) or cslave with `"<harbor id> <slave handle>"`. It binds
//! global names (`N name` from the slave, on behalf of the message's source), queues
//! messages for names nobody has bound yet and asks the slave about them (`Q name`), and
//! delivers a name's queue once it is bound. Links to other harbors (`S`/`A`) belong to
//! the multi-node protocol; in a single node every remote handle is unreachable and its
//! messages bounce with PTYPE_ERROR.

use crate::context::{self, Context, InitFailed, Service};
use crate::harbor::{self, Remote, Target};
use crate::message::{Message, Payload, PTYPE_ERROR, PTYPE_HARBOR, PTYPE_SYSTEM, PTYPE_TEXT};
use crate::{handle, logging};
use std::collections::HashMap;
use std::sync::Arc;

struct Pending {
    source: u32,
    session: i32,
    ptype: u8,
    payload: Vec<u8>,
}

pub struct Harbor {
    id: u32,
    slave: u32,
    names: HashMap<Vec<u8>, u32>,
    waiting: HashMap<Vec<u8>, Vec<Pending>>,
}

pub fn create(ctx: &Arc<Context>, param: Option<&str>) -> Result<Box<dyn Service>, InitFailed> {
    let mut words = param.unwrap_or("").split_whitespace();
    let id = words
        .next()
        .and_then(|w| w.parse::<u32>().ok())
        .unwrap_or(0);
    let slave = words
        .next()
        .and_then(|w| w.parse::<u32>().ok())
        .unwrap_or(0);
    if slave == 0 {
        return Err(InitFailed);
    }
    ctx.reserve();
    harbor::start(ctx.handle);
    Ok(Box::new(Harbor {
        id,
        slave,
        names: HashMap::new(),
        waiting: HashMap::new(),
    }))
}

impl Harbor {
    fn deliver(&self, me: u32, source: u32, dest: u32, session: i32, ptype: u8, payload: &[u8]) {
        if !context::handles().is_remote(dest) {
            let data = if payload.is_empty() {
                Payload::NULL
            } else {
                Payload::copy_of(payload)
            };
            context::deliver(dest, Message::new(source, session, ptype, data));
            return;
        }
        logging::error(
            me,
            format!(
                "Drop message to harbor {} from :{source:08x} to :{dest:08x} (session = {session}, msgsz = {})",
                dest >> handle::HANDLE_REMOTE_SHIFT,
                payload.len()
            ),
        );
        if ptype != PTYPE_ERROR {
            context::deliver(
                source,
                Message::new(me, session, PTYPE_ERROR, Payload::NULL),
            );
        }
    }

    fn remote(&mut self, me: u32, source: u32, session: i32, r: Remote) {
        match r.target {
            Target::Handle(dest) => self.deliver(me, source, dest, session, r.ptype, &r.payload),
            Target::Name(name) => match self.names.get(&name) {
                Some(&dest) => self.deliver(me, source, dest, session, r.ptype, &r.payload),
                None => {
                    self.waiting.entry(name.clone()).or_default().push(Pending {
                        source,
                        session,
                        ptype: r.ptype,
                        payload: r.payload,
                    });
                    let mut query = b"Q ".to_vec();
                    query.extend_from_slice(&name);
                    context::deliver(
                        self.slave,
                        Message::new(me, 0, PTYPE_TEXT, Payload::copy_of(&query)),
                    );
                }
            },
        }
    }

    fn command(&mut self, me: u32, source: u32, text: &[u8]) {
        let shown = String::from_utf8_lossy(text).into_owned();
        match text.first() {
            Some(b'N') if text.len() > 2 => {
                let name = &text[2..];
                if name.is_empty() || name.len() >= harbor::GLOBALNAME_LENGTH {
                    logging::error(me, format!("Invalid global name {}", String::from_utf8_lossy(name)));
                    return;
                }
                self.names.insert(name.to_vec(), source);
                for p in self.waiting.remove(name).unwrap_or_default() {
                    self.deliver(me, p.source, source, p.session, p.ptype, &p.payload);
                }
            }
            Some(b'S') | Some(b'A') => logging::error(
                me,
                format!("error: harbor {} can't link other nodes ({shown}): multi-node harbor is not supported", self.id),
            ),
            _ => logging::error(me, format!("Unknown command {shown}")),
        }
    }
}

impl Service for Harbor {
    fn dispatch(&mut self, ctx: &Arc<Context>, msg: Message) {
        let me = ctx.handle;
        match msg.ptype() {
            PTYPE_SYSTEM => {
                if let Some(r) = harbor::decode(msg.bytes()) {
                    self.remote(me, msg.source, msg.session, r);
                }
            }
            PTYPE_HARBOR => self.command(me, msg.source, msg.bytes()),
            t => {
                logging::error(
                    me,
                    format!("recv invalid message from {:x},  type = {t}", msg.source),
                );
                if msg.session != 0 && t != PTYPE_ERROR {
                    context::deliver(
                        msg.source,
                        Message::new(me, msg.session, PTYPE_ERROR, Payload::NULL),
                    );
                }
            }
        }
    }
}
