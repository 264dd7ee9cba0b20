//! The config file (`mserver.conf`-compatible): text in, typed [`Config`] out.
//!
//! Grammar, one entry per line, `#` to end of line is a comment, fields separated by blanks:
//! `LISTEN DEVICE SETTINGS [HOSTS] [KEY=VALUE ...]`. Lines with the same `LISTEN` form a pool.
//!
//! Pure: service names are looked up through a function the caller passes, and nothing here
//! opens a file, socket or clock. A broken line is recorded and parsing goes on with the next
//! one, so `modemd -t` reports every problem of a file in one run.
#![forbid(unsafe_code)]

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::acl::{HostList, PatternError};

/// Longest line accepted, in bytes.
pub const MAX_LINE: usize = 4096;
/// Most entries (device lines) in one file.
pub const MAX_ENTRIES: usize = 1024;
/// Most errors reported for one file; the rest are counted.
pub const MAX_ERRORS: usize = 100;
const MAX_BAUD: u32 = 4_000_000;
/// Longest `idle=` accepted: a week.
const MAX_IDLE: u32 = 7 * 24 * 3600;
const MIN_BAUD: u32 = 50;

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
    /// `idle=SECONDS`: end a session with no traffic either way for this long.
    pub idle: Option<Duration>,
}

/// Where a pool listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Listen {
    /// A bare port: every address, IPv4 and IPv6.
    Port(u16),
    /// One address and port.
    Addr(SocketAddr),
}

impl Listen {
    /// The TCP port.
    pub fn port(&self) -> u16 {
        match self {
            Listen::Port(p) => *p,
            Listen::Addr(a) => a.port(),
        }
    }
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

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Port(p) => write!(f, "port {p}"),
            Listen::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// Parity bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parity {
    /// `N`
    None,
    /// `E`
    Even,
    /// `O`
    Odd,
}

/// `BAUD,DATABITS,PARITY,STOPBITS`, fixed by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Bits per second.
    pub baud: u32,
    /// 5 to 8.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
}

impl Default for Settings {
    /// `115200,8,N,1`, the inetd-mode default.
    fn default() -> Self {
        Settings {
            baud: 115_200,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
        }
    }
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        write!(
            f,
            "{},{},{},{}",
            self.baud, self.data_bits, p, self.stop_bits
        )
    }
}

impl std::str::FromStr for Settings {
    type Err = ErrorKind;

    fn from_str(s: &str) -> Result<Self, ErrorKind> {
        let parts: Vec<&str> = s.split(',').collect();
        let [baud, data, parity, stop] = parts[..] else {
            return Err(ErrorKind::BadSettings(s.to_owned()));
        };
        let baud = match number(baud) {
            Some(b) if (MIN_BAUD..=MAX_BAUD).contains(&b) => b,
            _ => return Err(ErrorKind::BadBaud(baud.to_owned())),
        };
        let data_bits = match number(data) {
            Some(d @ 5..=8) => d as u8,
            _ => return Err(ErrorKind::BadDataBits(data.to_owned())),
        };
        let parity = match parity {
            "N" | "n" => Parity::None,
            "E" | "e" => Parity::Even,
            "O" | "o" => Parity::Odd,
            _ => return Err(ErrorKind::BadParity(parity.to_owned())),
        };
        let stop_bits = match number(stop) {
            Some(s @ 1..=2) => s as u8,
            _ => return Err(ErrorKind::BadStopBits(stop.to_owned())),
        };
        Ok(Settings {
            baud,
            data_bits,
            parity,
            stop_bits,
        })
    }
}

