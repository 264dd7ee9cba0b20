//! One line per event, to stderr (foreground) or syslog (daemon, facility `daemon`).
//!
//! The destination and verbosity are process-wide and set once by `main`; every thread logs
//! through the macros. Logging never fails the caller: a lost log line is not worth a lost
//! session.

use std::fmt;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::sys;

static SYSLOG: AtomicBool = AtomicBool::new(false);
static VERBOSITY: AtomicU8 = AtomicU8::new(0);
/// Held while a line goes to stderr, as std's stderr lock was: one thread's line is never
/// cut by another's, even when the kernel takes it in more than one write.
static STDERR: Mutex<()> = Mutex::new(());

/// How much a line matters; the numbers are syslog priorities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error = 3,
    /// Something is wrong but modemd goes on.
    Warning = 4,
    /// Sessions and start-up.
    Info = 6,
    /// Shown with `-d`.
    Debug = 7,
}

/// Sends lines to syslog from now on (ident `modemd`, facility daemon).
pub fn use_syslog() {
    crate::syslog::open();
    SYSLOG.store(true, Ordering::Relaxed);
}

/// Sets how many `-d` flags were given.
pub fn set_verbosity(v: u8) {
    VERBOSITY.store(v, Ordering::Relaxed);
}

/// Whether debug lines are shown.
pub fn debug_enabled() -> bool {
    VERBOSITY.load(Ordering::Relaxed) > 0
}

/// Writes one line; use the macros instead.
pub fn write(level: Level, args: fmt::Arguments<'_>) {
    if level == Level::Debug && !debug_enabled() {
        return;
    }
    if SYSLOG.load(Ordering::Relaxed) {
        crate::syslog::send(level as u8, &args.to_string());
    } else {
        let tag = match level {
            Level::Error => "error: ",
            Level::Warning => "warning: ",
            Level::Info | Level::Debug => "",
        };
        // One write(2) a line: stderr is unbuffered, and formatting straight into it would
        // cost a system call per piece. Not eprintln!: it panics when stderr is a closed
        // pipe (a dead log reader under procd or systemd), and a lost line must not cost a
        // session. Not std's stderr either: its reentrant lock and write_all cost the router
        // image more than sys::write_all and a Mutex.
        let line = format!("modemd: {tag}{args}\n");
        let _guard = STDERR.lock().unwrap_or_else(|p| p.into_inner());
        let _ = put(2, &line);
    }
}

/// Logs an error line.
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($t)*)) };
}
/// Logs a warning line.
#[macro_export]
macro_rules! warning {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warning, format_args!($($t)*)) };
}
/// Logs an informational line.
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) };
}
/// Logs a debug line (only with `-d`).
#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($t)*)) };
}

/// Writes `args` to stdout, as `print!` does, for `main`'s `-h`, `-V` and `-t`. Not `print!`
/// itself: its locked, line-buffered stdout and the flush at exit cost the router image
/// 2.4 KB. One write(2) for the text, as stdout is nothing but these few lines.
pub fn print(args: fmt::Arguments<'_>) {
    shown(1, "stdout", &args.to_string());
}

/// Writes `args` to stderr, as `eprint!` does, for `main`'s usage errors and the message of
/// a daemon that failed to start; in one write(2), where `eprint!` made one a piece.
pub fn eprint(args: fmt::Arguments<'_>) {
    let text = args.to_string();
    let _guard = STDERR.lock().unwrap_or_else(|p| p.into_inner());
    shown(2, "stderr", &text);
}

/// `text` on descriptor `fd`, failing as `print!` and `eprint!` do.
fn shown(fd: RawFd, name: &str, text: &str) {
    match put(fd, text) {
        Ok(()) => {}
        // As std's stdout and stderr: a closed descriptor swallows the text.
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => {}
        // As `print!` and `eprint!`, which panic on any other failure.
        Err(e) => panic!("failed printing to {name}: {e}"),
    }
}

/// All of `text` written to standard descriptor `fd` (1 or 2).
fn put(fd: RawFd, text: &str) -> std::io::Result<()> {
    // SAFETY: descriptors 1 and 2 are never closed by modemd (daemonize points them at
    // /dev/null), and std's own stdout and stderr use them the same way; if one is not open,
    // the write fails with EBADF, which the callers handle.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    sys::write_all(fd, text.as_bytes())
}
