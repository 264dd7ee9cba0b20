//! RFC 2217 on a line (DESIGN §4), against the clients people use: Debian's pyserial
//! (`rfc2217://`, as esptool and labgrid use it) and gensio's `gensiot`. The device is a PTY
//! whose master the test drives; Linux lets the master read the slave's termios, which is
//! how a client's settings are seen arriving on the line.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::peers::{self, assert_exits_ok, serve_checks};
use common::*;

/// A daemon sharing `device` with `rfc2217=MODE` (and `options`) on a fresh port.
fn rfc2217_line(device: &std::path::Path, mode: &str, options: &str) -> (Daemon, SocketAddr) {
    one_device(device, &format!("rfc2217={mode} hangup=0 {options}"), &[])
}

/// Runs a pyserial script with `URL` bound to the line's address; its output if it exits 0
/// within `timeout`, else a panic with everything it said.
fn pyserial(addr: SocketAddr, script: &str, timeout: Duration) -> String {
    peers::pyserial_ok(&format!("URL = 'rfc2217://{addr}'\n{script}"), timeout)
}

#[test]
fn pyserial_opens_within_a_second_and_does_the_seed_dialogue() {
    let sim = Sim::start(&["-i", "Linux ISDN"]);
    let (_d, addr) = rfc2217_line(&sim.device, "on", "");
    let said = pyserial(
        addr,
        r#"
import serial, time
t = time.monotonic()
s = serial.serial_for_url(URL, baudrate=115200, timeout=5)
opened = time.monotonic() - t
assert opened < 1.0, "open took %.2f s" % opened
s.write(b"atz\r")
a = s.read_until(b"OK\r\n")
s.write(b"ati1\r")
b = s.read_until(b"OK\r\n")
print(repr(a), repr(b))
assert a.endswith(b"OK\r\n"), a
assert b"Linux ISDN" in b, b
print(s.cd, s.cts, s.dsr, s.ri)
s.close()
"#,
        WAIT * 2,
    );
    assert!(said.contains("Linux ISDN"), "{said}");
}

fn spawn_python(addr: SocketAddr, script: &str) -> ChildGuard {
    peers::spawn_python(&format!("URL = 'rfc2217://{addr}'\n{script}"))
}

#[test]
fn pyserial_sets_speed_and_stop_bits_and_works_the_lines() {
    let pty = Pty::open().expect("pty");
    let (_d, addr) = rfc2217_line(&pty.slave, "on", "");
    let mut client = spawn_python(
        addr,
        r#"
import serial
s = serial.serial_for_url(URL, baudrate=115200, timeout=5)
def told(what):
    s.write(what + b"\n")
    assert s.read_until(b"ok\n").endswith(b"ok\n"), what
for b in (9600, 57600, 230400):
    s.baudrate = b
    told(b"baud %d" % b)
s.stopbits = 2
told(b"stop 2")
print(s.cd, s.cts, s.dsr, s.ri)
s.send_break(0.1)
s.reset_input_buffer()
s.reset_output_buffer()
s.dtr = False
s.dtr = True
s.rts = False
s.rts = True
told(b"done")
s.close()
"#,
    );
    let seen = serve_checks(&pty, &mut client.0, |line, pty| {
        let t = &pty.termios();
        if let Some(b) = line.strip_prefix("baud ") {
            let want = match b {
                "9600" => libc::B9600,
                "57600" => libc::B57600,
                _ => libc::B230400,
            };
            assert_eq!(speed(t), want, "after {line}");
        } else if line == "stop 2" {
            assert_ne!(t.c_cflag & libc::CSTOPB, 0, "two stop bits");
        }
    });
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_exits_ok(&mut client.0, WAIT * 2);
}

#[test]
fn fixed_lines_refuse_changes_and_keep_their_settings() {
    let pty = Pty::open().expect("pty");
    let (_d, addr) = rfc2217_line(&pty.slave, "fixed", "");
    let mut client = spawn_python(
        addr,
        r#"
import serial
s = serial.serial_for_url(URL, baudrate=115200, timeout=5)
try:
    s.baudrate = 9600
    raise SystemExit("a fixed line accepted 9600")
except (ValueError, serial.SerialException) as e:
    print("refused:", e)
s.write(b"done\n")
assert s.read_until(b"ok\n").endswith(b"ok\n")
"#,
    );
    serve_checks(&pty, &mut client.0, |_, pty| {
        assert_eq!(
            speed(&pty.termios()),
            libc::B115200,
            "a fixed line changed speed"
        );
    });
    assert_exits_ok(&mut client.0, WAIT * 2);
}

/// Echoes what the device is sent, until the slave is closed for good.
fn echo(pty: &Pty) -> thread::JoinHandle<()> {
    echo_master(pty.master.try_clone().expect("dup master"))
}

