//! Message queues: one FIFO per service ([`ServiceQueue`]) and the global run queue of
//! services that have messages ([`GlobalQueue`]).
//!
//! A service queue is either *idle* (not in the global queue) or *scheduled* (in the
//! global queue, or held by the worker dispatching it); `in_global` says which. A push
//! onto an idle queue schedules it; a pop that finds it empty makes it idle again. That
//! invariant is what guarantees a service is never dispatched by two workers at once.
//! The queues hold messages and whatever the core schedules; they know no service.

use crate::message::Message;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Queue length past which a pop reports an overload; it doubles after each report and
/// starts over when the queue empties, as upstream's.
pub const OVERLOAD_THRESHOLD: usize = 1024;
const INITIAL_CAPACITY: usize = 64;

struct State {
    messages: VecDeque<Message>,
    in_global: bool,
    released: bool,
    overload_threshold: usize,
}

pub struct ServiceQueue {
    state: Mutex<State>,
    /// Set once, under `state`'s lock (so pops and `in_global` see it in order), and
    /// read without it by the worker ending a batch.
    retired: AtomicBool,
}

/// What a push did.
pub enum Pushed {
    /// Queued; the queue was idle and must now be put on the global queue.
    Scheduled,
    /// Queued behind others; the queue is already scheduled.
    Queued,
    /// The service is gone; the message comes back to be bounced.
    Released(Message),
}

/// What a pop found.
pub enum Popped {
    Message(PoppedMessage),
    Empty,
    Retired,
}

/// A message and what the queue looked like when it left.
pub struct PoppedMessage {
    pub message: Message,
    /// Messages still queued behind it.
    pub left: usize,
    /// The queue length to report when this pop crossed the overload threshold.
    pub overload: Option<usize>,
}

impl ServiceQueue {
    /// A new queue, already marked scheduled so messages sent while its service starts
    /// wait until the start succeeded.
    pub fn new() -> ServiceQueue {
        ServiceQueue {
            state: Mutex::new(State {
                messages: VecDeque::with_capacity(INITIAL_CAPACITY),
                in_global: true,
                released: false,
                overload_threshold: OVERLOAD_THRESHOLD,
            }),
            retired: AtomicBool::new(false),
        }
    }

    pub fn push(&self, msg: Message) -> Pushed {
        let mut s = self.state.lock();
        if s.released {
            return Pushed::Released(msg);
        }
        s.messages.push_back(msg);
        if s.in_global {
            Pushed::Queued
        } else {
            s.in_global = true;
            Pushed::Scheduled
        }
    }

    /// Pops the next message. An empty queue becomes idle; a retired one reports it so
    /// the worker can release the service.
    pub fn pop(&self) -> Popped {
        let mut s = self.state.lock();
        if self.is_retired() {
            return Popped::Retired;
        }
        match s.messages.pop_front() {
            Some(message) => {
                let left = s.messages.len();
                let mut overload = None;
                while left > s.overload_threshold {
                    overload = Some(left);
                    s.overload_threshold *= 2;
                }
                if left == 0 {
                    shrink(&mut s.messages);
                }
                Popped::Message(PoppedMessage {
                    message,
                    left,
                    overload,
                })
            }
            None => {
                s.overload_threshold = OVERLOAD_THRESHOLD;
                s.in_global = false;
                Popped::Empty
            }
        }
    }

    /// Makes an empty queue idle, as a pop that finds it empty does; true if it was
    /// empty. Lets the worker that drained it leave it out of the run queue instead of
    /// putting it back only for the next pop to find nothing.
    pub fn idle_if_empty(&self) -> bool {
        let mut s = self.state.lock();
        if !s.messages.is_empty() || self.is_retired() {
            return false;
        }
        s.overload_threshold = OVERLOAD_THRESHOLD;
        s.in_global = false;
        true
    }

    /// Messages waiting (STAT mqlen).
    pub fn waiting(&self) -> usize {
        self.state.lock().messages.len()
    }

    /// Marks the queue retired; true when it was idle and must be scheduled so a worker
    /// releases the service.
    pub fn retire(&self) -> bool {
        let mut s = self.state.lock();
        self.retired.store(true, Ordering::Release);
        if s.in_global {
            false
        } else {
            s.in_global = true;
            true
        }
    }

    /// Whether the service was retired (it is released at the end of its batch).
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Ends the queue for good and hands back what was still in it.
    pub fn release(&self) -> VecDeque<Message> {
        let mut s = self.state.lock();
        s.released = true;
        std::mem::take(&mut s.messages)
    }
}

/// A queue that a flood grew gives its memory back once drained, keeping the usual size.
fn shrink(messages: &mut VecDeque<Message>) {
    if messages.capacity() > INITIAL_CAPACITY * 16 {
        messages.shrink_to(INITIAL_CAPACITY);
    }
}

impl Default for ServiceQueue {
    fn default() -> Self {
        Self::new()
    }
}

/// The run queue of scheduled services.
pub struct GlobalQueue<T> {
    queue: Mutex<VecDeque<T>>,
    /// The queue's length, readable without the lock (by a worker waiting for work).
    len: AtomicUsize,
}

impl<T> Default for GlobalQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> GlobalQueue<T> {
    pub fn new() -> GlobalQueue<T> {
        GlobalQueue {
            queue: Mutex::new(VecDeque::with_capacity(1024)),
            len: AtomicUsize::new(0),
        }
    }

