//! The file parser: splits the bytes into lines, checks each is text, splits it into fields,
//! parses each line into an [`Entry`], groups entries into pools, and records every error
//! with its line.
//!
//! A broken line is recorded and parsing goes on with the next one, so `modemd -t` reports
//! every problem of a file in one run. Every input is bounded: line length, entries, errors.
//! It takes bytes, not `&str`, so that no byte is replaced or dropped before it is judged:
//! `/dev/tty\xff` read lossily would be another path, and a NUL would end it in a C call.

use super::listen::{overlap, parse_listen};
use super::{
    Config, Entry, Error, ErrorKind, Listen, MAX_ENTRIES, MAX_ERRORS, MAX_LINE, Options, Pool,
    Settings, Warning,
};
use crate::acl::HostList;
use std::path::PathBuf;

const BOM: &[u8] = b"\xef\xbb\xbf";

/// The line as text, or the first thing in it, left to right, that makes it not text: a
/// control byte (TAB aside) or bytes that are not UTF-8. Comments count: the file is text.
fn text(raw: &[u8]) -> Result<&str, ErrorKind> {
    // The first chunk is the valid prefix and the bad sequence that ends it, if any.
    let Some(chunk) = raw.utf8_chunks().next() else {
        return Ok("");
    };
    let valid = chunk.valid().as_bytes();
    // Columns count characters, as an editor does: every byte but UTF-8's continuation bytes.
    let column = |at: usize| {
        let starts = valid.iter().take(at).filter(|&&b| b & 0xc0 != 0x80);
        starts.count() + 1
    };
    let control = |b: u8| b.is_ascii_control() && b != b'\t';
    if let Some((at, &byte)) = valid.iter().enumerate().find(|&(_, &b)| control(b)) {
        return Err(ErrorKind::ControlByte {
            byte,
            column: column(at),
        });
    }
    match chunk.invalid().first() {
        None => Ok(chunk.valid()),
        Some(&byte) => Err(ErrorKind::InvalidUtf8 {
            byte,
            column: column(valid.len()),
        }),
    }
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
    let (hosts, words) = match rest {
        [h, opts @ ..] if !h.contains('=') => {
            (HostList::parse(h).map_err(ErrorKind::BadHosts)?, opts)
        }
        opts => (HostList::any(), opts),
    };
    let options = Options::from_words(words)?;
    Ok((
        listen,
        Entry {
            line,
            device,
            settings,
            hosts,
            options,
        },
    ))
}

