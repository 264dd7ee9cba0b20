//! Client mode (`modemd -l LINK URL`): a local tty whose line is a remote `rfc2217://` or
//! `socket://` line, met by the programs people use on a tty (pyserial, Taylor cu, chat,
//! stty) and served by modemd's own lines, sredird and ser2net.
//!
//! The device at the far end is the simulated modem, or a PTY whose master the test drives:
//! Linux lets the master read the slave's termios, which is how settings made on LINK are
//! seen arriving on the remote line. The first tests check the foreign servers with pyserial
//! alone, so that they are known good before the client meets them.

mod common;

use common::peers::{self, assert_exits_ok, serve_checks};
use common::*;

/// Sends `data` on the master of `pty` and reads it back as a client: pyserial through `url`
/// writes `hello`, the test checks it on the device and answers; then pyserial sets 9600
/// baud and two stop bits, which the test checks on the device's termios.
fn check_server_with_pyserial(pty: &Pty, url: &str) {
    let mut client = peers::spawn_python(&format!(
        r#"
import serial
s = serial.serial_for_url({url:?}, baudrate=115200, timeout=5)
def told(what):
    s.write(what + b"\n")
    got = s.read_until(b"ok\n")
    assert got.endswith(b"ok\n"), (what, got)
told(b"hello")
s.baudrate = 9600
told(b"baud 9600")
s.stopbits = 2
told(b"stop 2")
told(b"done")
s.close()
"#
    ));
    let seen = serve_checks(pty, &mut client.0, |line, pty| match line {
        "baud 9600" => assert_eq!(speed(&pty.termios()), libc::B9600, "{url}"),
        "stop 2" => assert_ne!(pty.termios().c_cflag & libc::CSTOPB, 0, "{url}"),
        _ => {}
    });
    assert_eq!(seen, ["hello", "baud 9600", "stop 2", "done"]);
    assert_exits_ok(&mut client.0, WAIT * 2);
}

/// What pyserial's open says without `ign_set_control`, where it waits for the answers to
/// its SET-CONTROL requests (at most 1 s: the `timeout` of the URL).
fn pyserial_open_error(url: &str) -> String {
    let out = peers::pyserial(
        &format!(
            r#"
import serial
try:
    serial.serial_for_url({url:?}, baudrate=115200, timeout=1).close()
    print("opened")
except Exception as e:
    print("failed:", e)
"#
        ),
        WAIT * 2,
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn fixture_sredird_serves_pyserial() {
    let pty = Pty::open().expect("pty");
    let server = peers::sredird(&pty.slave);
    let url = format!("rfc2217://{}", server.addr());
    // sredird's quirk: DTR ON (8) is answered with 1 (no flow control), which pyserial
    // rejects; the client mode must not.
    let said = pyserial_open_error(&format!("{url}?timeout=1"));
    assert!(
        said.contains("remote rejected value for option 'control'"),
        "pyserial against sredird: {said}"
    );
    assert!(pty.wait_hangup(WAIT), "sredird kept the device");
    check_server_with_pyserial(&pty, &format!("{url}?ign_set_control"));
}

#[test]
fn fixture_ser2net_serves_pyserial() {
    let pty = Pty::open().expect("pty");
    let server = peers::ser2net(&pty.slave);
    let url = format!("rfc2217://{}", server.addr());
    // ser2net's quirk: on a PTY it never answers DTR requests; pyserial times out.
    let said = pyserial_open_error(&format!("{url}?timeout=1"));
    assert!(
        said.contains("timeout while waiting for option 'control'"),
        "pyserial against ser2net: {said}"
    );
    assert!(pty.wait_hangup(WAIT), "ser2net kept the device");
    check_server_with_pyserial(&pty, &format!("{url}?ign_set_control"));
}

#[test]
fn fixture_modemd_rfc2217_line_serves_pyserial() {
    let pty = Pty::open().expect("pty");
    let (_d, addr) = one_device(&pty.slave, "rfc2217=on hangup=0", &[]);
    // modemd answers every SET-CONTROL: no option needed.
    check_server_with_pyserial(&pty, &format!("rfc2217://{addr}"));
}
