//! The timer: skynet time (1/100 s ticks) and timeouts.
//!
//! `now` starts at the centisecond fraction of the wall clock at boot and then follows a
//! monotonic clock; the timer thread calls [`update`] every 2.5 ms and fires every tick
//! it has caught up on. Timeouts due within 256 ticks sit in a ring of per-tick slots
//! (appended in registration order, which is the delivery order); later ones wait in a
//! heap and move into the ring once they come within range. A timeout fires as a
//! PTYPE_RESPONSE with source 0 and the session `TIMEOUT` returned.

use crate::context;
use crate::message::{Payload, PTYPE_RESPONSE};
use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const NEAR: u64 = 256;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    handle: u32,
    session: i32,
}

struct Wheel {
    tick: u64,
    near: Vec<Vec<Event>>,
    /// (expire tick, registration order, event)
    far: BinaryHeap<Reverse<(u64, u64, Event)>>,
    order: u64,
}

struct Clock {
    origin: Instant,
    start_time: u64,
    /// hpc nanoseconds of the last tick boundary
    last_ns: AtomicU64,
}

static CLOCK: LazyLock<Clock> = LazyLock::new(|| {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Clock {
        origin: Instant::now(),
        start_time: wall.as_secs(),
        last_ns: AtomicU64::new(0),
    }
});

/// Centiseconds since the clock origin, offset by the wall clock fraction at boot.
static NOW: AtomicU64 = AtomicU64::new(0);

static WHEEL: LazyLock<Mutex<Wheel>> = LazyLock::new(|| {
    Mutex::new(Wheel {
        tick: 0,
        near: (0..NEAR).map(|_| Vec::new()).collect(),
        far: BinaryHeap::new(),
        order: 0,
    })
});

/// Starts the clocks; call once before any service runs.
pub fn init() {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    LazyLock::force(&CLOCK);
    NOW.store((wall.subsec_millis() / 10) as u64, Ordering::Relaxed);
}

/// Monotonic nanoseconds.
pub fn hpc() -> u64 {
    CLOCK.origin.elapsed().as_nanos() as u64 + 1
}

/// skynet time in centiseconds.
pub fn now() -> u64 {
    NOW.load(Ordering::Relaxed)
}

/// Unix seconds at boot.
pub fn start_time() -> u64 {
    CLOCK.start_time
}

/// Arms a timeout of `ticks` centiseconds for `handle`/`session`.
pub fn timeout(handle: u32, session: i32, ticks: i64) {
    if ticks <= 0 {
        fire(Event { handle, session });
        return;
    }
    let mut w = WHEEL.lock();
    let expire = w.tick + ticks as u64;
    let ev = Event { handle, session };
    if expire < w.tick + NEAR {
        w.near[(expire % NEAR) as usize].push(ev);
    } else {
        w.order += 1;
        let order = w.order;
        w.far.push(Reverse((expire, order, ev)));
    }
}

fn fire(ev: Event) {
    // A timeout for a service that died is dropped silently.
    context::send_raw(0, ev.handle, PTYPE_RESPONSE, ev.session, Payload::NULL, 0);
}

/// Advances skynet time to the monotonic clock, firing every tick passed.
pub fn update() {
    let now_ns = hpc();
    let last = CLOCK.last_ns.load(Ordering::Relaxed);
    if now_ns < last {
        return;
    }
    let ticks = (now_ns - last) / 10_000_000;
    if ticks == 0 {
        return;
    }
    CLOCK
        .last_ns
        .store(last + ticks * 10_000_000, Ordering::Relaxed);
    for _ in 0..ticks {
        NOW.fetch_add(1, Ordering::Relaxed);
        tick();
    }
}

fn tick() {
    let due = {
        let mut w = WHEEL.lock();
        w.tick += 1;
        let tick = w.tick;
        // Pull far timeouts into the ring before anything new is registered for their
        // slots, so delivery keeps registration order.
        while let Some(Reverse((expire, _, _))) = w.far.peek() {
            if *expire >= tick + NEAR {
                break;
            }
            if let Some(Reverse((expire, _, ev))) = w.far.pop() {
                w.near[(expire % NEAR) as usize].push(ev);
            }
        }
        std::mem::take(&mut w.near[(tick % NEAR) as usize])
    };
    for ev in due {
        fire(ev);
    }
}
