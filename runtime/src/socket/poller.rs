//! Who polls the sockets: an idle worker, or the socket thread.
//!
//! A request/response conversation is a chain of hand-offs: bytes arrive, the poller
//! reads them and queues a DATA message, a worker runs the service, the service writes
//! its answer (directly, direct.rs) and waits for the next message. With a dedicated
//! socket thread every arrival costs two thread wake-ups, the poller's and a sleeping
//! worker's, and on a virtual machine waking a thread on an idle core costs more than
//! all the rest of the round trip. So the role of poller is a lock ([`Poller::server`])
//! that an idle worker takes instead of sleeping: it blocks in the poll itself, handles
//! what arrives, lets go of the role and runs the service it just fed, with no thread
//! woken on the way. With one worker a loopback ping-pong then runs in that one thread.
//!
//! The socket thread stays as the backup poller for when every worker is busy: sockets
//! must be read and queued writes flushed while services run. Every [`BACKUP_INTERVAL`]
//! (more rarely while a worker keeps the role) it looks whether workers polled since its last look; if none did and the role is
//! free, it takes the role and polls (blocking) until a worker sleeps, which then polls
//! instead. A request queued while nobody polls unparks it at once (`nudge`), so a
//! connect, a close or the rest of a partial write never waits for the interval.
//!
//! Wake-ups: the poll ends when a socket is ready or the waker fires. Requests fire it
//! ([`super::request`]); the scheduler fires it through [`wake`] when work is queued and
//! the only idle worker is the one in the poll.

use super::server::Server;
use super::Node;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;

/// How often the socket thread looks whether idle workers keep polling: every
/// millisecond while the role changes hands, backing off to 8 ms while a worker holds
/// it all along (an idle node), so an idle node is not woken a thousand times a second.
const BACKUP_INTERVAL: Duration = Duration::from_millis(1);
const BACKUP_INTERVAL_IDLE: Duration = Duration::from_millis(8);

pub(super) struct Poller {
    server: Mutex<Server>,
    /// A worker holds the role: a wake for new work goes through the waker.
    worker_polling: AtomicBool,
    /// Turns workers have polled, for the socket thread to see they keep up.
    worker_turns: AtomicU64,
    /// `Exit` was served (or the poll set broke): nobody polls any more.
    stopped: AtomicBool,
    waker: Arc<mio::Waker>,
    node: Arc<dyn Node>,
    socket_thread: OnceLock<Thread>,
}

static POLLER: OnceLock<Poller> = OnceLock::new();

/// Installs the server; false if one is installed already.
pub(super) fn install(server: Server, waker: Arc<mio::Waker>, node: Arc<dyn Node>) -> bool {
    POLLER
        .set(Poller {
            server: Mutex::new(server),
            worker_polling: AtomicBool::new(false),
            worker_turns: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            waker,
            node,
            socket_thread: OnceLock::new(),
        })
        .is_ok()
}

/// The socket thread's loop: the backup poller (module doc).
pub(super) fn socket_thread() {
    let Some(p) = POLLER.get() else { return };
    let _ = p.socket_thread.set(thread::current());
    let mut seen = u64::MAX;
    let mut interval = BACKUP_INTERVAL;
    while !p.stopped.load(Ordering::Acquire) {
        let turns = p.worker_turns.load(Ordering::Relaxed);
        let workers_poll = turns != seen;
        seen = turns;
        match p.server.try_lock() {
            Some(mut server) => {
                interval = BACKUP_INTERVAL;
                if !backup_turns(p, &mut server, workers_poll) {
                    p.stopped.store(true, Ordering::Release);
                }
            }
            None => interval = (interval * 2).min(BACKUP_INTERVAL_IDLE),
        }
        thread::park_timeout(interval);
    }
}

/// What the socket thread does with the role: while workers keep polling, only serve
/// the requests that woke it; when none polled since its last look, poll until one of
/// them is idle. False once the server has stopped.
fn backup_turns(p: &Poller, server: &mut Server, workers_poll: bool) -> bool {
    if workers_poll {
        return !server.has_requests() || server.turn(Some(Duration::ZERO));
    }
    loop {
        if !server.turn(None) {
            return false;
        }
        if p.node.idle_worker() {
            return true;
        }
    }
}

/// Called by a worker with nothing to run: if nobody polls, polls until something
/// happens and handles it, then returns true (the caller looks for work again). False
/// when another thread polls (the caller sleeps as usual) or the server has stopped.
/// `has_work` is checked once the role is taken, so work queued before that is not
/// left waiting in the poll.
pub fn lend(has_work: impl Fn() -> bool) -> bool {
    let Some(p) = POLLER.get() else { return false };
    if p.stopped.load(Ordering::Acquire) {
        return false;
    }
    let Some(mut server) = p.server.try_lock() else {
        return false;
    };
    // SeqCst pairs with `wake`: either the scheduler sees this flag after queueing
    // work, or this thread sees the work below.
    p.worker_polling.store(true, Ordering::SeqCst);
    if !has_work() && !server.turn(None) {
        p.stopped.store(true, Ordering::Release);
    }
    p.worker_polling.store(false, Ordering::SeqCst);
    p.worker_turns.fetch_add(1, Ordering::Relaxed);
    true
}

/// Ends the poll of a worker holding the role, if one does (the scheduler queued work
/// and no other worker is idle); false when no worker polls.
pub fn wake() -> bool {
    let Some(p) = POLLER.get() else { return false };
    if p.worker_polling.load(Ordering::SeqCst) {
        let _ = p.waker.wake();
        return true;
    }
    false
}

/// Whether a worker holds the poller role (an idle worker that [`wake`] can call).
pub fn worker_polls() -> bool {
    POLLER
        .get()
        .is_some_and(|p| p.worker_polling.load(Ordering::Relaxed))
}

/// A request was queued: if nobody polls, the socket thread serves it now.
pub(super) fn nudge() {
    let Some(p) = POLLER.get() else { return };
    if !p.server.is_locked() {
        if let Some(t) = p.socket_thread.get() {
            t.unpark();
        }
    }
}