/// Parses a whole file. `path` is used only in messages; `services` maps a service name to
/// its TCP port. Returns every error of the file, in line order, if there is any.
pub fn parse(
    path: &str,
    bytes: &[u8],
    services: &dyn Fn(&str) -> Option<u16>,
) -> Result<Config, Vec<Error>> {
    let mut pools: Vec<Pool> = Vec::new();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    // (device, line) of every entry so far; a Vec, as a map type would cost the router image
    // more than the linear search costs a config of MAX_ENTRIES lines.
    let mut seen: Vec<(PathBuf, usize)> = Vec::new();
    let mut entries = 0;
    for (i, raw) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let err = |kind| Error {
            path: path.to_owned(),
            line,
            kind,
        };
        // The CR of a CRLF line end is part of the end, as `str::lines` takes it.
        let raw = raw
            .strip_suffix(b"\r\n")
            .or_else(|| raw.strip_suffix(b"\n"))
            .unwrap_or(raw);
        if line == 1 && raw.starts_with(BOM) {
            errors.push(err(ErrorKind::ByteOrderMark));
            continue;
        }
        if raw.len() > MAX_LINE {
            errors.push(err(ErrorKind::LineTooLong));
            continue;
        }
        let raw = match text(raw) {
            Ok(raw) => raw,
            Err(kind) => {
                errors.push(err(kind));
                continue;
            }
        };
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
            warnings.push(Warning::AnyHost {
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
        if pools.is_empty() {
            warnings.push(Warning::NothingShared {
                path: path.to_owned(),
            });
        }
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
    use crate::config::Parity;
    use std::time::Duration;

    fn services(name: &str) -> Option<u16> {
        (name == "modem").then_some(2006)
    }

    fn ok(text: &str) -> Config {
        parse("m.conf", text.as_bytes(), &services).unwrap()
    }

    fn errors(text: &str) -> Vec<String> {
        byte_errors(text.as_bytes())
    }

    fn byte_errors(bytes: &[u8]) -> Vec<String> {
        parse("m.conf", bytes, &services)
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
                "m.conf:13: unknown option 'idel=5' (known: idle=SECONDS, flow=none|rtscts|xonxoff, \
                 hangup=MS|off, rfc2217=on|fixed)",
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
        assert_eq!(
            c.pools[0].entries[0].options.idle,
            Some(Duration::from_secs(600))
        );
        let b = &c.pools[1].entries[0];
        assert_eq!(
            (b.options.idle, b.hosts.is_any()),
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
    fn control_bytes_are_errors_anywhere_on_the_line() {
        assert_eq!(
            errors(
                "5800 /dev/tty\0S1 9600,8,N,1 ::1\n\
                 5801 /dev/ttyS2 9600,8,N,1 ::1 # \x1b[31m\n\
                 5802 /dev/ttyS3\r9600,8,N,1 ::1\n\
                 5803 /dev/ttyS4\x0c9600,8,N,1 ::1\n\
                 5804\t/dev/ttyS5 9600,8,N,1 ::1\x7f\n"
            ),
            [
                "m.conf:1: control byte 0x00 (NUL) in column 14 (expected printable text or TAB)",
                "m.conf:2: control byte 0x1b (ESC) in column 34 (expected printable text or TAB)",
                "m.conf:3: control byte 0x0d (CR) in column 16 (expected printable text or TAB)",
                "m.conf:4: control byte 0x0c (FF) in column 16 (expected printable text or TAB)",
                "m.conf:5: control byte 0x7f (DEL) in column 31 (expected printable text or TAB)",
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_at_its_column_in_characters() {
        assert_eq!(
            byte_errors(
                b"5800 /dev/tty\xff 9600,8,N,1 ::1\n\
                  # caf\xc3\xa9 \xe2\x82 truncated\n\
                  # Latin-1 caf\xe9\n"
            ),
            [
                "m.conf:1: invalid UTF-8 byte 0xff in column 14 (expected UTF-8 text)",
                "m.conf:2: invalid UTF-8 byte 0xe2 in column 8 (expected UTF-8 text)",
                "m.conf:3: invalid UTF-8 byte 0xe9 in column 14 (expected UTF-8 text)",
            ]
        );
        // The leftmost problem is the one told.
        assert_eq!(
            byte_errors(b"\x01\xff"),
            ["m.conf:1: control byte 0x01 (SOH) in column 1 (expected printable text or TAB)"]
        );
        // UTF-8 beyond ASCII is text: a comment, and a device name.
        let c = ok("# caf\u{e9} \u{2014} modem\n5800 /dev/\u{e9} 9600,8,N,1 ::1\n");
        assert_eq!(c.pools[0].entries[0].device, PathBuf::from("/dev/\u{e9}"));
    }

    #[test]
    fn byte_order_mark_is_named_on_line_one_only() {
        assert_eq!(
            byte_errors(b"\xef\xbb\xbf127.0.0.1:7001 /dev/ttyS1 9600,8,N,1 ::1\n"),
            [
                "m.conf:1: byte order mark (U+FEFF) at the start of the file (save it as UTF-8 without a BOM)"
            ]
        );
        // Later, U+FEFF is a character of a field (a zero-width no-break space), not a BOM.
        assert!(
            errors("5800 /dev/a 9600,8,N,1 ::1\n\u{feff}5801 /dev/b 9600,8,N,1 ::1\n")[0]
                .starts_with("m.conf:2: bad port '\u{feff}5801'")
        );
    }

    #[test]
    fn crlf_line_ends_stay_allowed() {
        let c = ok("# dos\r\n5800 /dev/a 9600,8,N,1 ::1\r\n5801 /dev/b 9600,8,N,1 ::1\r\n");
        assert_eq!(c.pools.len(), 2);
        assert_eq!(c.pools[1].entries[0].hosts.patterns().len(), 1);
        // A CR at the very end, with no LF after it, ends no line.
        assert_eq!(
            errors("5800 /dev/a 9600,8,N,1 ::1\r"),
            ["m.conf:1: control byte 0x0d (CR) in column 27 (expected printable text or TAB)"]
        );
    }

    #[test]
    fn a_file_without_entries_is_valid_but_warned_about() {
        for text in ["", "\n", "# only a comment\n\n   \t\n# another"] {
            let c = ok(text);
            assert!(c.pools.is_empty());
            assert_eq!(
                c.warnings,
                [Warning::NothingShared {
                    path: "m.conf".into()
                }],
                "{text:?}"
            );
        }
        assert!(
            !ok("5800 /dev/a 9600,8,N,1 ::1\n")
                .warnings
                .iter()
                .any(|w| matches!(w, Warning::NothingShared { .. }))
        );
    }
}
