//! The timer: skynet time (1/100 s ticks) and timeouts.
//!
//! `now` starts at the centisecond fraction of the wall clock at boot and then follows a
//! monotonic clock; the timer thread calls [`update`] every 2.5 ms and fires every tick
//! it has caught up on. Timeouts due within 256 ticks sit in a ring of per-tick slots
//! (appended in registration order, which is the delivery order); later ones wait in a
//! heap and move into the ring once they come within range ([`Wheel`]).
//!
//! The timer knows handles and sessions, not services: whoever advances it is handed
//! each due `(handle, session)` and turns it into a message (the scheduler sends a
//! PTYPE_RESPONSE from source 0).

use parking_lot::Mutex;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const NEAR: u64 = 256;
const TICK_NS: u64 = 10_000_000;

/// A timeout: who gets it and with which session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expired {
    pub handle: u32,
    pub session: i32,
}

/// Pending timeouts by tick: a ring for the next 256 ticks, a heap beyond.
pub struct Wheel {
    tick: u64,
    near: Vec<Vec<Expired>>,
    /// (expire tick, registration order, event)
    far: BinaryHeap<Reverse<(u64, u64, Expired)>>,
    order: u64,
}

impl Default for Wheel {
    fn default() -> Self {
        Self::new()
    }
}

impl Wheel {
    pub fn new() -> Wheel {
        Wheel {
            tick: 0,
            near: (0..NEAR).map(|_| Vec::new()).collect(),
            far: BinaryHeap::new(),
            order: 0,
        }
    }

    /// Registers `ev` to expire `ticks` (> 0) ticks from now.
    pub fn add(&mut self, ev: Expired, ticks: u64) {
        let expire = self.tick + ticks;
        if expire < self.tick + NEAR {
            self.near[(expire % NEAR) as usize].push(ev);
        } else {
            self.order += 1;
            self.far.push(Reverse((expire, self.order, ev)));
        }
    }

    /// Moves one tick on and returns what expired at it, in registration order.
    pub fn advance(&mut self) -> Vec<Expired> {
        self.tick += 1;
        let tick = self.tick;
        // Pull far timeouts into the ring before anything new is registered for their
        // slots, so delivery keeps registration order.
        while let Some(Reverse((expire, _, _))) = self.far.peek() {
            if *expire >= tick + NEAR {
                break;
            }
            if let Some(Reverse((expire, _, ev))) = self.far.pop() {
                self.near[(expire % NEAR) as usize].push(ev);
            }
        }
        std::mem::take(&mut self.near[(tick % NEAR) as usize])
    }
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

static WHEEL: LazyLock<Mutex<Wheel>> = LazyLock::new(|| Mutex::new(Wheel::new()));

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

/// Arms a timeout of `ticks` centiseconds for `handle`/`session`. Returns the timeout
/// back when it is due at once (`ticks <= 0`): the caller delivers it.
pub fn timeout(handle: u32, session: i32, ticks: i64) -> Option<Expired> {
    let ev = Expired { handle, session };
    if ticks <= 0 {
        return Some(ev);
    }
    WHEEL.lock().add(ev, ticks as u64);
    None
}

/// Advances skynet time to the monotonic clock, handing `fire` every timeout of every
/// tick passed.
pub fn update(mut fire: impl FnMut(Expired)) {
    let now_ns = hpc();
    let last = CLOCK.last_ns.load(Ordering::Relaxed);
    if now_ns < last {
        return;
    }
    let ticks = (now_ns - last) / TICK_NS;
    if ticks == 0 {
        return;
    }
    CLOCK
        .last_ns
        .store(last + ticks * TICK_NS, Ordering::Relaxed);
    for _ in 0..ticks {
        NOW.fetch_add(1, Ordering::Relaxed);
        let due = WHEEL.lock().advance();
        for ev in due {
            fire(ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(session: i32) -> Expired {
        Expired { handle: 1, session }
    }

    /// Runs the wheel `ticks` ticks and returns (tick, session) of everything fired.
    fn run(w: &mut Wheel, ticks: u64) -> Vec<(u64, i32)> {
        let mut fired = Vec::new();
        for t in 1..=ticks {
            fired.extend(w.advance().into_iter().map(|e| (t, e.session)));
        }
        fired
    }

    #[test]
    fn timeouts_fire_at_their_tick_in_order() {
        let mut w = Wheel::new();
        w.add(ev(1), 5);
        w.add(ev(2), 1);
        w.add(ev(3), 300);
        w.add(ev(4), 5);
        assert_eq!(run(&mut w, 400), vec![(1, 2), (5, 1), (5, 4), (300, 3)]);
    }

    #[test]
    fn same_tick_keeps_registration_order_across_the_ring_and_heap() {
        let mut w = Wheel::new();
        // Registered first, far away: it lands in the heap.
        w.add(ev(1), 600);
        // 400 ticks on, the same expiry is near: it goes straight into the ring. The
        // heap entry must move into the ring before it, as it was registered first.
        let mut fired = run(&mut w, 400);
        w.add(ev(2), 200);
        w.add(ev(3), 200);
        fired.extend(run(&mut w, 300).into_iter().map(|(t, s)| (t + 400, s)));
        assert_eq!(fired, vec![(600, 1), (600, 2), (600, 3)]);
    }

    #[test]
    fn long_timeouts_cross_the_ring_boundary() {
        let mut w = Wheel::new();
        for (i, ticks) in [255u64, 256, 257, 511, 512, 100_000].iter().enumerate() {
            w.add(ev(i as i32), *ticks);
        }
        let fired = run(&mut w, 100_000);
        assert_eq!(
            fired,
            vec![
                (255, 0),
                (256, 1),
                (257, 2),
                (511, 3),
                (512, 4),
                (100_000, 5)
            ]
        );
    }

    #[test]
    fn a_due_timeout_comes_back_to_the_caller() {
        assert_eq!(
            timeout(9, 3, 0),
            Some(Expired {
                handle: 9,
                session: 3
            })
        );
        assert_eq!(
            timeout(9, 4, -5),
            Some(Expired {
                handle: 9,
                session: 4
            })
        );
    }

    #[test]
    fn now_and_starttime_follow_the_clocks() {
        init();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        assert!(start_time() <= wall && wall - start_time() < 3600);
        let before = now();
        assert!(
            before < 100,
            "now starts at the centisecond fraction: {before}"
        );
        let a = hpc();
        let b = hpc();
        assert!(b >= a && a > 0);
    }
}
