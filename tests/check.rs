//! `modemd -t`: exit 0 for valid files (with a warning for one that shares nothing); exit 1
//! with `FILE:LINE: message` for each kind of mistake, bytes that are not text included, all
//! of a file's mistakes in one run; at once for a path that is not a regular file.

mod common;

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;

fn check(text: &str) -> (Output, String) {
    check_bytes(text.as_bytes())
}

fn check_bytes(bytes: &[u8]) -> (Output, String) {
    let dir = TempDir::new("check");
    let path = dir.join("modemd.conf");
    fs::write(&path, bytes).expect("write");
    (check_path(&path, START), path.display().to_string())
}

/// `modemd -t -c path`, killed (and the test failed) if it has not finished within `bound`.
fn check_path(path: &Path, bound: Duration) -> Output {
    run_bounded(modemd_command().arg("-t").arg("-c").arg(path), bound)
}

#[test]
fn valid_files_pass() {
    let text = "\
# the seed's line, a pool, and the other LISTEN forms
5800 /dev/ttyS1 115200,8,N,1 *.foo.org,192.168.2.1
5800 /dev/ttyS2 57600,8,N,1 *.foo.org   # same port: a pool
127.0.0.1:2006 /dev/ttyUSB0 9600,7,E,1 192.168.2.0/24,::1
[::1]:2007 /dev/serial/by-id/usb-modem 19200,8,O,2 localhost
";
    assert_valid(text, "3 listeners, 4 devices");
}

/// `modemd -t` accepts `text` and counts what it shares as `counted` says.
fn assert_valid(text: &str, counted: &str) {
    let (out, _) = check(text);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(counted));
}

#[test]
fn the_shipped_example_passes() {
    let text = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/etc/modemd.conf.example"
    ))
    .expect("read the example");
    assert_valid(&text, "4 listeners, 5 devices");
}

#[test]
fn line_options_are_checked() {
    let (out, path) = check(
        "5800 /dev/ttyS1 115200,8,N,1 ::1 flow=rts\n5801 /dev/ttyS2 115200,8,N,1 ::1 hangup=10001\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{path}:1: bad flow 'rts' (expected none, rtscts or xonxoff)"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{path}:2: bad hangup '10001' (expected milliseconds, 0 to 10000, or off)"
        )),
        "{err}"
    );
}

#[test]
fn empty_hosts_passes_with_a_warning_naming_the_line() {
    let (out, path) = check("\n5800 /dev/ttyS1 115200,8,N,1\n");
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{path}:2: no HOSTS field: any host may connect")),
        "{err}"
    );
}

#[test]
fn each_mistake_fails_with_file_and_line() {
    let cases = [
        ("5800 /dev/ttyS1 1152OO,8,N,1 ::1", "bad baud rate '1152OO'"),
        ("5800 /dev/ttyS1 115200,9,N,1 ::1", "bad data bits '9'"),
        ("5800 /dev/ttyS1 115200,8,X,1 ::1", "bad parity 'X'"),
        ("5800 /dev/ttyS1 115200,8,N,3 ::1", "bad stop bits '3'"),
        (
            "5800 ttyS1 115200,8,N,1 ::1",
            "relative device path 'ttyS1'",
        ),
        (
            "5800 /dev/ttyS1 115200,8,N,1 10.0.0.0/40",
            "bad CIDR block '10.0.0.0/40'",
        ),
        ("65536 /dev/ttyS1 115200,8,N,1 ::1", "bad port '65536'"),
        (
            "no-such-service-xyz /dev/ttyS1 115200,8,N,1 ::1",
            "unknown service name",
        ),
        (
            "5800 /dev/ttyS1 115200,8,N,1 ::1\n5801 /dev/ttyS1 115200,8,N,1 ::1",
            "device /dev/ttyS1 is already used on line 2",
        ),
    ];
    for (text, message) in cases {
        let (out, path) = check(&format!("# comment\n{text}\n"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        let line = text.lines().count() + 1;
        assert!(
            err.contains(&format!("{path}:{line}: {message}")),
            "{text}: {err}"
        );
    }
}

#[test]
fn every_mistake_of_a_file_is_reported_in_one_run() {
    let (out, path) = check("5800 /dev/a 9600,9,N,1 ::1\n5800 /dev/b 9600,8,Q,1 ::1\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains(&format!("{path}:1: bad data bits")), "{err}");
    assert!(err.contains(&format!("{path}:2: bad parity")), "{err}");
}

#[test]
fn missing_file_is_an_error() {
    let out = check_path(Path::new("/nonexistent/modemd.conf"), START);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/modemd.conf"));
}

#[test]
fn bytes_that_are_not_text_fail_with_file_and_line() {
    let cases: [(&[u8], &str); 4] = [
        (
            b"5800 /dev/tty\0S1 115200,8,N,1 ::1",
            "control byte 0x00 (NUL) in column 14",
        ),
        (
            b"5800 /dev/ttyS1 115200,8,N,1 ::1 # \x1b[1m",
            "control byte 0x1b (ESC) in column 36",
        ),
        (
            b"5800 /dev/tty\xff 115200,8,N,1 ::1",
            "invalid UTF-8 byte 0xff in column 14",
        ),
        (
            b"5800 /dev/tty\xc3 115200,8,N,1 ::1",
            "invalid UTF-8 byte 0xc3 in column 14",
        ),
    ];
    for (line, message) in cases {
        let (out, path) = check_bytes(&[b"# comment\n", line, b"\n"].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{message}: {err}");
        assert!(
            err.contains(&format!("{path}:2: {message}")),
            "{message}: {err}"
        );
        // The log line itself stays text: the bad byte is told, not copied.
        assert!(
            !out.stderr.iter().any(|&b| b < b' ' && b != b'\n'),
            "{err:?}"
        );
    }
}

#[test]
fn byte_order_mark_is_named() {
    let (out, path) = check_bytes(b"\xef\xbb\xbf127.0.0.1:7001 /dev/ttyS1 9600,8,N,1 ::1\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{path}:1: byte order mark (U+FEFF) at the start of the file (save it as UTF-8 without a BOM)"
        )),
        "{err}"
    );
    assert!(!err.contains("bad listen address"), "{err}");
}

#[test]
fn fifo_as_config_is_refused_at_once() {
    let dir = TempDir::new("fifo");
    let fifo = dir.join("modemd.conf");
    let c = CString::new(fifo.as_os_str().as_bytes()).expect("path");
    // SAFETY: a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    // No writer ever opens it: a blocking open would wait forever, and run_bounded fail.
    let started = Instant::now();
    let out = check_path(&fifo, WAIT);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "cannot read {}: not a regular file",
            fifo.display()
        )),
        "{err}"
    );
    assert!(started.elapsed() < WAIT);
}

#[test]
fn directory_as_config_is_refused() {
    let dir = TempDir::new("dir");
    let out = check_path(dir.path(), START);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn file_without_entries_passes_warning_that_nothing_is_shared() {
    for text in [
        "",
        "# all commented out\n\n# 5800 /dev/ttyS1 115200,8,N,1\n",
    ] {
        let (out, path) = check(text);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{text:?}: {err}");
        assert!(
            err.contains(&format!(
                "warning: {path}: nothing shared (no entries): no port listens"
            )),
            "{text:?}: {err}"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("0 listeners, 0 devices"),
            "{text:?}"
        );
    }
}
