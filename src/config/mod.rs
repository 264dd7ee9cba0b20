//! The config file (`mserver.conf`-compatible): bytes in, typed [`Config`] out.
//!
//! Grammar, one entry per line, `#` to end of line is a comment, fields separated by blanks:
//! `LISTEN DEVICE SETTINGS [HOSTS] [KEY=VALUE ...]`. Lines with the same `LISTEN` form a pool.
//! The file is UTF-8 text (DESIGN §3): a control byte other than TAB (or the CR of a CRLF
//! line end), bytes that are not UTF-8 and a byte order mark are errors at their line.
//!
//! Pure: service names are looked up through a function the caller passes, and nothing here
//! opens a file, socket or clock. A broken line is recorded and parsing goes on with the next
//! one, so `modemd -t` reports every problem of a file in one run.
//!
//! One submodule per concern: `settings` (`BAUD,DATABITS,PARITY,STOPBITS`), `listen`
//! (`LISTEN` and which ones overlap), `options` (the table of `KEY=VALUE` options), `error`
//! (errors, warnings and their messages), `file` (bytes into lines into entries into pools).
//! Everything public is re-exported here, as `config::...`.
// `forbid` here covers every submodule: none of them can `allow` unsafe code back.
#![forbid(unsafe_code)]

mod error;
mod file;
mod listen;
mod options;
mod settings;

use std::net::IpAddr;
use std::path::PathBuf;

use crate::acl::HostList;

pub use error::{Error, ErrorKind, Warning};
pub use file::parse;
pub use listen::Listen;
pub use options::{DEFAULT_HANGUP, Flow, Hangup, MAX_HANGUP, Options, Rfc2217};
pub use settings::{Parity, Settings};

/// Longest line accepted, in bytes.
pub const MAX_LINE: usize = 4096;
/// Most entries (device lines) in one file.
pub const MAX_ENTRIES: usize = 1024;
/// Most errors reported for one file; the rest are counted.
pub const MAX_ERRORS: usize = 100;

/// A parsed, valid config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Pools in the order their `LISTEN` first appears.
    pub pools: Vec<Pool>,
    /// Things that are allowed but probably not meant.
    pub warnings: Vec<Warning>,
}

/// The devices shared on one `LISTEN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Where clients connect.
    pub listen: Listen,
    /// The devices, in file order: a client gets the first free one that admits it.
    pub entries: Vec<Entry>,
}

/// One config line: a device, its fixed line settings and who may use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Line number in the file, for messages.
    pub line: usize,
    /// Absolute device path, as written (symlinks are resolved when it is locked).
    pub device: PathBuf,
    /// Fixed line settings.
    pub settings: Settings,
    /// Who may use it; empty admits any host.
    pub hosts: HostList,
    /// `KEY=VALUE` options; what the line does not give is at its default.
    pub options: Options,
}

impl Pool {
    /// Whether a client from `ip` is refused by every entry on its address alone, so it can
    /// be turned away without a thread or a DNS lookup.
    pub fn refuses_by_address(&self, ip: IpAddr) -> bool {
        self.entries
            .iter()
            .all(|e| e.hosts.decide_by_address(ip) == Some(false))
    }
}

/// A decimal number of at most 9 digits, no sign.
fn number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
