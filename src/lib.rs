//! modemd: share the serial modems of a Linux router over TCP.
//!
//! The data path is `listen → accept → admit (acl) → claim (registry, lock) → open (serial)
//! → relay → hang up (hangup) → account`. The pure modules ([`config`], [`acl`]) are public so that tests and
//! fuzzers can drive them without I/O.
#![deny(missing_docs)]

pub mod log;

pub mod acl;
pub mod client;
pub mod comport;
pub mod config;
pub mod daemon;
pub mod devpath;
pub mod dns;
pub mod fault;
pub mod hangup;
pub mod inetd;
pub mod listener;
pub mod lock;
#[cfg(all(target_os = "linux", target_env = "musl"))]
pub mod musl;
pub mod passwd;
pub mod pty;
pub mod refusals;
pub mod registry;
pub mod relay;
pub mod resolve;
pub mod serial;
pub mod server;
pub mod session;
pub mod spare;
pub mod sys;
pub mod syslog;
pub mod telnet;
pub mod thread;
