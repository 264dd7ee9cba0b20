//! `modemd -t`: exit 0 for valid files; exit 1 with `FILE:LINE: message` for each kind of
//! mistake, all of a file's mistakes in one run.

mod common;

use std::fs;
use std::process::Output;

use common::*;

fn check(text: &str) -> (Output, String) {
    let dir = TempDir::new("check");
    let path = dir.join("modemd.conf");
    fs::write(&path, text).expect("write");
    let out = modemd_command()
        .arg("-t")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("run modemd -t");
    (out, path.display().to_string())
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
    assert_valid(&text, "3 listeners, 4 devices");
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
    let out = modemd_command()
        .args(["-t", "-c", "/nonexistent/modemd.conf"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/modemd.conf"));
}