/// A decimal number of at most 9 digits, no sign.
fn number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What is wrong with a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Fewer than three fields.
    MissingFields,
    /// Longer than [`MAX_LINE`].
    LineTooLong,
    /// More than [`MAX_ENTRIES`] entries.
    TooManyEntries,
    /// A port out of 1-65535.
    BadPort(String),
    /// `LISTEN` that is neither port, `ADDR:PORT`, `[V6]:PORT` nor a service.
    BadListen(String),
    /// A name not in the services database.
    UnknownService(String),
    /// `DEVICE` not starting with `/`.
    RelativeDevice(String),
    /// `DEVICE` with no file name (`/dev/`).
    BadDevice(String),
    /// `SETTINGS` not of four comma-separated fields.
    BadSettings(String),
    /// Baud rate not a number in range.
    BadBaud(String),
    /// Data bits not 5-8.
    BadDataBits(String),
    /// Parity not N, E or O.
    BadParity(String),
    /// Stop bits not 1 or 2.
    BadStopBits(String),
    /// A bad `HOSTS` field.
    BadHosts(PatternError),
    /// An option this version does not know.
    BadOption(String),
    /// A known option with a bad value.
    BadOptionValue {
        /// The option's name.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// An option given twice on one line.
    RepeatedOption(&'static str),
    /// Two `LISTEN`s that cannot both be bound (`5800` and `127.0.0.1:5800`).
    OverlappingListen {
        /// This line's listen address.
        listen: Listen,
        /// The other one.
        other: Listen,
        /// Where the other one first appears.
        first: usize,
    },
    /// More than [`MAX_ERRORS`] errors; this many more were not listed.
    MoreErrors(usize),
    /// The device already appears on an earlier line.
    DuplicateDevice {
        /// The device path.
        device: String,
        /// The earlier line.
        first: usize,
    },
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match self {
            MissingFields => write!(
                f,
                "missing fields (expected LISTEN DEVICE SETTINGS [HOSTS])"
            ),
            LineTooLong => write!(f, "line longer than {MAX_LINE} bytes"),
            TooManyEntries => write!(f, "more than {MAX_ENTRIES} device entries"),
            BadPort(s) => write!(f, "bad port '{s}' (expected 1-65535 or a service name)"),
            BadListen(s) => write!(
                f,
                "bad listen address '{s}' (expected PORT, ADDRESS:PORT, [IPV6]:PORT or a service name)"
            ),
            UnknownService(s) => write!(f, "unknown service name '{s}' (not in /etc/services)"),
            RelativeDevice(s) => write!(
                f,
                "relative device path '{s}' (expected an absolute path such as /dev/ttyS1)"
            ),
            BadDevice(s) => write!(
                f,
                "bad device path '{s}' (expected a file such as /dev/ttyS1)"
            ),
            BadSettings(s) => write!(
                f,
                "bad settings '{s}' (expected BAUD,DATABITS,PARITY,STOPBITS such as 115200,8,N,1)"
            ),
            BadBaud(s) => write!(f, "bad baud rate '{s}' (expected {MIN_BAUD} to {MAX_BAUD})"),
            BadDataBits(s) => write!(f, "bad data bits '{s}' (expected 5, 6, 7 or 8)"),
            BadParity(s) => write!(f, "bad parity '{s}' (expected N, E or O)"),
            BadStopBits(s) => write!(f, "bad stop bits '{s}' (expected 1 or 2)"),
            BadHosts(e) => write!(f, "{e}"),
            BadOption(s) => write!(f, "unknown option '{s}' (known: idle=SECONDS)"),
            BadOptionValue {
                key,
                value,
                expected,
            } => write!(f, "bad {key} '{value}' (expected {expected})"),
            RepeatedOption(key) => write!(f, "option {key} given twice"),
            OverlappingListen {
                listen,
                other,
                first,
            } => write!(
                f,
                "listen address {listen} overlaps {other} on line {first} (one of them would fail to bind)"
            ),
            MoreErrors(n) => write!(f, "{n} more errors not shown"),
            DuplicateDevice { device, first } => {
                write!(f, "device {device} is already used on line {first}")
            }
        }
    }
}

/// One problem, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The file, as named to the parser.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.kind)
    }
}

