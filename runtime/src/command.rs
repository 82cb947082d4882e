//! The text commands services send to the core (`skynet.core.command` and friends):
//! TIMEOUT, REG, QUERY, NAME, EXIT, KILL, LAUNCH, GETENV, SETENV, STARTTIME, ABORT,
//! MONITOR, STAT, LOGON, LOGOFF, SIGNAL. Results and log texts are upstream's.

use crate::context::{self, Context};
use crate::launch::{self, kill};
use crate::message::{Message, Payload, PTYPE_CLIENT, PTYPE_RESPONSE};
use crate::msglog::MessageLog;
use crate::send::query_name;
use crate::{env, logging, strtol, timer};
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
            match query_name(ctx.handle, p) {
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

fn timeout(ctx: &Context, p: &str) -> String {
    let ticks = strtol::strtol(p.as_bytes(), 10).0;
    let session = ctx.new_session();
    if let Some(due) = timer::timeout(ctx.handle, session, ticks) {
        fire(due);
    }
    session.to_string()
}

/// Delivers an expired timeout: an empty PTYPE_RESPONSE from source 0 (a timeout for a
/// service that died is dropped silently).
pub fn fire(due: timer::Expired) {
    let msg = Message::new(0, due.session, PTYPE_RESPONSE, Payload::NULL);
    context::deliver(due.handle, msg);
}

fn reg(ctx: &Context, p: &str) -> Option<String> {
    if p.is_empty() {
        return Some(format!(":{:x}", ctx.handle));
    }
    if let Some(name) = p.strip_prefix('.') {
        return context::handles()
            .bind_name(name.as_bytes(), ctx.handle)
            .then(|| name.to_owned());
    }
    logging::error(
        ctx.handle,
        format!("error: Can't register global name {p} in C"),
    );
    None
}

fn query(p: &str) -> Option<String> {
    let name = p.strip_prefix('.')?;
    match context::handles().find_name(name.as_bytes()) {
        0 => None,
        h => Some(format!(":{h:x}")),
    }
}

fn name(ctx: &Context, p: &str) -> Option<String> {
    let mut words = p.split_whitespace();
    let (name, addr) = (words.next()?, words.next()?);
    let h = strtol::hex_handle(addr.strip_prefix(':')?.as_bytes());
    if h == 0 {
        return None;
    }
    if let Some(local) = name.strip_prefix('.') {
        return context::handles()
            .bind_name(local.as_bytes(), h)
            .then(|| local.to_owned());
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
        context::deliver(
            monitor,
            Message::new(target, 0, PTYPE_CLIENT, Payload::NULL),
        );
    }
    kill(target);
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
    launch::launch(module, args).map(|h| format!(":{h:08X}"))
}

/// Retires every service until none is left; the node then shuts down.
pub fn abort() {
    loop {
        let all = context::handles().all();
        if all.is_empty() {
            break;
        }
        for h in all {
            kill(h);
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
    EXIT_MONITOR.store(query_name(ctx.handle, p), Ordering::Relaxed);
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
    let h = query_name(ctx.handle, p);
    let Some(target) = context::grab(h) else {
        return;
    };
    let Some(dir) = env::get("logpath") else {
        return;
    };
    target.with_log(|slot| {
        if slot.is_some() {
            return;
        }
        match MessageLog::open(&dir, h) {
            Ok((log, path)) => {
                *slot = Some(log);
                logging::error(ctx.handle, format!("Open log file {path}"));
            }
            Err(path) => logging::error(ctx.handle, format!("Open log file {path} fail")),
        }
    });
}

fn logoff(ctx: &Context, p: &str) {
    let h = query_name(ctx.handle, p);
    let Some(target) = context::grab(h) else {
        return;
    };
    if let Some(log) = target.with_log(Option::take) {
        let _ = log.close();
        logging::error(ctx.handle, format!("Close log file :{h:08x}"));
    }
}

fn signal(ctx: &Context, p: &str) {
    let mut words = p.split_whitespace();
    let Some(addr) = words.next() else { return };
    let h = query_name(ctx.handle, addr);
    let Some(target) = context::grab(h) else {
        return;
    };
    let sig = words
        .next()
        .map_or(0, |w| strtol::strtol(w.as_bytes(), 0).0);
    target.signal(sig as i32);
}
