//! The per-service message log (`LOGON`/`LOGOFF`): a file under `logpath` named after
//! the handle, with one line per dispatched message, as upstream's `skynet_log.c`:
//!
//! ```text
//! open time: <now> <ctime>
//! :<source> <type> <session> <now> <payload in hex>
//! [socket] <type> <id> <ud> <string in brackets, or data in hex>
//! close time: <now>
//! ```

use crate::message::{Message, PTYPE_SOCKET};
use crate::socket::record;
use crate::timer;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};

/// An open message log.
pub struct MessageLog {
    file: File,
}

impl MessageLog {
    /// Opens (appending) the log of `handle` in `dir`; returns it with its path.
    pub fn open(dir: &str, handle: u32) -> Result<(MessageLog, String), String> {
        let path = format!("{dir}/{handle:08x}.log");
        match OpenOptions::new().append(true).create(true).open(&path) {
            Ok(mut file) => {
                let now = timer::now();
                let wall = (timer::start_time() + now / 100) as libc::time_t;
                let _ = write!(file, "open time: {now} {}", ctime(wall));
                let _ = file.flush();
                Ok((MessageLog { file }, path))
            }
            Err(_) => Err(path),
        }
    }

    /// Appends one dispatched message.
    pub fn write(&mut self, msg: &Message) {
        let mut line = match socket_line(msg) {
            Some(l) => l,
            None => {
                let mut l = format!(
                    ":{:08x} {} {} {} ",
                    msg.source,
                    msg.ptype(),
                    msg.session,
                    timer::now()
                );
                push_hex(&mut l, msg.bytes());
                l
            }
        };
        line.push('\n');
        let _ = self.file.write_all(line.as_bytes());
        let _ = self.file.flush();
    }

    /// Writes the closing line; the file closes when the log drops.
    pub fn close(mut self) -> io::Result<()> {
        writeln!(self.file, "close time: {}", timer::now())
    }
}

/// `ctime(3)`: the C library's rendering, trailing newline included.
fn ctime(t: libc::time_t) -> String {
    let mut buf = [0 as libc::c_char; 64];
    // SAFETY: ctime_r writes at most 26 bytes into the 64-byte buffer and NUL-terminates.
    let p = unsafe { libc::ctime_r(&t, buf.as_mut_ptr()) };
    if p.is_null() {
        return "\n".to_owned();
    }
    // SAFETY: on success `buf` holds a NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn push_hex(line: &mut String, bytes: &[u8]) {
    use std::fmt::Write as _;
    for b in bytes {
        let _ = write!(line, "{b:02x}");
    }
}

/// `[socket] type id ud ` and the string or data of a socket event.
fn socket_line(msg: &Message) -> Option<String> {
    if msg.ptype() != PTYPE_SOCKET {
        return None;
    }
    let r = record::decode(msg.bytes())?;
    let mut line = format!("[socket] {} {} {} ", r.kind, r.id, r.ud);
    if r.buffer.is_null() {
        line.push('[');
        line.push_str(&String::from_utf8_lossy(r.text));
        line.push(']');
    } else {
        // SAFETY: the message being dispatched still owns its DATA/UDP buffer.
        push_hex(&mut line, unsafe { r.data() });
    }
    Some(line)
}
