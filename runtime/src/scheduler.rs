//! Threads: the workers that dispatch services, the timer thread and the monitor that
//! spots endless loops.
//!
//! A worker with nothing to run first offers to poll the sockets (socket/poller.rs);
//! if another thread polls already, it sleeps on one condition variable. A send never
//! wakes one (waking a thread costs far more than a message); the timer thread wakes one
//! idle worker every 2.5 ms, and a busy worker finds new work itself after every batch.
//! A busy worker that ends a batch with other services still waiting in the run queue
//! asks one idle worker to help, once until that one has looked for work: a fan-out
//! (a service that sent to a thousand others in one message) then runs on every core at
//! once instead of waiting for the next tick, while a conversation between two services,
//! which leaves nothing else queued, stays on one worker with no wake-up at all.
//! The node stops when no live service is left.

use crate::dispatch::{self, DispatchWatch};
use crate::memory::GiveBack;
use crate::{command, context, logging, socket, timer};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread;
use std::time::Duration;

/// Weights of workers by index: a worker takes `queue length >> weight` messages of a
/// service per turn (-1: one message).
const WEIGHTS: [i32; 32] = [
    -1, -1, -1, -1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
    3, 3,
];

/// Workers asleep on the condition variable. `count` changes only under `lock`, so a
/// waker holding the lock sees every sleeper that could miss its notify; it is atomic
/// so a busy worker can glance at it without the lock.
struct Sleepers {
    lock: Mutex<()>,
    count: AtomicUsize,
    cond: Condvar,
}

static SLEEPERS: LazyLock<Sleepers> = LazyLock::new(|| Sleepers {
    lock: Mutex::new(()),
    count: AtomicUsize::new(0),
    cond: Condvar::new(),
});
static QUIT: AtomicBool = AtomicBool::new(false);
static WORKERS: AtomicU32 = AtomicU32::new(0);
static SIGHUP: AtomicBool = AtomicBool::new(false);
/// A busy worker asked for help and no idle worker has looked for work since.
static HELP_ASKED: AtomicBool = AtomicBool::new(false);

/// Wakes one sleeping worker if at least `min_sleeping` workers are asleep; false if
/// none was woken.
pub fn wakeup(min_sleeping: usize) -> bool {
    let _guard = SLEEPERS.lock.lock();
    let count = SLEEPERS.count.load(Ordering::Relaxed);
    let wake = count >= min_sleeping && count > 0;
    if wake {
        SLEEPERS.cond.notify_one();
    }
    wake
}

/// How many workers sleep for want of work (not counting one polling the sockets).
pub fn sleeping() -> usize {
    let _guard = SLEEPERS.lock.lock();
    SLEEPERS.count.load(Ordering::Relaxed)
}

/// Wakes one worker only when all of them sleep (what the socket thread does).
pub fn wakeup_if_all_sleep() {
    wakeup(WORKERS.load(Ordering::Relaxed) as usize);
}

/// Makes sure an idle worker looks at queued work: a sleeping one is woken, else one
/// polling the sockets leaves the poll.
fn wakeup_any() {
    if !wakeup(1) && context::scheduled().has_work() {
        socket::wake();
    }
}

/// After a batch, with services still waiting: wakes one idle worker (module doc).
fn ask_for_help() {
    if HELP_ASKED.load(Ordering::Relaxed) || !context::scheduled().has_work() {
        return;
    }
    if SLEEPERS.count.load(Ordering::Relaxed) == 0 && !socket::worker_polls() {
        return;
    }
    if HELP_ASKED.swap(true, Ordering::AcqRel) {
        return;
    }
    if !wakeup(1) && !socket::wake() {
        // Nobody was idle after all; the next batch may ask again.
        HELP_ASKED.store(false, Ordering::Release);
    }
}

/// One worker's record for endless-loop detection.
#[derive(Default)]
struct Monitor {
    version: AtomicU32,
    checked: AtomicU32,
    source: AtomicU32,
    dest: AtomicU32,
}

impl DispatchWatch for Monitor {
    fn enter(&self, source: u32, dest: u32) {
        self.source.store(source, Ordering::Relaxed);
        self.dest.store(dest, Ordering::Relaxed);
        self.version.fetch_add(1, Ordering::Release);
    }
    fn leave(&self) {
        self.enter(0, 0);
    }
}

