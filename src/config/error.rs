//! What can be wrong with a config file: [`ErrorKind`], [`Error`] (with file and line) and
//! [`Warning`], and the exact messages `modemd -t` prints for them.
//!
//! Messages say what was expected; the tests beside the parsers assert them byte for byte.

use std::fmt;
use std::path::PathBuf;

use super::Listen;
use super::options::{Known, TABLE};
use crate::acl::PatternError;

/// What is wrong with a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Fewer than three fields.
    MissingFields,
    /// Longer than [`MAX_LINE`](super::MAX_LINE).
    LineTooLong,
    /// More than [`MAX_ENTRIES`](super::MAX_ENTRIES) entries.
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
    /// More than [`MAX_ERRORS`](super::MAX_ERRORS) errors; this many more were not listed.
    MoreErrors(usize),
    /// The device already appears on an earlier line.
    DuplicateDevice {
        /// The device path.
        device: String,
        /// The earlier line.
        first: usize,
    },
    /// The file opens with a UTF-8 byte order mark, which no message could show.
    ByteOrderMark,
    /// A control byte (0x00-0x1F but TAB, or 0x7F) in the line.
    ControlByte {
        /// The byte.
        byte: u8,
        /// Where, 1-based, counted in characters as an editor counts them.
        column: usize,
    },
    /// Bytes that are not UTF-8 in the line.
    InvalidUtf8 {
        /// The first byte of the bad sequence.
        byte: u8,
        /// Where, 1-based, counted in characters as an editor counts them.
        column: usize,
    },
}

/// ASCII's names of the control bytes 0x00-0x1F, three bytes each: one string costs the
/// image less than a table of 32 slices.
const CONTROL_NAMES: &str = "NULSOHSTXETXEOTENQACKBELBS HT LF VT FF CR SO SI \
                             DLEDC1DC2DC3DC4NAKSYNETBCANEM SUBESCFS GS RS US ";

/// The ASCII name of a control byte (`NUL`, `ESC`, `DEL`).
fn control_name(byte: u8) -> &'static str {
    let at = usize::from(byte) * 3;
    match CONTROL_NAMES.get(at..at + 3) {
        Some(name) => name.strip_suffix(' ').unwrap_or(name),
        None => "DEL",
    }
}

impl ErrorKind {
    /// A message that is the field as given between two fixed texts: those texts and the
    /// field. One table and one writer for them all: a `write!` of its own per message cost
    /// the router image about 80 bytes each.
    fn quoted(&self) -> Option<(&'static str, &str, &'static str)> {
        use ErrorKind::*;
        let (i, s) = match self {
            BadPort(s) => (0, s),
            BadListen(s) => (1, s),
            UnknownService(s) => (2, s),
            RelativeDevice(s) => (3, s),
            BadDevice(s) => (4, s),
            BadSettings(s) => (5, s),
            BadBaud(s) => (6, s),
            BadDataBits(s) => (7, s),
            BadParity(s) => (8, s),
            BadStopBits(s) => (9, s),
            _ => return None,
        };
        let (before, after) = QUOTED[i];
        Some((before, s, after))
    }
}

