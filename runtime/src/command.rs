//! The text commands services send to the core (`skynet.core.command` and friends):
//! TIMEOUT, REG, QUERY, NAME, EXIT, KILL, LAUNCH, GETENV, SETENV, STARTTIME, ABORT,
//! MONITOR, STAT, LOGON, LOGOFF, SIGNAL. Results and log texts are upstream's.

use crate::context::{self, Context};
use crate::message::{Message, Payload, PTYPE_CLIENT};
use crate::{env, handle, logging, timer};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};

/// The service told about every exit (MONITOR).
static EXIT_MONITOR: AtomicU32 = AtomicU32::new(0);

/// Runs `cmd` for `ctx`; `None` is "no result".
pub fn run(ctx: &Context, cmd: &str, param: Option<&str>) -> Option<String> {
    let p = param.unwrap_or("");
    match cmd {
        "TIMEOUT" => Some(timeout(ctx, p)),
        "REG" => reg(ctx, p),
        "QUERY" => query(p),
        "NAME" => name(ctx, p),
        "EXIT" => {
            exit(ctx, 0);
            None
        }
        "KILL" => {
            match context::query_name(ctx.handle, p) {
                0 => logging::error(ctx.handle, format!("error: Can't convert {p} to handle")),
                h => exit(ctx, h),
            }
            None
        }
        "LAUNCH" => launch(p),
        "GETENV" => env::get(p),
        "SETENV" => {
            if let Some((k, v)) = p.split_once(' ') {
                env::set(k, v);
            }
            None
        }
        "STARTTIME" => Some(timer::start_time().to_string()),
        "ABORT" => {
            abort();
            None
        }
        "MONITOR" => monitor(ctx, p),
        "STAT" => Some(stat(ctx, p)),
        "LOGON" => {
            logon(ctx, p);
            None
        }
        "LOGOFF" => {
            logoff(ctx, p);
            None
        }
        "SIGNAL" => {
            signal(ctx, p);
            None
        }
        _ => None,
    }
}