impl Monitor {
    fn check(&self) {
        let version = self.version.load(Ordering::Acquire);
        if version == self.checked.load(Ordering::Relaxed) {
            let dest = self.dest.load(Ordering::Relaxed);
            if dest != 0 {
                if let Some(ctx) = context::grab(dest) {
                    ctx.mark_endless();
                }
                let source = self.source.load(Ordering::Relaxed);
                logging::error(
                    0,
                    format!(
                        "error: A message from [ :{source:08x} ] to [ :{dest:08x} ] maybe in an endless loop (version = {version})"
                    ),
                );
            }
        } else {
            self.checked.store(version, Ordering::Relaxed);
        }
    }
}

extern "C" fn on_sighup(_: libc::c_int) {
    SIGHUP.store(true, Ordering::Relaxed);
}

/// Installs the process signal handlers (SIGHUP reopens the log; SIGPIPE ignored).
pub fn install_signals() {
    // SAFETY: `on_sighup` only stores to an atomic, which is async-signal-safe, and
    // SIG_IGN for SIGPIPE is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, on_sighup as *const () as libc::sighandler_t);
    }
}

fn worker(monitor: Arc<Monitor>, weight: i32) {
    let mut current = None;
    let mut memory = GiveBack::default();
    while !QUIT.load(Ordering::Acquire) {
        current = dispatch::dispatch_batch(current, weight, &*monitor);
        memory.busy();
        if current.is_some() {
            ask_for_help();
        } else {
            memory.idle();
            // An idle worker polls the sockets if nobody does (socket/poller.rs): what
            // it reads it runs next, without waking anyone.
            if socket::lend(|| context::scheduled().has_work()) {
                HELP_ASKED.store(false, Ordering::Release);
                continue;
            }
            let mut guard = SLEEPERS.lock.lock();
            SLEEPERS.count.fetch_add(1, Ordering::Relaxed);
            // Recheck under the lock so a wakeup between the failed pop and the wait is
            // not lost for long: the timer tick wakes a sleeper every 2.5 ms anyway.
            if !QUIT.load(Ordering::Acquire) && context::scheduled().is_empty() {
                SLEEPERS.cond.wait(&mut guard);
            }
            SLEEPERS.count.fetch_sub(1, Ordering::Relaxed);
            drop(guard);
            HELP_ASKED.store(false, Ordering::Release);
        }
    }
}

fn timer_thread() {
    while context::total() > 0 {
        timer::update(command::fire);
        wakeup_any();
        if SIGHUP.swap(false, Ordering::Relaxed) {
            crate::cservice::logger::reopen_signal();
        }
        thread::sleep(Duration::from_micros(2500));
    }
    crate::socket::exit();
    QUIT.store(true, Ordering::Release);
    let _guard = SLEEPERS.lock.lock();
    SLEEPERS.cond.notify_all();
}

fn monitor_thread(monitors: Vec<Arc<Monitor>>) {
    while context::total() > 0 {
        for m in &monitors {
            m.check();
        }
        for _ in 0..5 {
            if context::total() == 0 {
                return;
            }
            thread::sleep(Duration::from_secs(1));
        }
    }
}

/// Runs the node until every service is gone.
pub fn run(threads: usize) {
    WORKERS.store(threads as u32, Ordering::Relaxed);
    let monitors: Vec<Arc<Monitor>> = (0..threads).map(|_| Arc::default()).collect();
    let mut joins = Vec::new();
    let ms = monitors.clone();
    joins.push(
        thread::Builder::new()
            .name("monitor".into())
            .spawn(move || monitor_thread(ms)),
    );
    joins.push(
        thread::Builder::new()
            .name("timer".into())
            .spawn(timer_thread),
    );
    for (i, m) in monitors.into_iter().enumerate() {
        let weight = WEIGHTS.get(i).copied().unwrap_or(0);
        joins.push(
            thread::Builder::new()
                .name(format!("worker{i}"))
                .spawn(move || worker(m, weight)),
        );
    }
    for j in joins {
        match j {
            Ok(h) => {
                let _ = h.join();
            }
            Err(e) => eprintln!("can't start thread: {e}"),
        }
    }
}
