//! One service instance ([`Context`]): its handle, queue, native service instance,
//! session counter, statistics and message log; the table of live contexts and the run
//! queue of scheduled ones; and [`deliver`], which puts a message in a service's queue.
//!
//! This is the layer every part of the node sends through. It knows handles, queues and
//! messages below it; sending by name, launching and dispatching sit above it
//! (`send.rs`, `launch.rs`, `dispatch.rs`).

use crate::handle::HandleTable;
use crate::message::{Message, Payload, PTYPE_ERROR, PTYPE_SOCKET};
use crate::mq::{GlobalQueue, Pushed, ServiceQueue};
use crate::msglog::MessageLog;
use crate::socket::record;
use crate::{memory, timer};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};

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

static HANDLES: LazyLock<HandleTable<Context>> = LazyLock::new(HandleTable::new);
static SCHEDULED: LazyLock<GlobalQueue<Arc<Context>>> = LazyLock::new(GlobalQueue::new);

pub fn set_profile(on: bool) {
    PROFILE.store(on, Ordering::Relaxed);
}

pub fn profiling() -> bool {
    PROFILE.load(Ordering::Relaxed)
}

pub fn total() -> usize {
    TOTAL.load(Ordering::Acquire)
}

/// The node's handles and local names.
pub fn handles() -> &'static HandleTable<Context> {
    &HANDLES
}

/// The live context behind `handle`, if any.
pub fn grab(handle: u32) -> Option<Arc<Context>> {
    HANDLES.grab(handle)
}

/// The run queue: services with messages waiting, in the order they became ready.
pub fn scheduled() -> &'static GlobalQueue<Arc<Context>> {
    &SCHEDULED
}

pub struct Context {
    pub handle: u32,
    pub(crate) queue: ServiceQueue,
    pub(crate) service: Mutex<Option<Box<dyn Service>>>,
    session: AtomicI32,
    endless: AtomicBool,
    message_count: AtomicU64,
    cpu_ns: AtomicU64,
    dispatch_start_ns: AtomicU64,
    reserved: AtomicBool,
    log: Mutex<Option<MessageLog>>,
    /// Mirrors `log.is_some()`, so dispatch takes the log lock only when logging.
    logging: AtomicBool,
    signal: OnceLock<SignalHook>,
}

impl Context {
    /// Registers a new context under a fresh handle; None when no handle is free. The
    /// context counts as live until it is released.
    pub fn register() -> Option<Arc<Context>> {
        let ctx = HANDLES.register(|h| Arc::new(Context::new(h)))?;
        TOTAL.fetch_add(1, Ordering::AcqRel);
        Some(ctx)
    }

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
            log: Mutex::new(None),
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
        if !profiling() || start == 0 {
            return 0.0;
        }
        timer::hpc().saturating_sub(start) as f64 / 1e9
    }

    /// Counts one dispatched message.
    pub(crate) fn count_message(&self) {
        self.message_count.fetch_add(1, Ordering::Relaxed);
    }

    /// Records when the message being dispatched started (profiling).
    pub(crate) fn start_dispatch(&self, now_ns: u64) {
        self.dispatch_start_ns.store(now_ns, Ordering::Relaxed);
    }

    /// Adds the cost of one dispatch (profiling).
    pub(crate) fn add_cpu(&self, ns: u64) {
        self.cpu_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Excludes this service from the live count (the harbor does not keep a node up).
    pub fn reserve(&self) {
        if !self.reserved.swap(true, Ordering::AcqRel) {
            TOTAL.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Works on the per-service message log (LOGON/LOGOFF) under its lock.
    pub fn with_log<R>(&self, f: impl FnOnce(&mut Option<MessageLog>) -> R) -> R {
        let mut slot = self.log.lock();
        let r = f(&mut slot);
        self.logging.store(slot.is_some(), Ordering::Relaxed);
        r
    }

    /// Appends `msg` to the message log if LOGON is on for this service.
    pub(crate) fn log_message(&self, msg: &Message) {
        if self.logging.load(Ordering::Relaxed) {
            if let Some(log) = self.log.lock().as_mut() {
                log.write(msg);
            }
        }
    }

    /// Queues a message for this service.
    pub fn push(self: &Arc<Context>, msg: Message) {
        match self.queue.push(msg) {
            Pushed::Scheduled => SCHEDULED.push(self.clone()),
            Pushed::Queued => {}
            Pushed::Released(msg) => bounce(self.handle, msg),
        }
    }

    /// Retires the service: its handle and names go now; a worker releases it.
    pub fn retire(handle: u32) {
        if let Some(ctx) = HANDLES.retire(handle) {
            if ctx.queue.retire() {
                SCHEDULED.push(ctx);
            }
        }
    }

    /// Destroys the instance and bounces what was still queued.
    pub(crate) fn release(&self) {
        let service = self.service.lock().take();
        drop(service);
        for msg in self.queue.release() {
            bounce(self.handle, msg);
        }
        if !self.reserved.swap(true, Ordering::AcqRel) {
            TOTAL.fetch_sub(1, Ordering::AcqRel);
        }
        memory::note_release();
    }
}

/// Puts `msg` in the queue of the local service `dest`; false when it is not alive (the
/// message and its payload are freed).
pub fn deliver(dest: u32, msg: Message) -> bool {
    match grab(dest) {
        Some(ctx) => {
            ctx.push(msg);
            true
        }
        None => {
            discard(msg);
            false
        }
    }
}

/// Answers a message that reached a dead service with an empty PTYPE_ERROR (even for
/// session 0: lualib reads that as "the service died").
fn bounce(dead: u32, msg: Message) {
    if msg.source != 0 {
        deliver(
            msg.source,
            Message::new(dead, msg.session, PTYPE_ERROR, Payload::NULL),
        );
    }
    discard(msg);
}

/// Frees a message nobody will handle, including the DATA/UDP buffer a socket event
/// carries inside its record.
pub(crate) fn discard(msg: Message) {
    if msg.ptype() == PTYPE_SOCKET {
        // SAFETY: an undelivered socket event still owns its buffer, and the message
        // is dropped right after, so the buffer is never used again.
        unsafe { record::free_buffer(msg.bytes()) };
    }
}
