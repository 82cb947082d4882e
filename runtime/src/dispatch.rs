//! Dispatching: a worker takes a scheduled service, runs a batch of its messages through
//! its native instance ([`dispatch_batch`]) and puts it back in the run queue if more are
//! waiting. This is the hot path's far end: send -> queue -> here.

use crate::context::{self, Context};
use crate::message::Message;
use crate::mq::{Popped, PoppedMessage};
use crate::{logging, memory, timer};
use std::sync::Arc;

/// Records where the worker is, for endless-loop detection.
pub trait DispatchWatch {
    fn enter(&self, source: u32, dest: u32);
    fn leave(&self);
}

fn dispatch_one(ctx: &Arc<Context>, msg: Message, watch: &dyn DispatchWatch) {
    watch.enter(msg.source, ctx.handle);
    memory::set_current(ctx.handle);
    let mut service = ctx.service.lock();
    match service.as_mut() {
        Some(s) if s.has_callback() => {
            ctx.log_message(&msg);
            ctx.count_message();
            if context::profiling() {
                let start = timer::hpc();
                ctx.start_dispatch(start);
                s.dispatch(ctx, msg);
                ctx.add_cpu(timer::hpc().saturating_sub(start));
            } else {
                s.dispatch(ctx, msg);
            }
        }
        _ => context::discard(msg),
    }
    drop(service);
    memory::set_current(0);
    watch.leave();
}

/// Dispatches a batch of messages of one service (`weight` as in upstream's table) and
/// returns the service the worker should take next.
pub fn dispatch_batch(
    current: Option<Arc<Context>>,
    weight: i32,
    watch: &dyn DispatchWatch,
) -> Option<Arc<Context>> {
    let run_queue = context::scheduled();
    let ctx = match current {
        Some(c) => c,
        None => run_queue.pop()?,
    };
    let mut batch = 1usize;
    let mut i = 0;
    let mut drained = false;
    while i < batch {
        match ctx.queue.pop() {
            Popped::Message(PoppedMessage {
                message,
                left,
                overload,
            }) => {
                if i == 0 && weight >= 0 {
                    batch = (left >> weight).max(1);
                }
                drained = left == 0;
                if let Some(len) = overload {
                    logging::error(
                        ctx.handle,
                        format!("error: May overload, message queue length = {len}"),
                    );
                }
                dispatch_one(&ctx, message, watch);
            }
            Popped::Empty => return run_queue.pop(),
            Popped::Retired => {
                ctx.release();
                return run_queue.pop();
            }
        }
        i += 1;
    }
    // A service that exited is released by the worker that ran it, before the next
    // service runs (as upstream's last reference drop does): its __gc effects, such as
    // an stm writer emptying its slot, come before whatever was queued after it.
    if ctx.queue.is_retired() {
        ctx.release();
        return run_queue.pop();
    }
    if drained && ctx.queue.idle_if_empty() {
        return run_queue.pop();
    }
    match run_queue.pop() {
        Some(next) => {
            run_queue.push(ctx);
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
    if let Some(ctx) = context::grab(handle) {
        while let Popped::Message(m) = ctx.queue.pop() {
            dispatch_one(&ctx, m.message, &Nowhere);
        }
    }
}