impl std::error::Error for Error {}

/// Something legal but risky.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The file.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// The device the line shares.
    pub device: PathBuf,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: no HOSTS field: any host may connect to {}",
            self.path,
            self.line,
            self.device.display()
        )
    }
}

fn parse_port(s: &str, services: &dyn Fn(&str) -> Option<u16>) -> Result<u16, ErrorKind> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match number(s) {
            Some(p @ 1..=65535) => Ok(p as u16),
            _ => Err(ErrorKind::BadPort(s.to_owned())),
        };
    }
    let plausible = s.len() <= 64
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plausible {
        return Err(ErrorKind::BadPort(s.to_owned()));
    }
    services(s).ok_or_else(|| ErrorKind::UnknownService(s.to_owned()))
}

fn parse_listen(s: &str, services: &dyn Fn(&str) -> Option<u16>) -> Result<Listen, ErrorKind> {
    let bad = || ErrorKind::BadListen(s.to_owned());
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, port) = rest.split_once("]:").ok_or_else(bad)?;
        let ip: std::net::Ipv6Addr = addr.parse().map_err(|_| bad())?;
        return Ok(Listen::Addr(SocketAddr::new(
            ip.into(),
            parse_port(port, services)?,
        )));
    }
    match s.split_once(':') {
        Some((addr, port)) => {
            let ip: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
            Ok(Listen::Addr(SocketAddr::new(
                IpAddr::V4(ip),
                parse_port(port, services)?,
            )))
        }
        None => Ok(Listen::Port(parse_port(s, services)?)),
    }
}

/// Whether binding `a` keeps `b` from binding: same port, and one of them takes every
/// address of the other's family (a bare port and `[::]` take both families).
fn overlap(a: Listen, b: Listen) -> bool {
    fn covers(a: Listen, b: Listen) -> bool {
        match a {
            Listen::Port(_) => true,
            Listen::Addr(x) if x.ip() == IpAddr::from([0u8; 16]) => true,
            Listen::Addr(x) if x.ip() == IpAddr::from([0u8; 4]) => match b {
                Listen::Port(_) => true,
                Listen::Addr(y) => y.is_ipv4(),
            },
            Listen::Addr(_) => false,
        }
    }
    a != b && a.port() == b.port() && (covers(a, b) || covers(b, a))
}

fn parse_device(s: &str) -> Result<PathBuf, ErrorKind> {
    if !s.starts_with('/') {
        return Err(ErrorKind::RelativeDevice(s.to_owned()));
    }
    if s.ends_with('/') || s.ends_with("/.") || s.ends_with("/..") {
        return Err(ErrorKind::BadDevice(s.to_owned()));
    }
    Ok(PathBuf::from(s))
}

fn parse_line(
    fields: &[&str],
    line: usize,
    services: &dyn Fn(&str) -> Option<u16>,
) -> Result<(Listen, Entry), ErrorKind> {
    let [listen, device, settings, rest @ ..] = fields else {
        return Err(ErrorKind::MissingFields);
    };
    let listen = parse_listen(listen, services)?;
    let device = parse_device(device)?;
    let settings: Settings = settings.parse()?;
    let (hosts, options) = match rest {
        [h, opts @ ..] if !h.contains('=') => {
            (HostList::parse(h).map_err(ErrorKind::BadHosts)?, opts)
        }
        opts => (HostList::any(), opts),
    };
    let mut idle = None;
    for opt in options {
        // An unknown option is an error: ignoring it would hide a typo, or a config written
        // for a newer modemd.
        match opt.split_once('=') {
            Some(("idle", value)) => {
                if idle.is_some() {
                    return Err(ErrorKind::RepeatedOption("idle"));
                }
                match number(value) {
                    Some(secs @ 1..=MAX_IDLE) => idle = Some(Duration::from_secs(secs.into())),
                    _ => {
                        return Err(ErrorKind::BadOptionValue {
                            key: "idle",
                            value: value.to_owned(),
                            expected: "seconds, 1 to 604800",
                        });
                    }
                }
            }
            _ => return Err(ErrorKind::BadOption((*opt).to_owned())),
        }
    }
    Ok((
        listen,
        Entry {
            line,
            device,
            settings,
            hosts,
            idle,
        },
    ))
}

