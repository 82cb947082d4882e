//! The log: every line goes to the logger service (local name `logger`) as a PTYPE_TEXT
//! message from the service that wrote it. Lines written before the logger exists are
//! dropped, as upstream. The `log` crate's macros land here too, with source 0.

use crate::context;
use crate::message::{Message, Payload, PTYPE_TEXT};
use std::sync::atomic::{AtomicU32, Ordering};

static LOGGER: AtomicU32 = AtomicU32::new(0);

fn logger() -> u32 {
    match LOGGER.load(Ordering::Relaxed) {
        0 => {
            let h = context::handles().find_name(b"logger");
            LOGGER.store(h, Ordering::Relaxed);
            h
        }
        h => h,
    }
}

/// Logs `text` from `source`.
pub fn error(source: u32, text: impl AsRef<[u8]>) {
    let logger = logger();
    if logger == 0 {
        return;
    }
    let msg = Message::new(source, 0, PTYPE_TEXT, Payload::copy_of(text.as_ref()));
    context::deliver(logger, msg);
}

/// Routes the `log` crate to the logger service.
struct LogBridge;

impl log::Log for LogBridge {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        error(0, record.args().to_string());
    }
    fn flush(&self) {}
}

static BRIDGE: LogBridge = LogBridge;

pub fn install_log_bridge() {
    if log::set_logger(&BRIDGE).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}
