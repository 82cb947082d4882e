//! The `logger` service: writes every PTYPE_TEXT line it gets as
//! `[:source] text`, to stdout, or to a file with a local-time stamp in front. SIGHUP
//! (a PTYPE_SYSTEM message from the core) reopens the file for log rotation.

use crate::context::{self, Context, InitFailed, Service};
use crate::message::{Message, Payload, PTYPE_SYSTEM, PTYPE_TEXT};
use crate::timer;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::Arc;

enum Sink {
    Stdout,
    File { path: String, file: File },
}

pub struct Logger {
    sink: Sink,
}

fn open(path: &str) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

pub fn create(_ctx: &Arc<Context>, param: Option<&str>) -> Result<Box<dyn Service>, InitFailed> {
    let sink = match param {
        Some(path) if !path.is_empty() => match open(path) {
            Ok(file) => Sink::File {
                path: path.to_owned(),
                file,
            },
            Err(_) => return Err(InitFailed),
        },
        _ => Sink::Stdout,
    };
    Ok(Box::new(Logger { sink }))
}

/// `dd/mm/yy HH:MM:SS.cc ` in local time, from skynet time.
fn timestamp() -> String {
    let now = timer::now();
    let t = (timer::start_time() + now / 100) as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is thread-safe.
    unsafe { libc::localtime_r(&t, &mut tm) };
    format!(
        "{:02}/{:02}/{:02} {:02}:{:02}:{:02}.{:02} ",
        tm.tm_mday,
        tm.tm_mon + 1,
        tm.tm_year % 100,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now % 100
    )
}

fn write_line(out: &mut dyn Write, stamp: Option<String>, source: u32, text: &[u8]) {
    let mut line = Vec::with_capacity(text.len() + 32);
    if let Some(s) = stamp {
        line.extend_from_slice(s.as_bytes());
    }
    line.extend_from_slice(format!("[:{source:08x}] ").as_bytes());
    line.extend_from_slice(text);
    line.push(b'\n');
    let _ = out.write_all(&line);
    let _ = out.flush();
}

impl Service for Logger {
    fn dispatch(&mut self, _ctx: &Arc<Context>, msg: Message) {
        match msg.ptype() {
            PTYPE_TEXT => match &mut self.sink {
                Sink::Stdout => write_line(&mut io::stdout().lock(), None, msg.source, msg.bytes()),
                Sink::File { file, .. } => {
                    write_line(file, Some(timestamp()), msg.source, msg.bytes())
                }
            },
            PTYPE_SYSTEM => {
                if let Sink::File { path, file } = &mut self.sink {
                    if let Ok(f) = open(path) {
                        *file = f;
                    }
                }
            }
            _ => {}
        }
    }
}

/// SIGHUP: asks the logger service to reopen its file.
pub fn reopen_signal() {
    let logger = context::handles().find_name(b"logger");
    if logger != 0 {
        context::deliver(logger, Message::new(0, 0, PTYPE_SYSTEM, Payload::NULL));
    }
}
