//! Booting a node: config -> env, the logger, the bootstrap service, then the threads
//! until the last service is gone. This is the top layer: it also ties the socket
//! server, which knows nothing above messages, to the services, the scheduler, the log
//! and the timer ([`Services`]).

use crate::dispatch::dispatch_all;
use crate::launch::launch;
use crate::{config, context, cservice, daemon, env, logging, memory, scheduler, socket, timer};
use std::process::ExitCode;
use std::sync::Arc;

const DEFAULT_THREADS: i64 = 8;

/// Runs `skynet CONFIG`; returns the process exit status.
pub fn start(config_path: &str) -> ExitCode {
    let pairs = match config::load(config_path) {
        Ok(p) => p,
        Err(config::ConfigError(msg)) => {
            eprintln!("{msg}");
            return ExitCode::from(1);
        }
    };
    for (k, v) in &pairs {
        env::set(k, v);
    }
    let threads = env::get_int_or_init("thread", DEFAULT_THREADS);
    if !(1..=1024).contains(&threads) {
        eprintln!("Invalid thread {threads} , should be in [1,1024]");
        return ExitCode::from(1);
    }
    let cpath = env::get_str_or_init("cpath", "./cservice/?.so");
    if cpath.split(';').any(|p| !p.is_empty() && !p.contains('?')) {
        eprintln!("Invalid C service path");
        return ExitCode::from(1);
    }
    let harbor = env::get_int_or_init("harbor", 1);
    let bootstrap = env::get_str_or_init("bootstrap", "snlua bootstrap");
    let logservice = env::get_str_or_init("logservice", "logger");
    let profile = env::get_bool_or_init("profile", true);
    let logger_param = env::get("logger");

    let pidfile = env::get("daemon");
    let _pid_lock = match &pidfile {
        Some(p) => match daemon::init(p) {
            Ok(lock) => Some(lock),
            Err(msg) => {
                eprintln!("{msg}");
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    scheduler::install_signals();
    logging::install_log_bridge();
    context::handles().set_harbor(harbor as u32);
    cservice::register_all();
    timer::init();
    memory::init();
    context::set_profile(profile);

    let Some(logger) = launch(&logservice, logger_param.as_deref()) else {
        eprintln!("Can't launch {logservice} service");
        return ExitCode::from(1);
    };
    context::handles().bind_name(b"logger", logger);

    let (module, args) = match bootstrap.split_once(' ') {
        Some((m, a)) => (m, Some(a.trim_start())),
        None => (bootstrap.as_str(), None),
    };
    if launch(module, args).is_none() {
        logging::error(0, format!("Bootstrap error : {bootstrap}\n"));
        dispatch_all(logger);
        return ExitCode::from(1);
    }
    let socket_thread = match socket::start(Arc::new(Services)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Can't start the socket server: {e}");
            return ExitCode::from(1);
        }
    };
    scheduler::run(threads as usize);
    let _ = socket_thread.join();
    if let Some(p) = &pidfile {
        daemon::exit(p);
    }
    ExitCode::SUCCESS
}

/// The node as the socket server sees it (upstream's `skynet_socket.c` glue).
struct Services;

impl socket::Node for Services {
    fn deliver(&self, owner: u32, event: socket::Event) {
        // A service that is gone gets nothing: context::deliver frees the message and
        // its DATA/UDP buffer, and there is no work to wake a worker for.
        if context::deliver(owner, event.into_message()) {
            scheduler::wakeup_if_all_sleep();
        }
    }

    fn log(&self, text: &str) {
        logging::error(0, text);
    }

    fn now(&self) -> u64 {
        timer::now()
    }

    fn idle_worker(&self) -> bool {
        scheduler::sleeping() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Payload;
    use socket::Node;

    #[test]
    fn event_for_a_missing_service_is_dropped() {
        // Handle 0 never exists: the event and its buffer are freed, not queued (run
        // under a leak checker to see the difference).
        Services.deliver(0, socket::Event::data(1, Payload::copy_of(b"x"), 1));
    }
}
