//! One service instance: its handle, queue, native module instance, session counter and
//! statistics; plus creating services, sending to them and dispatching their messages.

use crate::handle;
use crate::logging;
use crate::message::{Message, Payload, PTYPE_ERROR, PTYPE_SOCKET, PTYPE_TAG_ALLOCSESSION};
use crate::mq::{self, Popped, Pushed, ServiceQueue};
use crate::{cservice, harbor, timer};
use parking_lot::Mutex;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// A native service instance (snlua, logger, harbor, gate).
pub trait Service: Send {
    /// Handles one message; the payload is freed when `msg` drops unless the service
    /// keeps it.
    fn dispatch(&mut self, ctx: &Arc<Context>, msg: Message);

    /// False while the service has no callback: its messages are dropped uncounted.
    fn has_callback(&self) -> bool {
        true
    }
}

/// A native service's init failed (upstream logs `launch <module> FAILED`).
#[derive(Debug)]
pub struct InitFailed;

/// The signal hook of a module (`SIGNAL addr n`); runs on the sender's thread.
pub type SignalHook = Box<dyn Fn(i32) + Send + Sync>;

/// Live services, the node runs while this is above zero.
static TOTAL: AtomicUsize = AtomicUsize::new(0);
/// Whether per-message CPU accounting is on (config `profile`).
static PROFILE: AtomicBool = AtomicBool::new(true);

pub fn set_profile(on: bool) {
    PROFILE.store(on, Ordering::Relaxed);
}

pub fn total() -> usize {
    TOTAL.load(Ordering::Acquire)
}

pub struct Context {
    pub handle: u32,
    queue: ServiceQueue,
    service: Mutex<Option<Box<dyn Service>>>,
    session: AtomicI32,
    endless: AtomicBool,
    message_count: AtomicU64,
    cpu_ns: AtomicU64,
    dispatch_start_ns: AtomicU64,
    reserved: AtomicBool,
    logfile: Mutex<Option<File>>,
    /// Mirrors `logfile.is_some()`, so dispatch takes the log lock only when logging.
    logging: AtomicBool,
    signal: OnceLock<SignalHook>,
}

impl Context {
    fn new(handle: u32) -> Context {
        Context {
            handle,
            queue: ServiceQueue::new(),
            service: Mutex::new(None),
            session: AtomicI32::new(0),
            endless: AtomicBool::new(false),
            message_count: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
            dispatch_start_ns: AtomicU64::new(0),
            reserved: AtomicBool::new(false),
            logfile: Mutex::new(None),
            logging: AtomicBool::new(false),
            signal: OnceLock::new(),
        }
    }

    /// A fresh session id in `1..=i32::MAX`, wrapping back to 1.
    pub fn new_session(&self) -> i32 {
        // Only the worker dispatching this service allocates sessions, so a plain
        // load/store pair cannot race.
        let mut s = self.session.load(Ordering::Relaxed).wrapping_add(1);
        if s <= 0 {
            s = 1;
        }
        self.session.store(s, Ordering::Relaxed);
        s
    }

    pub fn set_signal_hook(&self, hook: SignalHook) {
        let _ = self.signal.set(hook);
    }

    pub fn signal(&self, sig: i32) {
        if let Some(hook) = self.signal.get() {
            hook(sig);
        }
    }

    pub fn mark_endless(&self) {
        self.endless.store(true, Ordering::Relaxed);
    }

    /// Reads and clears the endless-loop flag.
    pub fn take_endless(&self) -> bool {
        self.endless.swap(false, Ordering::Relaxed)
    }

    pub fn message_count(&self) -> u64 {
        self.message_count.load(Ordering::Relaxed)
    }

    pub fn mqlen(&self) -> usize {
        self.queue.waiting()
    }

    /// Seconds spent in callbacks so far.
    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_ns.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// Seconds since the message being dispatched now started (0 without profiling).
    pub fn current_dispatch_seconds(&self) -> f64 {
        let start = self.dispatch_start_ns.load(Ordering::Relaxed);
        if !PROFILE.load(Ordering::Relaxed) || start == 0 {
            return 0.0;
        }
        timer::hpc().saturating_sub(start) as f64 / 1e9
    }

