//! `client.socket`: the blocking TCP helpers upstream's example clients use from a plain
//! Lua interpreter (`skynet lua`), plus `readstdin`, fed by a thread that reads stdin
//! lines into a queue from the moment the module loads. Stdin reaching its end ends the
//! process with status 1, as upstream's does.

use crate::lua::stack::{self as lua, push_bytes, raise};
use mlua::ffi::{self, lua_State};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::ffi::c_int;
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

fn os_error_text() -> String {
    let e = std::io::Error::last_os_error().to_string();
    match e.find(" (os error") {
        Some(i) => e[..i].to_owned(),
        None => e,
    }
}

unsafe extern "C-unwind" fn connect(l: *mut lua_State) -> c_int {
    // SAFETY: argument checks raise first; owned strings are dropped before raising.
    unsafe {
        let ip = String::from_utf8_lossy(lua::check_bytes(l, 1)).into_owned();
        let port = ffi::luaL_checkinteger(l, 2);
        let addr = ip.parse::<Ipv4Addr>().ok().zip(u16::try_from(port).ok());
        let stream = addr.and_then(|(a, p)| TcpStream::connect((a, p)).ok());
        let Some(stream) = stream.filter(|s| s.set_nonblocking(true).is_ok()) else {
            let msg = format!("Connect {ip} {port} failed");
            drop(ip);
            raise(l, msg)
        };
        ffi::lua_pushinteger(l, stream.into_raw_fd() as ffi::lua_Integer);
    }
    1
}

unsafe extern "C-unwind" fn recv(l: *mut lua_State) -> c_int {
    // SAFETY: reading into a stack buffer from a descriptor the script owns.
    unsafe {
        let fd = ffi::luaL_checkinteger(l, 1) as c_int;
        let mut buf = [0u8; 4096];
        let n = libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0);
        if n < 0 {
            let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            if err == libc::EAGAIN || err == libc::EINTR {
                return 0;
            }
            raise(l, format!("socket error: {}", os_error_text()));
        }
        push_bytes(l, &buf[..n as usize]);
    }
    1
}

unsafe extern "C-unwind" fn send(l: *mut lua_State) -> c_int {
    // SAFETY: writing from a Lua string that stays on the stack during the loop.
    unsafe {
        let fd = ffi::luaL_checkinteger(l, 1) as c_int;
        let mut rest = lua::check_bytes(l, 2);
        while !rest.is_empty() {
            let n = libc::send(
                fd,
                rest.as_ptr() as *const libc::c_void,
                rest.len(),
                libc::MSG_NOSIGNAL,
            );
            if n < 0 {
                let err = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                if err == libc::EAGAIN || err == libc::EINTR {
                    continue;
                }
                raise(l, format!("socket error: {}", os_error_text()));
            }
            rest = &rest[n as usize..];
        }
    }
    0
}

unsafe extern "C-unwind" fn close(l: *mut lua_State) -> c_int {
    // SAFETY: closing a descriptor the script owns.
    unsafe {
        let fd = ffi::luaL_checkinteger(l, 1) as c_int;
        libc::close(fd);
    }
    0
}

unsafe extern "C-unwind" fn shutdown(l: *mut lua_State) -> c_int {
    // SAFETY: argument checks, then shutdown on the script's descriptor.
    unsafe {
        let fd = ffi::luaL_checkinteger(l, 1) as c_int;
        let mode = lua::check_bytes(l, 2);
        let (mut read, mut write) = (false, false);
        for &c in mode {
            match c {
                b'r' => read = true,
                b'w' => write = true,
                other => raise(l, format!("Invalid mode {}", other as char)),
            }
        }
        let how = match (read, write) {
            (true, true) => libc::SHUT_RDWR,
            (true, false) => libc::SHUT_RD,
            (false, true) => libc::SHUT_WR,
            (false, false) => raise(l, "mode should be r or/and w".to_owned()),
        };
        libc::shutdown(fd, how);
        println!("SHUTDOWN {fd} {how}");
    }
    0
}

unsafe extern "C-unwind" fn usleep(l: *mut lua_State) -> c_int {
    // SAFETY: argument check only.
    let us = unsafe { ffi::luaL_checkinteger(l, 1) };
    std::thread::sleep(std::time::Duration::from_micros(us.max(0) as u64));
    0
}

unsafe extern "C-unwind" fn readstdin(l: *mut lua_State) -> c_int {
    let line = STDIN_LINES.lock().pop_front();
    match line {
        Some(line) => {
            // SAFETY: one push.
            unsafe { push_bytes(l, &line) };
            1
        }
        None => 0,
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
        lua::new_lib(
            l,
            &[
                (c"connect", connect),
                (c"recv", recv),
                (c"send", send),
                (c"close", close),
                (c"shutdown", shutdown),
                (c"usleep", usleep),
                (c"readstdin", readstdin),
            ],
        )
    };
    1
}