/// Parses a whole file. `path` is used only in messages; `services` maps a service name to
/// its TCP port. Returns every error of the file, in line order, if there is any.
pub fn parse(
    path: &str,
    text: &str,
    services: &dyn Fn(&str) -> Option<u16>,
) -> Result<Config, Vec<Error>> {
    let mut pools: Vec<Pool> = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    // (device, line) of every entry so far; a Vec, as a map type would cost the router image
    // more than the linear search costs a config of MAX_ENTRIES lines.
    let mut seen: Vec<(PathBuf, usize)> = Vec::new();
    let mut entries = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |kind| Error {
            path: path.to_owned(),
            line,
            kind,
        };
        if raw.len() > MAX_LINE {
            errors.push(err(ErrorKind::LineTooLong));
            continue;
        }
        let content = raw.split_once('#').map_or(raw, |(before, _)| before);
        let fields: Vec<&str> = content.split_ascii_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let (listen, entry) = match parse_line(&fields, line, services) {
            Ok(parsed) => parsed,
            Err(kind) => {
                errors.push(err(kind));
                continue;
            }
        };
        if let Some(&(_, first)) = seen.iter().find(|(d, _)| *d == entry.device) {
            errors.push(err(ErrorKind::DuplicateDevice {
                device: entry.device.display().to_string(),
                first,
            }));
            continue;
        }
        let clash = pools.iter().find(|p| overlap(p.listen, listen));
        if let Some(other) = clash {
            errors.push(err(ErrorKind::OverlappingListen {
                listen,
                other: other.listen,
                first: other.entries[0].line,
            }));
            continue;
        }
        entries += 1;
        if entries > MAX_ENTRIES {
            errors.push(err(ErrorKind::TooManyEntries));
            break;
        }
        seen.push((entry.device.clone(), line));
        if entry.hosts.is_any() {
            warnings.push(Warning {
                path: path.to_owned(),
                line,
                device: entry.device.clone(),
            });
        }
        match pools.iter_mut().find(|p| p.listen == listen) {
            Some(pool) => pool.entries.push(entry),
            None => pools.push(Pool {
                listen,
                entries: vec![entry],
            }),
        }
    }
    if errors.is_empty() {
        return Ok(Config { pools, warnings });
    }
    if errors.len() > MAX_ERRORS {
        let more = errors.len() - MAX_ERRORS;
        let line = errors[MAX_ERRORS].line;
        errors.truncate(MAX_ERRORS);
        errors.push(Error {
            path: path.to_owned(),
            line,
            kind: ErrorKind::MoreErrors(more),
        });
    }
    Err(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services(name: &str) -> Option<u16> {
        (name == "modem").then_some(2006)
    }

    fn ok(text: &str) -> Config {
        parse("m.conf", text, &services).unwrap()
    }

    fn errors(text: &str) -> Vec<String> {
        parse("m.conf", text, &services)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn seed_line_parses() {
        let c = ok("5800 /dev/ttyS1      115200,8,N,1    *.foo.org,192.168.2.1\n");
        assert_eq!(c.pools.len(), 1);
        let p = &c.pools[0];
        assert_eq!(p.listen, Listen::Port(5800));
        let e = &p.entries[0];
        assert_eq!(e.line, 1);
        assert_eq!(e.device, PathBuf::from("/dev/ttyS1"));
        assert_eq!(e.settings, Settings::default());
        assert_eq!(e.hosts.patterns().len(), 2);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn same_listen_lines_form_a_pool_in_file_order() {
        let c = ok("# pool\n\n5800 /dev/ttyS1 115200,8,N,1 *.foo.org # first\n\
                    127.0.0.1:2006 /dev/ttyUSB0 9600,7,E,1 192.168.2.0/24,::1\n\
                    5800 /dev/ttyS2 57600,8,N,2 *.foo.org\n");
        assert_eq!(c.pools.len(), 2);
        let devices: Vec<_> = c.pools[0].entries.iter().map(|e| e.line).collect();
        assert_eq!(devices, [3, 5]);
        assert_eq!(
            c.pools[1].listen,
            Listen::Addr("127.0.0.1:2006".parse().unwrap())
        );
        let s = c.pools[1].entries[0].settings;
        assert_eq!(
            (s.baud, s.data_bits, s.parity, s.stop_bits),
            (9600, 7, Parity::Even, 1)
        );
    }

    #[test]
    fn listen_forms() {
        let l = |s: &str| ok(&format!("{s} /dev/x 9600,8,N,1 ::1")).pools[0].listen;
        assert_eq!(l("[::1]:7000"), Listen::Addr("[::1]:7000".parse().unwrap()));
        assert_eq!(l("modem"), Listen::Port(2006));
        assert_eq!(
            l("127.0.0.1:modem"),
            Listen::Addr("127.0.0.1:2006".parse().unwrap())
        );
        assert_eq!(l("65535"), Listen::Port(65535));
    }

    #[test]
    fn empty_hosts_warns_with_line() {
        let c = ok("\n5800 /dev/ttyS1 115200,8,N,1\n");
        assert_eq!(
            c.warnings[0].to_string(),
            "m.conf:2: no HOSTS field: any host may connect to /dev/ttyS1"
        );
    }

    #[test]
    fn every_error_of_a_file_is_reported_with_its_line() {
        let text = "\
5800 /dev/ttyS1 115201x,8,N,1 10.0.0.1
5800 /dev/ttyS2 115200,9,N,1 10.0.0.1
5800 /dev/ttyS3 115200,8,X,1 10.0.0.1
5800 /dev/ttyS4 115200,8,N,3 10.0.0.1
5800 ttyS5 115200,8,N,1 10.0.0.1
5800 /dev/ttyS6 115200,8,N,1 10.0.0.0/33
70000 /dev/ttyS7 115200,8,N,1 10.0.0.1
nosuchservice /dev/ttyS8 115200,8,N,1 10.0.0.1
5801 /dev/ttyS9 115200,8,N,1 10.0.0.1
5802 /dev/ttyS9 115200,8,N,1 10.0.0.1
5803 /dev/ttyS10
5804 /dev/ttyS11 115200,8,N 10.0.0.1
5805 /dev/ttyS12 115200,8,N,1 10.0.0.1 idel=5
1.2.3:5806 /dev/ttyS13 115200,8,N,1
";
        assert_eq!(
            errors(text),
            [
                "m.conf:1: bad baud rate '115201x' (expected 50 to 4000000)",
                "m.conf:2: bad data bits '9' (expected 5, 6, 7 or 8)",
                "m.conf:3: bad parity 'X' (expected N, E or O)",
                "m.conf:4: bad stop bits '3' (expected 1 or 2)",
                "m.conf:5: relative device path 'ttyS5' (expected an absolute path such as /dev/ttyS1)",
                "m.conf:6: bad CIDR block '10.0.0.0/33' (expected ADDRESS/LENGTH, length 0-32 for IPv4, 0-128 for IPv6)",
                "m.conf:7: bad port '70000' (expected 1-65535 or a service name)",
                "m.conf:8: unknown service name 'nosuchservice' (not in /etc/services)",
                "m.conf:10: device /dev/ttyS9 is already used on line 9",
                "m.conf:11: missing fields (expected LISTEN DEVICE SETTINGS [HOSTS])",
                "m.conf:12: bad settings '115200,8,N' (expected BAUD,DATABITS,PARITY,STOPBITS such as 115200,8,N,1)",
                "m.conf:13: unknown option 'idel=5' (known: idle=SECONDS)",
                "m.conf:14: bad listen address '1.2.3:5806' (expected PORT, ADDRESS:PORT, [IPV6]:PORT or a service name)",
            ]
        );
    }

    #[test]
    fn bounds_are_enforced() {
        assert_eq!(
            errors(&"x".repeat(MAX_LINE + 1)),
            ["m.conf:1: line longer than 4096 bytes"]
        );
        let many: String = (0..=MAX_ENTRIES)
            .map(|i| format!("5800 /dev/tty{i} 9600,8,N,1 ::1\n"))
            .collect();
        assert_eq!(
            errors(&many),
            ["m.conf:1025: more than 1024 device entries"]
        );
        assert!(
            errors("0 /dev/x 9600,8,N,1")
                .join("")
                .contains("bad port '0'")
        );
        assert!(
            errors("5800 /dev/x 0,8,N,1")
                .join("")
                .contains("bad baud rate '0'")
        );
        assert!(
            errors("5800 /dev/ 9600,8,N,1")
                .join("")
                .contains("bad device path")
        );
    }

    #[test]
    fn overlapping_listens_are_rejected_naming_both_lines() {
        assert_eq!(
            errors("5800 /dev/a 9600,8,N,1 ::1\n127.0.0.1:5800 /dev/b 9600,8,N,1 ::1\n"),
            [
                "m.conf:2: listen address 127.0.0.1:5800 overlaps port 5800 on line 1 (one of them would fail to bind)"
            ]
        );
        assert!(
            !errors("0.0.0.0:5800 /dev/a 9600,8,N,1 ::1\n127.0.0.1:5800 /dev/b 9600,8,N,1 ::1\n")
                .is_empty()
        );
        assert!(
            !errors("[::]:5800 /dev/a 9600,8,N,1 ::1\n127.0.0.1:5800 /dev/b 9600,8,N,1 ::1\n")
                .is_empty()
        );
        // Distinct addresses, or the v4 wildcard beside an IPv6 address, bind fine.
        ok("127.0.0.1:5800 /dev/a 9600,8,N,1 ::1\n127.0.0.2:5800 /dev/b 9600,8,N,1 ::1\n");
        ok("0.0.0.0:5800 /dev/a 9600,8,N,1 ::1\n[::1]:5800 /dev/b 9600,8,N,1 ::1\n");
    }

    #[test]
    fn idle_option_parses_after_hosts_or_in_their_place() {
        let c = ok("5800 /dev/a 9600,8,N,1 ::1 idle=600\n5801 /dev/b 9600,8,N,1 idle=2\n");
        assert_eq!(c.pools[0].entries[0].idle, Some(Duration::from_secs(600)));
        let b = &c.pools[1].entries[0];
        assert_eq!(
            (b.idle, b.hosts.is_any()),
            (Some(Duration::from_secs(2)), true)
        );
        assert_eq!(
            errors("5800 /dev/a 9600,8,N,1 ::1 idle=0\n5801 /dev/b 9600,8,N,1 idle=1 idle=2\n"),
            [
                "m.conf:1: bad idle '0' (expected seconds, 1 to 604800)",
                "m.conf:2: option idle given twice",
            ]
        );
    }

    #[test]
    fn error_list_is_capped() {
        let text: String = (0..150)
            .map(|i| format!("5800 /dev/t{i} 9600,9,N,1\n"))
            .collect();
        let errs = errors(&text);
        assert_eq!(errs.len(), MAX_ERRORS + 1);
        assert_eq!(errs[MAX_ERRORS], "m.conf:101: 50 more errors not shown");
    }

    #[test]
    fn settings_round_trip_through_display() {
        let s: Settings = "9600,7,e,2".parse().unwrap();
        assert_eq!(s.to_string(), "9600,7,E,2");
    }
}