/// `strtol(s, NULL, 10)`: leading blanks, a sign, digits; junk after them is ignored.
fn parse_leading_int(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = digits.bytes().take_while(u8::is_ascii_digit).count();
    let v = digits[..end].parse::<i64>().unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

fn timeout(ctx: &Context, p: &str) -> String {
    let ticks = parse_leading_int(p);
    let session = ctx.new_session();
    timer::timeout(ctx.handle, session, ticks);
    session.to_string()
}

fn reg(ctx: &Context, p: &str) -> Option<String> {
    if p.is_empty() {
        return Some(format!(":{:x}", ctx.handle));
    }
    if let Some(name) = p.strip_prefix('.') {
        return handle::bind_name(name.as_bytes(), ctx.handle).then(|| name.to_owned());
    }
    logging::error(
        ctx.handle,
        format!("error: Can't register global name {p} in C"),
    );
    None
}

fn query(p: &str) -> Option<String> {
    let name = p.strip_prefix('.')?;
    match handle::find_name(name.as_bytes()) {
        0 => None,
        h => Some(format!(":{h:x}")),
    }
}

fn name(ctx: &Context, p: &str) -> Option<String> {
    let mut words = p.split_whitespace();
    let (name, addr) = (words.next()?, words.next()?);
    let h = context::parse_hex(addr.strip_prefix(':')?.as_bytes()).unwrap_or(0);
    if h == 0 {
        return None;
    }
    if let Some(local) = name.strip_prefix('.') {
        return handle::bind_name(local.as_bytes(), h).then(|| local.to_owned());
    }
    logging::error(
        ctx.handle,
        format!("error: Can't set global name {name} in C"),
    );
    None
}

/// EXIT (`target` 0 = the caller) and KILL.
fn exit(ctx: &Context, target: u32) {
    let target = if target == 0 {
        logging::error(ctx.handle, "KILL self");
        ctx.handle
    } else {
        logging::error(ctx.handle, format!("KILL :{target:x}"));
        target
    };
    let monitor = EXIT_MONITOR.load(Ordering::Relaxed);
    if monitor != 0 {
        context::send_raw(target, monitor, PTYPE_CLIENT, 0, Payload::NULL, 0);
    }
    context::kill(target);
}

fn launch(p: &str) -> Option<String> {
    let sep = p.find([' ', '\t', '\r', '\n']);
    let (module, args) = match sep {
        Some(i) => {
            let rest = &p[i + 1..];
            let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
            (&p[..i], Some(&rest[..end]))
        }
        None => (p, None),
    };
    context::launch(module, args).map(|h| format!(":{h:08X}"))
}

/// Retires every service until none is left; the node then shuts down.
pub fn abort() {
    loop {
        let all = handle::all();
        if all.is_empty() {
            break;
        }
        for h in all {
            context::kill(h);
        }
    }
}

fn monitor(ctx: &Context, p: &str) -> Option<String> {
    if p.is_empty() {
        return match EXIT_MONITOR.load(Ordering::Relaxed) {
            0 => None,
            h => Some(format!(":{h:x}")),
        };
    }
    EXIT_MONITOR.store(context::query_name(ctx.handle, p), Ordering::Relaxed);
    None
}

fn stat(ctx: &Context, p: &str) -> String {
    match p {
        "mqlen" => ctx.mqlen().to_string(),
        "endless" => if ctx.take_endless() { "1" } else { "0" }.to_owned(),
        "cpu" => format!("{:.6}", ctx.cpu_seconds()),
        "time" => format!("{:.6}", ctx.current_dispatch_seconds()),
        "message" => ctx.message_count().to_string(),
        _ => String::new(),
    }
}

fn logon(ctx: &Context, p: &str) {
    let h = context::query_name(ctx.handle, p);
    let Some(target) = handle::grab(h) else {
        return;
    };
    let Some(dir) = env::get("logpath") else {
        return;
    };
    target.with_logfile(|slot| {
        if slot.is_some() {
            return;
        }
        let path = format!("{dir}/{h:08x}.log");
        match OpenOptions::new().append(true).create(true).open(&path) {
            Ok(mut f) => {
                let now = timer::now();
                let wall = (timer::start_time() + now / 100) as libc::time_t;
                let _ = write!(f, "open time: {now} {}", ctime(wall));
                let _ = f.flush();
                *slot = Some(f);
                logging::error(ctx.handle, format!("Open log file {path}"));
            }
            Err(_) => logging::error(ctx.handle, format!("Open log file {path} fail")),
        }
    });
}

fn logoff(ctx: &Context, p: &str) {
    let h = context::query_name(ctx.handle, p);
    let Some(target) = handle::grab(h) else {
        return;
    };
    let closed = target.with_logfile(Option::take);
    if let Some(mut f) = closed {
        let _ = writeln!(f, "close time: {}", timer::now());
        logging::error(ctx.handle, format!("Close log file :{h:08x}"));
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

/// Appends one dispatched message to a per-service log (LOGON).
pub fn log_message(f: &mut File, msg: &Message) {
    let mut line = match socket_record(msg) {
        Some(l) => l,
        None => {
            let mut l = format!(
                ":{:08x} {} {} {} ",
                msg.source,
                msg.ptype,
                msg.session,
                timer::now()
            );
            push_hex(&mut l, msg.bytes());
            l
        }
    };
    line.push('\n');
    let _ = f.write_all(line.as_bytes());
    let _ = f.flush();
}

fn signal(ctx: &Context, p: &str) {
    let mut words = p.split_whitespace();
    let Some(addr) = words.next() else { return };
    let h = context::query_name(ctx.handle, addr);
    let Some(target) = handle::grab(h) else {
        return;
    };
    let sig = words.next().map(parse_int_base0).unwrap_or(0);
    target.signal(sig as i32);
}

/// `strtol(s, NULL, 0)`: decimal, `0x` hex or leading-0 octal; junk after is ignored.
pub fn parse_int_base0(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    let end = digits.chars().take_while(|c| c.is_digit(radix)).count();
    let v = i64::from_str_radix(&digits[..end], radix).unwrap_or(0);
    if neg {
        -v
    } else {
        v
    }
}

fn push_hex(line: &mut String, bytes: &[u8]) {
    for b in bytes {
        line.push_str(&format!("{b:02x}"));
    }
}

/// `[socket] type id ud ` and the string or data of a socket event.
fn socket_record(msg: &Message) -> Option<String> {
    if msg.ptype != crate::message::PTYPE_SOCKET {
        return None;
    }
    let r = crate::socket::record::decode(msg.bytes())?;
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