    /// Excludes this service from the live count (the harbor does not keep a node up).
    pub fn reserve(&self) {
        if !self.reserved.swap(true, Ordering::AcqRel) {
            TOTAL.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Works on the per-service message log (LOGON/LOGOFF) under its lock.
    pub fn with_logfile<R>(&self, f: impl FnOnce(&mut Option<File>) -> R) -> R {
        let mut slot = self.logfile.lock();
        let r = f(&mut slot);
        self.logging.store(slot.is_some(), Ordering::Relaxed);
        r
    }

    /// Queues a message for this service.
    pub fn push(self: &Arc<Context>, msg: Message) {
        match self.queue.push(msg) {
            Pushed::Queued(true) => mq::global_push(self.clone()),
            Pushed::Queued(false) => {}
            Pushed::Released(msg) => bounce(self.handle, msg),
        }
    }

    /// Retires the service: its handle and names go now; a worker releases it.
    fn retire(self: &Arc<Context>) {
        if self.queue.retire() {
            mq::global_push(self.clone());
        }
    }

    /// Destroys the instance and bounces what was still queued.
    fn release(&self) {
        let service = self.service.lock().take();
        drop(service);
        for msg in self.queue.release() {
            bounce(self.handle, msg);
        }
        if !self.reserved.swap(true, Ordering::AcqRel) {
            TOTAL.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Answers a message that reached a dead service with an empty PTYPE_ERROR (even for
/// session 0: lualib reads that as "the service died").
fn bounce(dead: u32, msg: Message) {
    if msg.source != 0 {
        send_raw(dead, msg.source, PTYPE_ERROR, msg.session, Payload::NULL, 0);
    }
    discard(msg);
}

/// Frees a message nobody will handle, including the DATA/UDP buffer a socket event
/// carries inside its record.
fn discard(msg: Message) {
    if msg.ptype == PTYPE_SOCKET {
        // SAFETY: an undelivered socket event still owns its buffer, and the message
        // is dropped right after, so the buffer is never used again.
        unsafe { crate::socket::record::free_buffer(msg.bytes()) };
    }
}

/// `LAUNCH`: creates a service of `module` with `param`. None when the module is unknown
/// or its init fails.
pub fn launch(module: &str, param: Option<&str>) -> Option<u32> {
    let create = match cservice::find(module) {
        Some(c) => c,
        None => {
            eprintln!("try open {module} failed : no such native service");
            return None;
        }
    };
    let Some(ctx) = handle::register(|h| Arc::new(Context::new(h))) else {
        logging::error(
            0,
            format!("error: launch {module} FAILED: no free service handle"),
        );
        return None;
    };
    TOTAL.fetch_add(1, Ordering::AcqRel);
    match create(&ctx, param) {
        Ok(service) => {
            *ctx.service.lock() = Some(service);
            let handle = ctx.handle;
            // The queue was born scheduled: hand it to the workers now that init is done.
            mq::global_push(ctx);
            logging::error(handle, format!("LAUNCH {} {}", module, param.unwrap_or("")));
            Some(handle)
        }
        Err(InitFailed) => {
            logging::error(ctx.handle, format!("error: launch {module} FAILED"));
            if let Some(ctx) = handle::retire(ctx.handle) {
                ctx.release();
            }
            None
        }
    }
}

/// Retires `handle` (EXIT/KILL/ABORT); a worker releases it.
pub fn kill(handle: u32) {
    if let Some(ctx) = handle::retire(handle) {
        ctx.retire();
    }
}

/// Where a message goes.
pub enum Destination<'a> {
    Handle(u32),
    Name(&'a [u8]),
}

/// Why a send failed.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// Unknown or dead destination (upstream's -1).
    NoDestination,
    /// Payload too large (upstream's -2).
    TooLarge,
}

/// The message body of a send: borrowed bytes are copied, an owned payload is handed
/// over (`PTYPE_TAG_DONTCOPY`).
pub enum Body<'a> {
    Copy(&'a [u8]),
    Owned(Payload, usize),
}

const MAX_PAYLOAD: usize = (1usize << 56) - 1;

/// The send primitive: `ptype` may carry `PTYPE_TAG_ALLOCSESSION`. Returns the session.
pub fn send(
    ctx: &Context,
    source: u32,
    dest: Destination,
    ptype: i32,
    session: i32,
    body: Body,
) -> Result<i32, SendError> {
    let (data, size) = match body {
        Body::Copy([]) => (Payload::NULL, 0),
        Body::Copy(b) => (Payload::copy_of(b), b.len()),
        Body::Owned(p, sz) => (p, sz),
    };
    if size > MAX_PAYLOAD {
        let to = match dest {
            Destination::Handle(h) => format!("{h:x}"),
            Destination::Name(n) => String::from_utf8_lossy(n).into_owned(),
        };
        logging::error(
            ctx.handle,
            format!("error: The message to {to} is too large"),
        );
        return Err(SendError::TooLarge);
    }
    // An unknown local name fails before a session is taken, as upstream.
    let dest = match dest {
        Destination::Handle(h) => Ok(h),
        Destination::Name(name) => match name.first() {
            Some(b':') => Ok(parse_hex(&name[1..]).unwrap_or(0)),
            Some(b'.') => match handle::find_name(&name[1..]) {
                0 => return Err(SendError::NoDestination),
                h => Ok(h),
            },
            _ => Err(name),
        },
    };
    let session = if ptype & PTYPE_TAG_ALLOCSESSION != 0 {
        ctx.new_session()
    } else {
        session
    };
    let source = if source == 0 { ctx.handle } else { source };
    let ptype = (ptype & 0xff) as u8;
    let dest = match dest {
        Ok(h) => h,
        Err(global_name) => {
            harbor::send_name(global_name, source, ptype, session, data, size);
            return Ok(session);
        }
    };
    if dest == 0 {
        if !data.is_null() {
            logging::error(ctx.handle, "error: Destination address can't be 0");
            return Err(SendError::NoDestination);
        }
        return Ok(session);
    }
    if handle::is_remote(dest) {
        harbor::send_handle(dest, source, ptype, session, data, size);
        return Ok(session);
    }
    match send_raw(source, dest, ptype, session, data, size) {
        true => Ok(session),
        false => Err(SendError::NoDestination),
    }
}

/// Pushes a message to a local handle; false when it is not alive (payload freed).
pub fn send_raw(
    source: u32,
    dest: u32,
    ptype: u8,
    session: i32,
    data: Payload,
    size: usize,
) -> bool {
    match handle::grab(dest) {
        Some(ctx) => {
            ctx.push(Message {
                source,
                session,
                ptype,
                data,
                size,
            });
            true
        }
        None => false,
    }
}

/// Parses `:hex`-style digits (any case), as `strtoul(s, 16)` would for a valid string.
pub fn parse_hex(s: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(s).ok()?;
    u32::from_str_radix(s, 16).ok()
}

/// Converts `:hex` or `.name` to a handle (0 when it cannot), logging upstream's errors.
pub fn query_name(ctx_handle: u32, name: &str) -> u32 {
    match name.as_bytes().first() {
        Some(b':') => parse_hex(&name.as_bytes()[1..]).unwrap_or(0),
        Some(b'.') => handle::find_name(&name.as_bytes()[1..]),
        _ => {
            logging::error(
                ctx_handle,
                format!("error: Don't support query global name {name}"),
            );
            0
        }
    }
}

/// Records where the worker is, for endless-loop detection.
pub trait DispatchWatch {
    fn enter(&self, source: u32, dest: u32);
    fn leave(&self);
}

fn dispatch_one(ctx: &Arc<Context>, msg: Message, watch: &dyn DispatchWatch) {
    watch.enter(msg.source, ctx.handle);
    crate::memory::set_current(ctx.handle);
    let mut service = ctx.service.lock();
    if let Some(s) = service.as_mut() {
        if s.has_callback() {
            if ctx.logging.load(Ordering::Relaxed) {
                if let Some(f) = ctx.logfile.lock().as_mut() {
                    crate::command::log_message(f, &msg);
                }
            }
            ctx.message_count.fetch_add(1, Ordering::Relaxed);
            if PROFILE.load(Ordering::Relaxed) {
                let start = timer::hpc();
                ctx.dispatch_start_ns.store(start, Ordering::Relaxed);
                s.dispatch(ctx, msg);
                let cost = timer::hpc().saturating_sub(start);
                ctx.cpu_ns.fetch_add(cost, Ordering::Relaxed);
            } else {
                s.dispatch(ctx, msg);
            }
        } else {
            discard(msg);
        }
    }
    drop(service);
    crate::memory::set_current(0);
    watch.leave();
}

/// Dispatches a batch of messages of one service (`weight` as in upstream's table) and
/// returns the service queue the worker should take next.
pub fn dispatch_batch(
    current: Option<Arc<Context>>,
    weight: i32,
    watch: &dyn DispatchWatch,
) -> Option<Arc<Context>> {
    let ctx = match current {
        Some(c) => c,
        None => mq::global_pop()?,
    };
    let mut batch = 1usize;
    let mut i = 0;
    while i < batch {
        match ctx.queue.pop() {
            Popped::Message(msg, left, overload) => {
                if i == 0 && weight >= 0 {
                    batch = (left >> weight).max(1);
                }
                if let Some(len) = overload {
                    logging::error(
                        ctx.handle,
                        format!("error: May overload, message queue length = {len}"),
                    );
                }
                dispatch_one(&ctx, msg, watch);
            }
            Popped::Empty => return mq::global_pop(),
            Popped::Retired => {
                ctx.release();
                return mq::global_pop();
            }
        }
        i += 1;
    }
    match mq::global_pop() {
        Some(next) => {
            mq::global_push(ctx);
            Some(next)
        }
        None => Some(ctx),
    }
}

/// Dispatches everything queued for `handle` on this thread (flushing the logger before
/// a failed boot exits).
pub fn dispatch_all(handle: u32) {
    struct Nowhere;
    impl DispatchWatch for Nowhere {
        fn enter(&self, _: u32, _: u32) {}
        fn leave(&self) {}
    }
    if let Some(ctx) = handle::grab(handle) {
        while let Popped::Message(msg, ..) = ctx.queue.pop() {
            dispatch_one(&ctx, msg, &Nowhere);
        }
    }
}
