//! Message queues: one FIFO per service and the global run queue of services that have
//! messages.
//!
//! A service queue is either *idle* (not in the global queue) or *scheduled* (in the
//! global queue, or held by the worker dispatching it); `in_global` says which. A push
//! onto an idle queue schedules it; a pop that finds it empty makes it idle again. That
//! invariant is what guarantees a service is never dispatched by two workers at once.

use crate::context::Context;
use crate::message::Message;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::{Arc, LazyLock};

const OVERLOAD_THRESHOLD: usize = 1024;
const INITIAL_CAPACITY: usize = 64;

struct State {
    messages: VecDeque<Message>,
    in_global: bool,
    retired: bool,
    released: bool,
    overload_threshold: usize,
}

pub struct ServiceQueue {
    state: Mutex<State>,
}

/// What a push did.
pub enum Pushed {
    /// Queued; `true` when the queue must now be put on the global queue.
    Queued(bool),
    /// The service is gone; the message comes back to be bounced.
    Released(Message),
}

/// What a pop found.
pub enum Popped {
    /// A message, how many are still queued, and the queue length to report when this
    /// pop crossed the overload threshold.
    Message(Message, usize, Option<usize>),
    Empty,
    Retired,
}

impl ServiceQueue {
    /// A new queue, already marked scheduled so messages sent while its service starts
    /// wait until the start succeeded.
    pub fn new() -> ServiceQueue {
        ServiceQueue {
            state: Mutex::new(State {
                messages: VecDeque::with_capacity(INITIAL_CAPACITY),
                in_global: true,
                retired: false,
                released: false,
                overload_threshold: OVERLOAD_THRESHOLD,
            }),
        }
    }

    pub fn push(&self, msg: Message) -> Pushed {
        let mut s = self.state.lock();
        if s.released {
            return Pushed::Released(msg);
        }
        s.messages.push_back(msg);
        if s.in_global {
            Pushed::Queued(false)
        } else {
            s.in_global = true;
            Pushed::Queued(true)
        }
    }

    /// Pops the next message with the number still queued after it. An empty queue
    /// becomes idle; a retired one reports it so the worker can release the service.
    pub fn pop(&self) -> Popped {
        let mut s = self.state.lock();
        if s.retired {
            return Popped::Retired;
        }
        match s.messages.pop_front() {
            Some(m) => {
                let left = s.messages.len();
                let mut overload = None;
                while left > s.overload_threshold {
                    overload = Some(left);
                    s.overload_threshold *= 2;
                }
                Popped::Message(m, left, overload)
            }
            None => {
                s.overload_threshold = OVERLOAD_THRESHOLD;
                s.in_global = false;
                Popped::Empty
            }
        }
    }

    /// Messages waiting (STAT mqlen).
    pub fn waiting(&self) -> usize {
        self.state.lock().messages.len()
    }

    /// Marks the queue retired; true when it was idle and must be scheduled so a worker
    /// releases the service.
    pub fn retire(&self) -> bool {
        let mut s = self.state.lock();
        s.retired = true;
        if s.in_global {
            false
        } else {
            s.in_global = true;
            true
        }
    }

    /// Ends the queue for good and hands back what was still in it.
    pub fn release(&self) -> VecDeque<Message> {
        let mut s = self.state.lock();
        s.released = true;
        std::mem::take(&mut s.messages)
    }
}

impl Default for ServiceQueue {
    fn default() -> Self {
        Self::new()
    }
}

static GLOBAL: LazyLock<Mutex<VecDeque<Arc<Context>>>> =
    LazyLock::new(|| Mutex::new(VecDeque::with_capacity(1024)));

pub fn global_push(ctx: Arc<Context>) {
    GLOBAL.lock().push_back(ctx);
}

pub fn global_pop() -> Option<Arc<Context>> {
    GLOBAL.lock().pop_front()
}

pub fn global_is_empty() -> bool {
    GLOBAL.lock().is_empty()
}
