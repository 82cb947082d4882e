//! Direct writes: a worker writes to a connected TCP socket itself when nothing is queued
//! for it (upstream's `socket_server_send` does the same), instead of handing the bytes
//! to the socket thread. A hand-off costs a channel push, a wake-up of the poll and a
//! write there: two thread switches in every request/response conversation.
//!
//! Each socket's [`Gate`] (in its [`super::Shared`]) decides who writes. Bytes of one
//! socket must reach the kernel in the order `send` was called, so a worker may write
//! only when every earlier send is already in the kernel: no send request is on its way
//! to the socket thread (`in_flight == 0`) and the socket thread holds no unwritten bytes
//! (`!backlog`). Both are changed only under the gate's lock:
//! - a worker that cannot write directly, or writes only part, queues the rest as a send
//!   request and counts it in `in_flight` before unlocking, so the next sender queues too;
//! - the socket thread takes a send request off `in_flight`, queues and flushes it, and
//!   records in `backlog` whether bytes are left, all under one lock; when a later flush
//!   empties its queues it clears `backlog`, again under the lock.
//!
//! The descriptor is published in the gate (`fd`) only while the socket thread keeps the
//! socket connected; it withdraws it under the lock before the socket stops being
//! writable or is closed, so a worker holding the lock writes to a live descriptor,
//! never to one the number was reused for.

use std::io;
use std::os::fd::RawFd;

/// Who may write to one socket (module doc).
pub(super) struct Gate {
    /// The connected stream's descriptor, or -1 while workers may not write to it.
    pub(super) fd: RawFd,
    /// Send requests queued for the socket thread and not yet taken by it.
    pub(super) in_flight: u32,
    /// The socket thread holds bytes not yet written.
    pub(super) backlog: bool,
    /// Bytes workers wrote here, and when last (netstat adds them to the thread's).
    pub(super) written: u64,
    pub(super) write_time: u64,
}

impl Default for Gate {
    fn default() -> Gate {
        Gate {
            fd: -1,
            in_flight: 0,
            backlog: false,
            written: 0,
            write_time: 0,
        }
    }
}

impl Gate {
    /// Writes what the kernel takes of `bytes` now, if this caller may write directly;
    /// returns how many bytes went (0 when it may not, or the kernel took none). An error
    /// writes nothing here: the socket thread meets it again when it writes the rest,
    /// and reports it as it reports any write error.
    pub(super) fn try_write(&mut self, bytes: &[u8], now: impl FnOnce() -> u64) -> usize {
        if self.fd < 0 || self.in_flight > 0 || self.backlog {
            return 0;
        }
        let n = write_some(self.fd, bytes).unwrap_or(0);
        if n > 0 {
            self.written += n as u64;
            self.write_time = now();
        }
        n
    }
}

/// One non-blocking `send(2)`, retried on EINTR; WouldBlock is 0 bytes.
fn write_some(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `bytes` is valid for `bytes.len()` readable bytes, all send(2) reads;
        // `fd` is a connected stream the socket thread keeps open while the caller holds
        // the gate (module doc). MSG_NOSIGNAL: a closed peer is an EPIPE, not a signal.
        let n = unsafe {
            libc::send(
                fd,
                bytes.as_ptr() as *const libc::c_void,
                bytes.len(),
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(0),
            _ => return Err(e),
        }
    }
}