    pub fn push(&self, item: T) {
        let mut q = self.queue.lock();
        q.push_back(item);
        self.len.store(q.len(), Ordering::Release);
    }

    pub fn pop(&self) -> Option<T> {
        let mut q = self.queue.lock();
        let item = q.pop_front();
        self.len.store(q.len(), Ordering::Release);
        item
    }

    /// Whether something is queued, without taking the lock: a hint that may be stale
    /// by the time the caller acts on it.
    pub fn has_work(&self) -> bool {
        self.len.load(Ordering::Acquire) > 0
    }

    pub fn is_empty(&self) -> bool {
        self.queue.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Payload, PTYPE_TEXT};

    fn msg(i: i32) -> Message {
        Message::new(0, i, PTYPE_TEXT, Payload::NULL)
    }

    fn pop(q: &ServiceQueue) -> PoppedMessage {
        match q.pop() {
            Popped::Message(m) => m,
            Popped::Empty => panic!("empty"),
            Popped::Retired => panic!("retired"),
        }
    }

    #[test]
    fn a_queue_is_scheduled_once_until_a_pop_finds_it_empty() {
        let q = ServiceQueue::new();
        // Born scheduled: pushes while the service starts do not schedule it again.
        assert!(matches!(q.push(msg(1)), Pushed::Queued));
        assert_eq!(pop(&q).message.session, 1);
        assert!(matches!(q.pop(), Popped::Empty));
        // Idle now: the first push schedules, the next ones do not.
        assert!(matches!(q.push(msg(2)), Pushed::Scheduled));
        assert!(matches!(q.push(msg(3)), Pushed::Queued));
        assert_eq!(pop(&q).message.session, 2);
        assert!(matches!(q.push(msg(4)), Pushed::Queued));
        assert_eq!(pop(&q).message.session, 3);
        assert_eq!(pop(&q).message.session, 4);
        assert!(matches!(q.pop(), Popped::Empty));
        assert!(matches!(q.pop(), Popped::Empty));
        assert!(matches!(q.push(msg(5)), Pushed::Scheduled));
    }

    #[test]
    fn a_drained_queue_goes_idle_without_another_pop() {
        let q = ServiceQueue::new();
        assert!(matches!(q.push(msg(1)), Pushed::Queued));
        assert!(!q.idle_if_empty(), "a message is waiting");
        assert_eq!(pop(&q).message.session, 1);
        assert!(q.idle_if_empty());
        // Idle: the next push schedules it again.
        assert!(matches!(q.push(msg(2)), Pushed::Scheduled));
        let retired = ServiceQueue::new();
        let _ = retired.retire();
        assert!(
            !retired.idle_if_empty(),
            "a retired queue stays for its release"
        );
        assert!(retired.is_retired());
    }

    #[test]
    fn never_in_the_global_queue_twice_under_concurrent_pushes() {
        let q = std::sync::Arc::new(ServiceQueue::new());
        let _ = q.pop(); // idle
        let scheduled = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..4 {
                let q = &q;
                let scheduled = &scheduled;
                s.spawn(move || {
                    for i in 0..10_000 {
                        if let Pushed::Scheduled = q.push(msg(t * 10_000 + i)) {
                            scheduled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(scheduled.into_inner(), 1);
        assert_eq!(q.waiting(), 40_000);
    }

    #[test]
    fn the_overload_warning_doubles_and_resets_when_empty() {
        let q = ServiceQueue::new();
        let mut reports = Vec::new();
        let fill_and_drain = |n: i32, reports: &mut Vec<usize>| {
            for i in 0..n {
                let _ = q.push(msg(i));
            }
            while let Popped::Message(m) = q.pop() {
                if let Some(len) = m.overload {
                    reports.push(len);
                }
            }
        };
        // 1025 queued: the first pop leaves 1024, which is not above the threshold.
        fill_and_drain(1025, &mut reports);
        assert!(reports.is_empty());
        // 5000 queued: reports at 4999 (above 1024, then 2048, then 4096 at once).
        fill_and_drain(5000, &mut reports);
        assert_eq!(reports, vec![4999]);
        reports.clear();
        // Emptied, so the threshold is back at 1024.
        fill_and_drain(1026, &mut reports);
        assert_eq!(reports, vec![1025]);
        reports.clear();
        // Growing while being drained: reports at 1025, then past 2048, then past 4096.
        for i in 0..1026 {
            let _ = q.push(msg(i));
        }
        let mut seen = Vec::new();
        for round in 0..3 {
            let more = [0, 2048, 4096][round];
            for i in 0..more {
                let _ = q.push(msg(i));
            }
            if let Popped::Message(m) = q.pop() {
                seen.extend(m.overload);
            }
        }
        assert_eq!(seen, vec![1025, 3072, 7167]);
    }

    #[test]
    fn a_retired_queue_reports_it_and_a_released_one_bounces() {
        let q = ServiceQueue::new();
        let _ = q.pop();
        assert!(q.retire());
        assert!(matches!(q.pop(), Popped::Retired));
        let _ = q.push(msg(1));
        let left = q.release();
        assert_eq!(left.len(), 1);
        assert!(matches!(q.push(msg(2)), Pushed::Released(m) if m.session == 2));
    }

    #[test]
    fn a_drained_flood_gives_its_memory_back() {
        let q = ServiceQueue::new();
        for i in 0..100_000 {
            let _ = q.push(msg(i));
        }
        while let Popped::Message(_) = q.pop() {}
        assert!(q.state.lock().messages.capacity() < 1024);
    }
}