/// The texts around the field of each [`ErrorKind::quoted`] message, in its order.
const QUOTED: [(&str, &str); 10] = [
    ("bad port '", "' (expected 1-65535 or a service name)"),
    (
        "bad listen address '",
        "' (expected PORT, ADDRESS:PORT, [IPV6]:PORT or a service name)",
    ),
    ("unknown service name '", "' (not in /etc/services)"),
    (
        "relative device path '",
        "' (expected an absolute path such as /dev/ttyS1)",
    ),
    (
        "bad device path '",
        "' (expected a file such as /dev/ttyS1)",
    ),
    (
        "bad settings '",
        "' (expected BAUD,DATABITS,PARITY,STOPBITS such as 115200,8,N,1)",
    ),
    // MIN_BAUD to MAX_BAUD, written out (a test holds them equal): a literal in a table.
    ("bad baud rate '", "' (expected 50 to 4000000)"),
    ("bad data bits '", "' (expected 5, 6, 7 or 8)"),
    ("bad parity '", "' (expected N, E or O)"),
    ("bad stop bits '", "' (expected 1 or 2)"),
];

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        if let Some((before, s, after)) = self.quoted() {
            f.write_str(before)?;
            f.write_str(s)?;
            return f.write_str(after);
        }
        match self {
            MissingFields => f.write_str("missing fields (expected LISTEN DEVICE SETTINGS [HOSTS])"),
            // MAX_LINE and MAX_ENTRIES, written out as the baud limits are.
            LineTooLong => f.write_str("line longer than 4096 bytes"),
            TooManyEntries => f.write_str("more than 1024 device entries"),
            BadHosts(e) => write!(f, "{e}"),
            BadOption(s) => write!(f, "unknown option '{s}' (known: {})", Known(TABLE)),
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
            ByteOrderMark => f.write_str(
                "byte order mark (U+FEFF) at the start of the file (save it as UTF-8 without a BOM)",
            ),
            ControlByte { byte, column } => write!(
                f,
                "control byte 0x{byte:02x} ({}) in column {column} (expected printable text or TAB)",
                control_name(*byte)
            ),
            InvalidUtf8 { byte, column } => write!(
                f,
                "invalid UTF-8 byte 0x{byte:02x} in column {column} (expected UTF-8 text)"
            ),
            // Written by `quoted` above.
            BadPort(_) | BadListen(_) | UnknownService(_) | RelativeDevice(_) | BadDevice(_)
            | BadSettings(_) | BadBaud(_) | BadDataBits(_) | BadParity(_) | BadStopBits(_) => {
                Ok(())
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

/// Something legal but probably not meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// An entry without `HOSTS`: any host may connect.
    AnyHost {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The device the line shares.
        device: PathBuf,
    },
    /// A file without entries (empty, or only comments and blank lines).
    NothingShared {
        /// The file.
        path: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::AnyHost { path, line, device } => write!(
                f,
                "{path}:{line}: no HOSTS field: any host may connect to {}",
                device.display()
            ),
            Warning::NothingShared { path } => {
                write!(f, "{path}: nothing shared (no entries): no port listens")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_errors_name_the_byte_and_column() {
        let control = |byte| ErrorKind::ControlByte { byte, column: 12 }.to_string();
        assert_eq!(
            control(0),
            "control byte 0x00 (NUL) in column 12 (expected printable text or TAB)"
        );
        assert_eq!(
            control(0x1b),
            "control byte 0x1b (ESC) in column 12 (expected printable text or TAB)"
        );
        assert_eq!(
            control(0x0d),
            "control byte 0x0d (CR) in column 12 (expected printable text or TAB)"
        );
        assert_eq!(
            control(0x1f),
            "control byte 0x1f (US) in column 12 (expected printable text or TAB)"
        );
        assert_eq!(
            control(0x7f),
            "control byte 0x7f (DEL) in column 12 (expected printable text or TAB)"
        );
        assert_eq!(
            ErrorKind::InvalidUtf8 {
                byte: 0xff,
                column: 14
            }
            .to_string(),
            "invalid UTF-8 byte 0xff in column 14 (expected UTF-8 text)"
        );
        assert_eq!(
            ErrorKind::ByteOrderMark.to_string(),
            "byte order mark (U+FEFF) at the start of the file (save it as UTF-8 without a BOM)"
        );
    }

    #[test]
    fn the_messages_name_the_limits_in_force() {
        use crate::config::settings::{MAX_BAUD, MIN_BAUD};
        use crate::config::{MAX_ENTRIES, MAX_LINE};
        assert_eq!(
            ErrorKind::LineTooLong.to_string(),
            format!("line longer than {MAX_LINE} bytes")
        );
        assert_eq!(
            ErrorKind::TooManyEntries.to_string(),
            format!("more than {MAX_ENTRIES} device entries")
        );
        assert_eq!(
            ErrorKind::BadBaud("x".into()).to_string(),
            format!("bad baud rate 'x' (expected {MIN_BAUD} to {MAX_BAUD})")
        );
    }

    #[test]
    fn every_control_byte_has_its_ascii_name() {
        let names: Vec<&str> = (0..0x20).chain([0x7f]).map(control_name).collect();
        assert_eq!(names.len(), 33);
        assert!(
            names.iter().all(|n| (2..=3).contains(&n.len())),
            "{names:?}"
        );
        assert_eq!(
            [
                names[0x08],
                names[0x09],
                names[0x10],
                names[0x19],
                names[0x1c]
            ],
            ["BS", "HT", "DLE", "EM", "FS"]
        );
    }

    #[test]
    fn nothing_shared_names_the_file() {
        let w = Warning::NothingShared {
            path: "m.conf".into(),
        };
        assert_eq!(
            w.to_string(),
            "m.conf: nothing shared (no entries): no port listens"
        );
    }
}