#[test]
fn every_byte_value_and_8_mib_pass_both_ways() {
    let pty = Pty::open().expect("pty");
    let (_d, addr) = rfc2217_line(&pty.slave, "on", "");
    let _echo = echo(&pty);
    pyserial(
        addr,
        r#"
import serial, threading, random
s = serial.serial_for_url(URL, baudrate=115200, timeout=10)
every = bytes(range(256)) * 4
s.write(every)
got = s.read(len(every))
assert got == every, "every byte value: %d of %d back" % (len(got), len(every))
rnd = random.Random(7)
data = bytes(rnd.getrandbits(8) for _ in range(8 << 20))
back = bytearray()
def reader():
    while len(back) < len(data):
        chunk = s.read(min(65536, len(data) - len(back)))
        if not chunk:
            break
        back.extend(chunk)
r = threading.Thread(target=reader)
r.start()
for i in range(0, len(data), 65536):
    s.write(data[i:i + 65536])
r.join(120)
assert bytes(back) == data, "8 MiB: %d bytes back, first difference at %s" % (
    len(back), next((i for i, (a, b) in enumerate(zip(back, data)) if a != b), None))
print("ok")
"#,
        Duration::from_secs(150),
    );
}

#[test]
fn gensio_moves_data_both_ways() {
    let pty = Pty::open().expect("pty");
    let (_d, addr) = rfc2217_line(&pty.slave, "on", "");
    let _echo = echo(&pty);
    let mut child = ChildGuard(
        Command::new("gensiot")
            .arg(format!("telnet(rfc2217),tcp,{},{}", addr.ip(), addr.port()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run gensiot (Debian's gensio-bin)"),
    );
    let mut stdin = child.0.stdin.take().expect("stdin");
    let rx = first_line(child.0.stdout.take().expect("stdout"));
    stdin.write_all(b"hello through gensio\n").expect("write");
    let line = rx.recv_timeout(WAIT * 2).expect("no echo through gensiot");
    assert_eq!(line, "hello through gensio\n");
}

#[test]
fn malformed_telnet_ends_nothing_but_its_own_session() {
    let pty = Pty::open().expect("pty");
    let other = Pty::open().expect("pty");
    let (port, other_port) = (free_port(), free_port());
    let conf = format!(
        "{}{}",
        config_entry(port, &pty.slave, "rfc2217=on hangup=0"),
        config_entry(other_port, &other.slave, "hangup=0"),
    );
    let other_addr = SocketAddr::from(([127, 0, 0, 1], other_port));
    let d = Daemon::builder(&conf).start();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let garbage: [&[u8]; 6] = [
        b"\xff\xfa\x2c\x01",         // truncated IAC SB
        b"\xff\xfb\x99\xff\xfd\x98", // unknown options
        &[0xfa; 3000],               // data
        b"\xff\xfa\x2c\x0a",         // an SB that never ends...
        &[0x41; 5000],               // ...oversized
        b"\xff",                     // IAC at the end of a read
    ];
    for round in 0..3 {
        let mut c = connect(addr);
        for g in garbage {
            let _ = c.write_all(g);
            thread::sleep(Duration::from_millis(5));
        }
        drop(c);
        assert!(pty.wait_hangup(WAIT), "round {round}: session kept");
    }
    // What the rounds sent as data is read; then the daemon still serves, both lines.
    pty.read_for(1 << 20, Duration::from_millis(300));
    let mut c = connect(addr);
    c.write_all(b"\xff\xfd\x00still here").expect("write");
    assert_eq!(pty.read_for(10, WAIT), b"still here");
    let _raw = session(&other, other_addr);
    drop(d);
}

/// Every command is answered: a client that sends commands and never reads must not make
/// the daemon hold its answers without end. Its session ends, and the daemon stays small.
#[test]
fn a_client_that_never_reads_its_answers_is_let_go() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = rfc2217_line(&pty.slave, "on", "");
    let c = connect(addr);
    c.set_write_timeout(Some(WAIT)).expect("timeout");
    // SET-LINESTATE-MASK 0, over and over: answered without touching the line.
    let burst: Vec<u8> = b"\xff\xfa\x2c\x0a\x00\xff\xf0".repeat(64 * 1024);
    let deadline = Instant::now() + WAIT * 6;
    let mut sent = 0usize;
    let mut w = &c;
    while Instant::now() < deadline && sent < 256 << 20 {
        match w.write_all(&burst) {
            Ok(()) => sent += burst.len(),
            Err(_) => break,
        }
    }
    assert!(
        d.log.wait_for("client reads no answers", WAIT).is_some(),
        "after {sent} bytes of commands:\n{}",
        d.log.all()
    );
    assert!(d.rss_kib() < 16 * 1024, "RSS {} KiB", d.rss_kib());
}

/// A read full of Telnet BREAKs (a quarter second each) does not keep the session once its
/// client has gone, nor the device from the next client.
#[test]
fn a_flood_of_breaks_ends_with_its_client() {
    let pty = Pty::open().expect("pty");
    let (d, addr) = rfc2217_line(&pty.slave, "on", "");
    let mut c = connect(addr);
    c.write_all(&b"\xff\xf3".repeat(400)).expect("write");
    thread::sleep(Duration::from_millis(300));
    drop(c);
    let ended = Instant::now();
    assert!(
        d.log.wait_for("session end", WAIT).is_some(),
        "400 breaks outlived their client:\n{}",
        d.log.all()
    );
    assert!(
        ended.elapsed() < Duration::from_secs(3),
        "{:?}",
        ended.elapsed()
    );
    let _next = session(&pty, addr);
}
