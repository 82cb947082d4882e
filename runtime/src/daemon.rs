//! `daemon = "pidfile"`: refuse to start twice, detach from the terminal, and keep the
//! pid in a locked file that is removed at exit. Must run before any thread starts,
//! because it forks.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

/// The pid a live process wrote in `pidfile`, if any.
fn running_pid(pidfile: &str) -> Option<i32> {
    let mut text = String::new();
    File::open(pidfile).ok()?.read_to_string(&mut text).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    // SAFETY: getpid has no preconditions.
    if pid == 0 || pid == unsafe { libc::getpid() } {
        return None;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let gone = unsafe { libc::kill(pid, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    (!gone).then_some(pid)
}

/// Writes our pid into the locked pid file; the file stays open (and locked) for the
/// life of the process.
fn write_pid(pidfile: &str) -> Result<File, String> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(pidfile)
        .map_err(|_| format!("Can't create pidfile [{pidfile}]."))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == -1 {
        let mut text = String::new();
        let _ = f.read_to_string(&mut text);
        return Err(match text.trim().parse::<i32>() {
            Ok(pid) => format!("Can't lock pidfile, lock is held by pid {pid}."),
            Err(_) => "Can't lock and read pidfile.".to_owned(),
        });
    }
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    f.set_len(0).map_err(|_| "Can't write pid.".to_owned())?;
    writeln!(f, "{pid}").map_err(|_| "Can't write pid.".to_owned())?;
    Ok(f)
}

fn redirect_to_null() -> Result<(), String> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("Unable to open /dev/null: {e}"))?;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors of this process.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } < 0 {
            return Err(format!("Unable to dup2 fd {fd}"));
        }
    }
    Ok(())
}

/// Daemonizes; the returned file keeps the pid lock until the process ends.
pub fn init(pidfile: &str) -> Result<File, String> {
    if let Some(pid) = running_pid(pidfile) {
        return Err(format!("Skynet is already running, pid = {pid}."));
    }
    // SAFETY: called before any thread exists; daemon(1, 1) keeps the working directory
    // and the descriptors, which are redirected below.
    if unsafe { libc::daemon(1, 1) } != 0 {
        return Err(format!(
            "Can't daemonize: {}",
            std::io::Error::last_os_error()
        ));
    }
    let f = write_pid(pidfile)?;
    redirect_to_null()?;
    Ok(f)
}

/// Removes the pid file at exit.
pub fn exit(pidfile: &str) {
    let _ = std::fs::remove_file(pidfile);
}
