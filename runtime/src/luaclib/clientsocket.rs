//! `client.socket`: the blocking TCP helpers upstream's example clients use from a plain
//! Lua interpreter (`skynet lua`), plus `readstdin`, fed by a thread that reads stdin
//! lines into a queue from the moment the module loads. Stdin reaching its end ends the
//! process with status 1, as upstream's does.

use crate::lua::raise::{arg_bytes, arg_integer, lua_fn, raise, try_push_bytes, Lossy, Raise};
use crate::lua::stack::{self as lua, push_bytes, CFunction};
use mlua::ffi::{self, lua_State};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::ffi::{c_int, CStr};
use std::io::BufRead;
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::IntoRawFd;
use std::sync::{LazyLock, Once};

static STDIN_LINES: LazyLock<Mutex<VecDeque<Vec<u8>>>> = LazyLock::new(Default::default);
static STDIN_READER: Once = Once::new();

fn start_stdin_reader() {
    STDIN_READER.call_once(|| {
        let _ = std::thread::Builder::new().name("stdin".into()).spawn(|| {
            let stdin = std::io::stdin();
            let mut lock = stdin.lock();
            loop {
                let mut line = Vec::new();
                match lock.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => std::process::exit(1),
                    Ok(_) => {
                        line.pop();
                        STDIN_LINES.lock().push_back(line);
                    }
                }
            }
        });
    });
}

/// The OS's text for the last error, without Rust's " (os error N)" suffix.
struct OsErrorText(std::io::Error);

impl std::fmt::Display for OsErrorText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.to_string();
        f.write_str(text.find(" (os error").map_or(&text, |i| &text[..i]))
    }
}

unsafe fn connect(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: argument reads of a live stack; the descriptor goes to the script.
    unsafe {
        let ip = arg_bytes(l, 1)?;
        let port = arg_integer(l, 2)?;
        let addr = std::str::from_utf8(ip)
            .ok()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
            .zip(u16::try_from(port).ok());
        let stream = addr.and_then(|(a, p)| TcpStream::connect((a, p)).ok());
        let Some(stream) = stream.filter(|s| s.set_nonblocking(true).is_ok()) else {
            return Err(raise!("Connect {} {port} failed", Lossy(ip)));
        };
        ffi::lua_pushinteger(l, stream.into_raw_fd() as ffi::lua_Integer);
    }
    Ok(1)
}

unsafe fn recv(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: reading into a stack buffer from a descriptor the script owns.
    unsafe {
        let fd = arg_integer(l, 1)? as c_int;
        let mut buf = [0u8; 4096];
        let n = libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0);
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                return Ok(0);
            }
            return Err(raise!("socket error: {}", OsErrorText(err)));
        }
        push_bytes(l, &buf[..n as usize]);
    }
    Ok(1)
}

unsafe fn send(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: writing from a Lua string that stays on the stack during the loop.
    unsafe {
        let fd = arg_integer(l, 1)? as c_int;
        let mut rest = arg_bytes(l, 2)?;
        while !rest.is_empty() {
            let n = libc::send(
                fd,
                rest.as_ptr() as *const libc::c_void,
                rest.len(),
                libc::MSG_NOSIGNAL,
            );
            if n < 0 {
                let err = std::io::Error::last_os_error();
                if matches!(err.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
                    continue;
                }
                return Err(raise!("socket error: {}", OsErrorText(err)));
            }
            rest = &rest[n as usize..];
        }
    }
    Ok(0)
}

unsafe extern "C-unwind" fn close(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned; then closing a
    // descriptor the script owns.
    unsafe {
        let fd = ffi::luaL_checkinteger(l, 1) as c_int;
        libc::close(fd);
    }
    0
}

unsafe fn shutdown(l: *mut lua_State) -> Result<c_int, Raise> {
    // SAFETY: argument reads, then shutdown on the script's descriptor.
    unsafe {
        let fd = arg_integer(l, 1)? as c_int;
        let mode = arg_bytes(l, 2)?;
        let (mut read, mut write) = (false, false);
        for &c in mode {
            match c {
                b'r' => read = true,
                b'w' => write = true,
                other => return Err(raise!("Invalid mode {}", other as char)),
            }
        }
        let how = match (read, write) {
            (true, true) => libc::SHUT_RDWR,
            (true, false) => libc::SHUT_RD,
            (false, true) => libc::SHUT_WR,
            (false, false) => return Err(raise!("mode should be r or/and w")),
        };
        libc::shutdown(fd, how);
        println!("SHUTDOWN {fd} {how}");
    }
    Ok(0)
}

