//! One line per event, to stderr (foreground) or syslog (daemon, facility `daemon`).
//!
//! The destination and verbosity are process-wide and set once by `main`; every thread logs
//! through the macros. Logging never fails the caller: a lost log line is not worth a lost
//! session.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

static SYSLOG: AtomicBool = AtomicBool::new(false);
static VERBOSITY: AtomicU8 = AtomicU8::new(0);

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
        // session.
        let line = format!("modemd: {tag}{args}\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
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
    // SAFETY: descriptor 1 is never closed here (ManuallyDrop), and std's own stdout wraps
    // it the same way; if it is not open, writes fail with EBADF, handled below.
    let mut out = ManuallyDrop::new(unsafe { File::from_raw_fd(1) });
    match out.write_all(args.to_string().as_bytes()) {
        Ok(()) => {}
        // As std's stdout: a closed descriptor 1 swallows the text.
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => {}
        // As `print!`, which panics on any other failure.
        Err(e) => panic!("failed printing to stdout: {e}"),
    }
}