unsafe extern "C-unwind" fn usleep(l: *mut lua_State) -> c_int {
    // SAFETY: the argument check raises before anything is owned.
    let us = unsafe { ffi::luaL_checkinteger(l, 1) };
    std::thread::sleep(std::time::Duration::from_micros(us.max(0) as u64));
    0
}

unsafe fn readstdin(l: *mut lua_State) -> Result<c_int, Raise> {
    let line = STDIN_LINES.lock().pop_front();
    match line {
        Some(line) => {
            // SAFETY: the line is owned here, so it is pushed without raising.
            unsafe { try_push_bytes(l, &line) }?;
            Ok(1)
        }
        None => Ok(0),
    }
}

/// `require "client.socket"`.
///
/// # Safety
/// Called by Lua only (a `lua_CFunction`).
pub unsafe extern "C-unwind" fn open(l: *mut lua_State) -> c_int {
    start_stdin_reader();
    // SAFETY: stack work on a live state.
    unsafe {
        lua::new_lib(l, &SOCKET_FUNCTIONS);
        ffi::lua_pushcfunction(l, lua_fn!(readstdin));
        ffi::lua_setfield(l, -2, c"readstdin".as_ptr());
    }
    1
}

/// The module's functions but `readstdin`, which needs the stdin reader `open` starts.
const SOCKET_FUNCTIONS: [(&CStr, CFunction); 6] = [
    (c"connect", lua_fn!(connect)),
    (c"recv", lua_fn!(recv)),
    (c"send", lua_fn!(send)),
    (c"close", close),
    (c"shutdown", lua_fn!(shutdown)),
    (c"usleep", usleep),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::testvm::{TestVm, CHECKS};
    use crate::memory;

    /// The memory slot this test charges its thread's allocations to.
    const HANDLE: u32 = 0xc5;

    unsafe extern "C-unwind" fn heap(l: *mut lua_State) -> c_int {
        // SAFETY: one push.
        unsafe { ffi::lua_pushinteger(l, memory::of(HANDLE)) };
        1
    }

    /// Every error of `client.socket`, 100,000 times each, leaves the Rust heap this
    /// thread allocated where it was. (The module's `open` is not called: it starts the
    /// stdin reader, which ends the process when stdin is closed.)
    #[test]
    fn raises_leak_nothing() {
        let mut globals: Vec<(&CStr, CFunction)> = vec![(c"heap", heap)];
        globals.extend(SOCKET_FUNCTIONS);
        let vm = TestVm::new(CHECKS, &globals);
        memory::set_current(HANDLE);
        let result = vm.run(
            r#"
            local function invoke(f, ...) f(...) end
            local kinds = {
              { 'Connect x 1 failed', connect, 'x', 1 },
              { 'string expected', connect, {}, 1 },
              { 'number expected', connect, '1.2.3.4', 'x' },
              { 'number expected', recv, 'x' },
              { 'socket error: Bad file descriptor', recv, -1 },
              { 'socket error: Bad file descriptor', send, -1, 'x' },
              { 'string expected', send, -1, {} },
              { 'number expected', close, 'x' },
              { 'Invalid mode x', shutdown, -1, 'x' },
              { 'mode should be r or/and w', shutdown, -1, '' },
              { 'number expected', shutdown, 'x', 'r' },
              { 'number expected', usleep, 'x' },
            }
            for _, k in ipairs(kinds) do
              fails(k[1], invoke, k[2], k[3], k[4])
              collectgarbage()
              local before = heap()
              for _ = 1, 100000 do
                pcall(invoke, k[2], k[3], k[4])
              end
              collectgarbage()
              eq(before, heap(), k[1] .. ': bytes charged')
            end
            "#,
        );
        memory::set_current(0);
        if let Err(e) = result {
            panic!("Lua failed: {e}");
        }
    }
}
