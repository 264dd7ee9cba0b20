//! Client mode (`modemd -l LINK URL`): a local tty whose line is a remote `rfc2217://` or
//! `socket://` line, met by the programs people use on a tty (pyserial, Taylor cu, chat,
//! stty) and served by modemd's own lines, sredird and ser2net.
//!
//! The device at the far end is the simulated modem, or a PTY whose master the test drives:
//! Linux lets the master read the slave's termios, which is how settings made on LINK are
//! seen arriving on the remote line. The first tests check the foreign servers with pyserial
//! alone, so that they are known good before the client meets them.

mod common;

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::peers::{self, Peer, assert_exits_ok, serve_checks};
use common::*;
use modemd::sys::{self, Interest};

/// The bound on a read ending once the server has gone (the contract: 2 s), longer under an
/// emulator.
fn hangup_bound() -> Duration {
    if emulated() {
        WAIT
    } else {
        Duration::from_secs(2)
    }
}

/// The bound on a setting made on LINK reaching the remote line (the contract: about
/// 100 ms; checked at 200 ms), longer under an emulator.
fn setting_bound() -> Duration {
    if emulated() {
        Duration::from_secs(1)
    } else {
        Duration::from_millis(200)
    }
}

/// A running `modemd -l LINK -n -d URL`, killed on drop, with LINK in a directory of its own.
struct Client {
    child: ChildGuard,
    log: LogLines,
    link: PathBuf,
    _dir: TempDir,
}

impl Client {
    /// Starts the client for `url` and waits until LINK exists, at most [`START`].
    fn start(url: &str) -> Client {
        Client::start_with(url, &[])
    }

    /// [`Client::start`] with `args` before the URL.
    fn start_with(url: &str, args: &[&std::ffi::OsStr]) -> Client {
        let dir = TempDir::new("client");
        // Named after its directory, unique: cu names its lock in /var/lock after it.
        let name = dir.path().file_name().expect("name").to_owned();
        let link = dir.path().join(name);
        let (child, log) = spawn_logging(
            modemd_command()
                .arg("-l")
                .arg(&link)
                .args(["-n", "-d"])
                .args(args)
                .arg(url)
                .stdout(Stdio::null()),
        );
        let mut client = Client {
            child,
            log,
            link,
            _dir: dir,
        };
        let up = wait_until(START, || {
            client.link.exists() || matches!(client.child.0.try_wait(), Ok(Some(_)))
        });
        assert!(
            up && client.link.exists(),
            "no {} from the client:\n{}",
            client.link.display(),
            client.log.all()
        );
        client
    }

    /// A client of modemd's line at `addr` (`rfc2217` or `socket`).
    fn of(scheme: &str, addr: SocketAddr) -> Client {
        Client::start(&format!("{scheme}://{addr}"))
    }

    fn link_str(&self) -> &str {
        self.link.to_str().expect("utf-8 link")
    }

    /// Where LINK points (a `/dev/pts/N`).
    fn target(&self) -> PathBuf {
        fs::read_link(&self.link).expect("LINK is a symlink")
    }

    /// Opens LINK as a program would, without making it a controlling tty.
    fn open(&self) -> Tty {
        Tty::open(&self.link)
    }

    fn pid(&self) -> i32 {
        self.child.0.id() as i32
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.0.try_wait().expect("try_wait");
            status.is_some()
        });
        status
    }
}

/// A program's hold on LINK: the slave of the client's PTY, opened `O_RDWR | O_NOCTTY`.
struct Tty(File);

impl Tty {
    fn open(link: &Path) -> Tty {
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(link)
            .unwrap_or_else(|e| panic!("open {}: {e}", link.display()));
        Tty(f)
    }

    fn write_all(&self, data: &[u8]) {
        (&self.0).write_all(data).expect("write to LINK");
    }

    /// One read of what is there within `timeout`: `Ok(bytes)` (empty when nothing came),
    /// `Err(None)` at end of file, `Err(Some(e))` on an error (EIO after a hang-up).
    fn read_some(&self, timeout: Duration) -> Result<Vec<u8>, Option<io::Error>> {
        let ready = sys::poll(&[(self.0.as_raw_fd(), Interest::Read)], Some(timeout))
            .map_or(Default::default(), |r| r[0]);
        if !ready.read && !ready.hangup {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; 64 * 1024];
        match (&self.0).read(&mut buf) {
            Ok(0) => Err(None),
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Vec::new()),
            Err(e) => Err(Some(e)),
        }
    }

    /// Reads until `needle` came or `timeout` passed (or the tty ended); all that came.
    fn read_until(&self, needle: &[u8], timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while !out.windows(needle.len()).any(|w| w == needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.read_some(left.min(Duration::from_millis(100))) {
                Ok(got) => out.extend(got),
                Err(_) => break,
            }
        }
        out
    }

    /// Sends an AT command and returns the answer up to `OK` (what came within [`WAIT`]).
    fn at(&self, cmd: &str) -> String {
        self.write_all(format!("{cmd}\r").as_bytes());
        String::from_utf8_lossy(&self.read_until(b"OK\r\n", WAIT)).into_owned()
    }

    /// Whether reads end (end of file, or an error such as EIO) within `timeout`; what was
    /// read before is discarded.
    fn wait_end(&self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("reads still go on after {timeout:?}"));
            }
            match self.read_some(left.min(Duration::from_millis(50))) {
                Err(None) => return Ok(()),
                Err(Some(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(()),
                Err(Some(e)) => return Err(format!("read failed with {e}, not EIO")),
                Ok(_) => {}
            }
        }
    }

    fn termios(&self) -> libc::termios {
        modemd::serial::termios::get(self.0.as_fd()).expect("tcgetattr on LINK")
    }
}

/// Whether `check` holds of the remote PTY's termios within [`setting_bound`]; the last
/// termios seen otherwise, for the message.
fn wait_termios(pty: &Pty, mut check: impl FnMut(&libc::termios) -> bool) -> Result<(), String> {
    let mut last = pty.termios();
    if wait_until(setting_bound(), || {
        last = pty.termios();
        check(&last)
    }) {
        Ok(())
    } else {
        Err(format!(
            "remote termios after {:?}: speed {} cflag {:o}",
            setting_bound(),
            speed(&last),
            last.c_cflag
        ))
    }
}

/// Runs a pyserial script to exit 0 within `timeout`; what it printed, else a panic with
/// everything it said.
fn python(script: &str, timeout: Duration) -> String {
    peers::pyserial_ok(script, timeout)
}

/// A server of `pty` checked with pyserial through `url`: it writes `hello`, which the test
/// reads on the device and answers; then it sets 9600 baud and two stop bits, which the test
/// checks on the device's termios.
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

/// `server`, a peer on `pty`, checked with pyserial alone: plain pyserial fails on the
/// peer's DTR quirk with `quirk`, and with `ign_set_control` it works.
fn check_peer_with_pyserial(server: &Peer, pty: &Pty, quirk: &str) {
    let url = format!("rfc2217://{}", server.addr());
    let said = pyserial_open_error(&format!("{url}?timeout=1"));
    assert!(said.contains(quirk), "pyserial: {said}");
    assert!(pty.wait_hangup(WAIT), "the peer kept the device");
    check_server_with_pyserial(pty, &format!("{url}?ign_set_control"));
}

#[test]
fn fixture_sredird_serves_pyserial() {
    let pty = Pty::open().expect("pty");
    let server = peers::sredird(&pty.slave);
    // sredird's quirk: DTR ON (8) is answered with 1 (no flow control), which pyserial
    // rejects; the client mode must not.
    check_peer_with_pyserial(&server, &pty, "remote rejected value for option 'control'");
}

#[test]
fn fixture_ser2net_serves_pyserial() {
    let pty = Pty::open().expect("pty");
    let server = peers::ser2net(&pty.slave);
    // ser2net's quirk: on a PTY it never answers DTR requests; pyserial times out.
    check_peer_with_pyserial(&server, &pty, "timeout while waiting for option 'control'");
}

#[test]
fn fixture_modemd_rfc2217_line_serves_pyserial() {
    let pty = Pty::open().expect("pty");
    let (_d, addr) = one_device(&pty.slave, "rfc2217=on hangup=0", &[]);
    // modemd answers every SET-CONTROL: no option needed.
    check_server_with_pyserial(&pty, &format!("rfc2217://{addr}"));
}

// ---- Client mode against modemd's own lines ----

/// The simulated modem on an `rfc2217=on` line, and a client of it.
fn sim_line() -> (Sim, Daemon, SocketAddr, Client) {
    let sim = Sim::start(&["-i", "Linux ISDN"]);
    let (d, addr) = one_device(&sim.device, "rfc2217=on hangup=0", &[]);
    let client = Client::of("rfc2217", addr);
    (sim, d, addr, client)
}

#[test]
fn link_starts_raw_at_115200_8n1_without_echo() {
    let (_sim, _d, _addr, client) = sim_line();
    let tty = client.open();
    let t = tty.termios();
    assert_eq!(speed(&t), libc::B115200, "speed");
    assert_eq!(t.c_cflag & libc::CSIZE, libc::CS8, "data bits");
    assert_eq!(
        t.c_cflag & (libc::PARENB | libc::CSTOPB),
        0,
        "parity, stop bits"
    );
    assert_eq!(
        t.c_lflag & (libc::ECHO | libc::ICANON | libc::ISIG),
        0,
        "not raw"
    );
    assert_eq!(t.c_oflag & libc::OPOST, 0, "output processing");
    assert_eq!(
        t.c_iflag & (libc::ICRNL | libc::IXON),
        0,
        "input processing"
    );
    // The PTY's default owner: the user the client runs as (the test's).
    let meta = fs::metadata(client.target()).expect("slave");
    // SAFETY: getuid takes nothing and cannot fail.
    assert_eq!(meta.uid(), unsafe { libc::getuid() }, "slave owner");
}

#[test]
fn pid_file_holds_the_clients_pid() {
    let dir = TempDir::new("client-pid");
    let pid_file = dir.join("modemd.pid");
    let port = free_port();
    let client = Client::start_with(
        &format!("socket://127.0.0.1:{port}"),
        &["-p".as_ref(), pid_file.as_os_str()],
    );
    let mut text = String::new();
    wait_until(WAIT, || {
        text = fs::read_to_string(&pid_file).unwrap_or_default();
        text.ends_with('\n')
    });
    assert_eq!(
        text.trim().parse::<i32>().ok(),
        Some(client.pid()),
        "{text:?}"
    );
}

#[test]
fn pyserial_opens_link_as_a_local_port_and_talks_to_the_modem() {
    let (_sim, _d, _addr, client) = sim_line();
    let said = python(
        &format!(
            r#"
import serial
s = serial.Serial({link:?}, 115200, timeout=5)
s.write(b"atz\r")
a = s.read_until(b"OK\r\n")
s.write(b"ati1\r")
b = s.read_until(b"OK\r\n")
print(repr(a), repr(b))
assert a.endswith(b"OK\r\n"), a
assert b"Linux ISDN" in b, b
s.close()
"#,
            link = client.link_str()
        ),
        WAIT * 3,
    );
    assert!(said.contains("Linux ISDN"), "{said}");
}

#[test]
fn cu_on_link_gets_the_modems_answer() {
    let (_sim, _d, _addr, client) = sim_line();
    // cu runs setuid uucp on Debian: let it open the PTY LINK points at.
    let slave = client.target();
    let mut perms = fs::metadata(&slave).expect("slave").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o666);
    fs::set_permissions(&slave, perms).expect("chmod slave");
    // cu names its lock in /var/lock after LINK's last component.
    let name = client.link.file_name().expect("name").to_string_lossy();
    let lock = Path::new("/var/lock").join(format!("LCK..{name}"));
    let (mut cu, term) = peers::cu(client.link_str());
    let mut seen = term.read_for(1 << 16, Duration::from_millis(500));
    let deadline = Instant::now() + WAIT * 2;
    let mut asked = Instant::now() - WAIT;
    while !String::from_utf8_lossy(&seen).contains("Linux ISDN") {
        assert!(
            Instant::now() < deadline,
            "cu showed: {:?}",
            String::from_utf8_lossy(&seen)
        );
        if asked.elapsed() > Duration::from_secs(1) {
            term.write_all(b"ati1\r");
            asked = Instant::now();
        }
        seen.extend(term.read_for(1 << 16, Duration::from_millis(50)));
    }
    assert!(lock.exists(), "cu holds LINK without {}", lock.display());
    // ~. hangs up; SIGTERM if it did not, which lets cu remove its lock too.
    term.write_all(b"\r~.\r");
    let exited = wait_until(WAIT, || matches!(cu.0.try_wait(), Ok(Some(_))));
    if !exited {
        // SAFETY: kill on our own child.
        unsafe { libc::kill(cu.0.id() as i32, libc::SIGTERM) };
    }
    assert!(
        wait_until(WAIT, || !lock.exists()),
        "cu left {}",
        lock.display()
    );
}

#[test]
fn chat_dials_through_link() {
    let (_sim, _d, _addr, client) = sim_line();
    let open = || {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(&client.link)
            .expect("open LINK")
    };
    let mut chat = ChildGuard(
        Command::new("/usr/sbin/chat")
            .args(["-v", "-t", "10", "", "ATZ", "OK", "ATD5551234", "CONNECT"])
            .stdin(Stdio::from(open()))
            .stdout(Stdio::from(open()))
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chat (Debian's ppp)"),
    );
    let done = wait_until(WAIT * 4, || matches!(chat.0.try_wait(), Ok(Some(_))));
    if !done {
        let _ = chat.0.kill();
    }
    let status = chat.0.wait().expect("wait chat");
    let mut said = String::new();
    let _ = chat
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut said);
    assert!(done && status.success(), "chat: {status}: {said}");
}

#[test]
fn pyserial_settings_on_link_reach_the_remote_line() {
    let pty = Pty::open().expect("pty");
    let (_d, addr) = one_device(&pty.slave, "rfc2217=on hangup=0", &[]);
    let client = Client::of("rfc2217", addr);
    let mut program = peers::spawn_python(&format!(
        r#"
import serial
s = serial.Serial({link:?}, 115200, timeout=5)
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
"#,
        link = client.link_str()
    ));
    let seen = serve_checks(&pty, &mut program.0, |line, pty| {
        let r = match line {
            "baud 9600" => wait_termios(pty, |t| speed(t) == libc::B9600),
            "stop 2" => wait_termios(pty, |t| t.c_cflag & libc::CSTOPB != 0),
            _ => Ok(()),
        };
        if let Err(e) = r {
            panic!("after {line}: {e}");
        }
    });
    assert_eq!(seen, ["hello", "baud 9600", "stop 2", "done"]);
    assert_exits_ok(&mut program.0, WAIT * 2);
}

#[test]
fn stty_on_link_reaches_the_remote_line() {
    let pty = Pty::open().expect("pty");
    let (_d, addr) = one_device(&pty.slave, "rfc2217=on hangup=0", &[]);
    let client = Client::of("rfc2217", addr);
    let tty = client.open();
    tty.write_all(b"!");
    assert_eq!(pty.read_for(1, WAIT), b"!", "not connected");
    assert_eq!(speed(&pty.termios()), libc::B115200);
    let out = run_bounded(
        Command::new("stty").args(["-F", client.link_str(), "9600", "cstopb"]),
        WAIT,
    );
    assert!(out.status.success(), "stty: {out:?}");
    wait_termios(&pty, |t| {
        speed(t) == libc::B9600 && t.c_cflag & libc::CSTOPB != 0
    })
    .unwrap();
    // And back, while the line stays up.
    let out = run_bounded(
        Command::new("stty").args(["-F", client.link_str(), "115200", "-cstopb"]),
        WAIT,
    );
    assert!(out.status.success(), "stty: {out:?}");
    wait_termios(&pty, |t| {
        speed(t) == libc::B115200 && t.c_cflag & libc::CSTOPB == 0
    })
    .unwrap();
    tty.write_all(b"?");
    assert_eq!(pty.read_for(1, WAIT), b"?", "the line went down");
}

#[test]
fn no_connection_while_nothing_holds_link_open() {
    let sim = Sim::start(&["-i", "Linux ISDN"]);
    let (d, addr) = one_device(&sim.device, "rfc2217=on hangup=0", &[]);
    let client = Client::of("rfc2217", addr);
    let lock = d.dir.join(&lock_name(&sim.device));
    // Nothing to wait for but time: a client that connected at start would have by now.
    thread::sleep(Duration::from_secs(1));
    assert!(!lock.exists(), "device locked with LINK closed");
    assert_eq!(established(addr.port()), 0, "{:?}", tcp_states(addr.port()));
    assert_eq!(d.log.count("session start"), 0, "{}", d.log.all());

    for round in 0..2 {
        let tty = client.open();
        assert!(
            wait_until(WAIT, || lock.exists()),
            "round {round}: opening LINK did not lock the device"
        );
        assert!(tty.at("atz").ends_with("OK\r\n"), "round {round}");
        drop(tty);
        assert!(
            d.dir.wait_unlocked(WAIT),
            "round {round}: closing LINK kept the device: {:?}",
            d.dir.locks()
        );
        assert!(
            wait_until(WAIT, || established(addr.port()) == 0),
            "round {round}: still connected: {:?}",
            tcp_states(addr.port())
        );
    }
}

// ---- Against servers nobody here wrote ----

/// The dialogue through LINK with the device a PTY the test answers on, and a baud change.
fn talk_through(server: &Peer, pty: &Pty) {
    let client = Client::of("rfc2217", server.addr());
    let tty = client.open();
    tty.write_all(b"atz\r");
    assert_eq!(pty.read_for(4, WAIT), b"atz\r", "to the device");
    pty.write_all(b"\r\nOK\r\n");
    assert!(
        tty.read_until(b"OK\r\n", WAIT).ends_with(b"OK\r\n"),
        "from the device"
    );
    let out = run_bounded(
        Command::new("stty").args(["-F", client.link_str(), "9600"]),
        WAIT,
    );
    assert!(out.status.success(), "stty: {out:?}");
    wait_termios(pty, |t| speed(t) == libc::B9600).unwrap();
    tty.write_all(b"still\r");
    assert_eq!(pty.read_for(6, WAIT), b"still\r", "after the change");
    // A second connection: the server's DTR quirk (no answer, or another value) was logged
    // at debug level the first time and is neither logged nor waited for again. Until the
    // server has let the device go (sredird's previous process, ser2net's close) it may
    // refuse the connection, which hangs LINK up: open again then.
    drop(tty);
    let deadline = Instant::now() + WAIT;
    loop {
        let tty = client.open();
        tty.write_all(b"again\r");
        if pty.read_for(6, Duration::from_millis(500)) == b"again\r" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no second connection:\n{}",
            client.log.all()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let quirks = client.log.count("SET-CONTROL 8");
    assert_eq!(
        quirks,
        1,
        "DTR quirk logged {quirks} times:\n{}",
        client.log.all()
    );
}

#[test]
fn sredird_through_link() {
    let pty = Pty::open().expect("pty");
    let server = peers::sredird(&pty.slave);
    talk_through(&server, &pty);
}

#[test]
fn ser2net_through_link() {
    let pty = Pty::open().expect("pty");
    let server = peers::ser2net(&pty.slave);
    talk_through(&server, &pty);
}

// ---- socket:// ----

#[test]
fn socket_url_sends_the_programs_bytes_and_nothing_else() {
    let pty = Pty::open().expect("pty");
    let (_d, addr) = one_device(&pty.slave, "hangup=0", &[]);
    let client = Client::of("socket", addr);
    let tty = client.open();
    // Anything a Telnet client says first (IAC ...) would come before these.
    tty.write_all(b"atz\r");
    assert_eq!(pty.read_for(4, WAIT), b"atz\r", "the device's first bytes");
    pty.write_all(b"\r\nOK\r\n\xff\xfb\x01");
    let got = tty.read_until(b"\xff\xfb\x01", WAIT);
    assert_eq!(got, b"\r\nOK\r\n\xff\xfb\x01", "what the program read");
    // And nothing later either: not even after a setting changes on LINK.
    let out = run_bounded(
        Command::new("stty").args(["-F", client.link_str(), "9600"]),
        WAIT,
    );
    assert!(out.status.success(), "stty: {out:?}");
    tty.write_all(b"x");
    assert_eq!(pty.read_for(64, Duration::from_millis(500)), b"x");
}

#[test]
fn socket_url_on_ipv6_loopback_connects_per_open() {
    let server = std::net::TcpListener::bind("[::1]:0").expect("bind [::1] (IPv6 loopback)");
    server.set_nonblocking(true).expect("nonblocking");
    let port = server.local_addr().expect("addr").port();
    let client = Client::start(&format!("socket://[::1]:{port}"));
    let accept = || {
        let mut got = None;
        wait_until(WAIT, || {
            got = server.accept().ok().map(|(s, _)| s);
            got.is_some()
        });
        got
    };
    // Nothing to wait for but time: a client that connected at start would have by now.
    thread::sleep(Duration::from_millis(500));
    assert!(server.accept().is_err(), "connected with LINK closed");
    for round in 0..2 {
        let tty = client.open();
        let mut conn = accept().unwrap_or_else(|| panic!("round {round}: no connection"));
        conn.set_nonblocking(false).expect("blocking");
        conn.set_read_timeout(Some(WAIT)).expect("timeout");
        tty.write_all(b"ping");
        assert_eq!(
            read_until(&mut conn, b"ping", WAIT),
            b"ping",
            "round {round}"
        );
        conn.write_all(b"pong").expect("write");
        assert_eq!(tty.read_until(b"pong", WAIT), b"pong", "round {round}");
        drop(tty);
        assert!(
            read_to_close(&mut conn, WAIT).is_some(),
            "round {round}: the last close did not disconnect"
        );
    }
}

// ---- Bulk data ----

/// 8 MiB each way at once between a program on LINK and the device, compared byte for byte.
fn eight_mib_both_ways(scheme: &str, options: &str) {
    const LEN: usize = 8 << 20;
    let pty = Pty::open().expect("pty");
    let (_d, addr) = one_device(&pty.slave, options, &[]);
    let client = Client::of(scheme, addr);
    let tty = client.open();
    tty.write_all(b"!");
    assert_eq!(pty.read_for(1, WAIT), b"!", "not connected");
    let up = random_bytes(LEN, 11);
    let down = random_bytes(LEN, 12);
    let budget = Duration::from_secs(if emulated() { 300 } else { 60 });

    let to_device = pty.write_in_background(down.clone());
    let writer = {
        let w = Tty(tty.0.try_clone().expect("dup tty"));
        let up = up.clone();
        thread::spawn(move || w.write_all(&up))
    };
    let reader = {
        let r = Tty(tty.0.try_clone().expect("dup tty"));
        thread::spawn(move || {
            let deadline = Instant::now() + budget;
            let mut got = Vec::with_capacity(LEN);
            while got.len() < LEN && Instant::now() < deadline {
                match r.read_some(Duration::from_millis(100)) {
                    Ok(b) => got.extend(b),
                    Err(_) => break,
                }
            }
            got
        })
    };
    let at_device = pty.read_for(LEN, budget);
    let at_program = reader.join().expect("reader");
    writer.join().expect("writer");
    to_device.join().expect("device writer");
    let first_diff = |a: &[u8], b: &[u8]| a.iter().zip(b).position(|(x, y)| x != y);
    assert!(
        at_device == up,
        "{scheme}: device got {} of {LEN} bytes, first difference at {:?}",
        at_device.len(),
        first_diff(&at_device, &up)
    );
    assert!(
        at_program == down,
        "{scheme}: program got {} of {LEN} bytes, first difference at {:?}",
        at_program.len(),
        first_diff(&at_program, &down)
    );
}

#[test]
fn eight_mib_both_ways_on_a_raw_line() {
    eight_mib_both_ways("socket", "hangup=0");
}

#[test]
fn eight_mib_both_ways_on_an_rfc2217_line() {
    eight_mib_both_ways("rfc2217", "rfc2217=on hangup=0");
}

// ---- The server going away, or not there yet ----

/// The server dies (`sig`) in mid-session: the program's reads end, LINK moves to a new PTY,
/// and once a new server listens on the same port the next open works.
fn server_dies_mid_session(sig: libc::c_int) {
    let sim = Sim::start(&["-i", "Linux ISDN"]);
    let (d, addr) = one_device(&sim.device, "rfc2217=on hangup=0", &[]);
    let client = Client::of("rfc2217", addr);
    let before = client.target();
    let tty = client.open();
    assert!(tty.at("atz").ends_with("OK\r\n"), "before");
    let mut d = d;
    d.signal(sig);
    let killed = Instant::now();
    if let Err(e) = tty.wait_end(hangup_bound()) {
        panic!("signal {sig} to the server: {e}\n{}", client.log.all());
    }
    let ended = killed.elapsed();
    assert!(d.wait_exit(WAIT).is_some(), "the server did not exit");
    assert!(
        wait_until(WAIT, || client.target() != before),
        "LINK still points at {} after {ended:?}",
        before.display()
    );
    drop(tty);
    // SIGKILL leaves the old server's lock; a new one in a directory of its own.
    assert!(sim.wait_hangups(1), "the sim saw no hang-up");
    let conf = config_entry(addr.port(), &sim.device, "rfc2217=on hangup=0");
    let _d2 = Daemon::builder(&conf).start();
    let tty = client.open();
    let answer = tty.at("ati1");
    assert!(
        answer.contains("Linux ISDN"),
        "after the new server: {answer:?}\n{}",
        client.log.all()
    );
}

#[test]
fn server_killed_mid_session_ends_reads_and_the_next_open_reconnects() {
    server_dies_mid_session(libc::SIGKILL);
}

#[test]
fn server_stopped_mid_session_ends_reads_and_the_next_open_reconnects() {
    server_dies_mid_session(libc::SIGTERM);
}

#[test]
fn a_program_that_opens_link_before_the_server_listens_gets_through() {
    let sim = Sim::start(&["-i", "Linux ISDN"]);
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let client = Client::of("rfc2217", addr);
    let tty = client.open();
    // The first connects are refused: nothing to wait for but time.
    thread::sleep(Duration::from_secs(1));
    let conf = config_entry(port, &sim.device, "rfc2217=on hangup=0");
    let _d = Daemon::builder(&conf).start();
    // Back-off: the next try may be some seconds away. Ask until the modem answers.
    let deadline = Instant::now() + Duration::from_secs(10) + WAIT;
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("OK\r\n") {
        assert!(
            Instant::now() < deadline,
            "no answer through LINK: {:?}\n{}",
            String::from_utf8_lossy(&seen),
            client.log.all()
        );
        tty.write_all(b"at\r");
        seen.extend(tty.read_until(b"OK\r\n", Duration::from_millis(500)));
    }
    assert!(tty.at("ati1").contains("Linux ISDN"));
}

// ---- The client's own end ----

#[test]
fn sigterm_removes_link_and_exits_0() {
    for (sig, held) in [
        (libc::SIGTERM, false),
        (libc::SIGTERM, true),
        (libc::SIGINT, true),
    ] {
        let sim = Sim::start(&["-i", "Linux ISDN"]);
        let (_d, addr) = one_device(&sim.device, "rfc2217=on hangup=0", &[]);
        let mut client = Client::of("rfc2217", addr);
        let tty = held.then(|| {
            let tty = client.open();
            assert!(tty.at("atz").ends_with("OK\r\n"));
            tty
        });
        client.signal(sig);
        let status = client.wait_exit(WAIT);
        assert!(
            status.is_some_and(|s| s.success()),
            "signal {sig} (LINK held: {held}): {status:?}\n{}",
            client.log.all()
        );
        assert!(
            fs::symlink_metadata(&client.link).is_err(),
            "signal {sig}: LINK left behind"
        );
        if let Some(tty) = tty {
            assert!(tty.wait_end(hangup_bound()).is_ok(), "reads go on");
        }
    }
}

/// What a program wrote and could not send, or left unread, is gone at its last close, as
/// a real port's close drops it: the next program's first bytes are its own.
#[test]
fn nothing_stale_reaches_the_next_program() {
    let pty = Pty::open().expect("pty");
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let client = Client::of("socket", addr);
    {
        // No server yet: these bytes wait in the PTY, then the program gives up once the
        // client has tried. (One that opens, writes and closes within the client's own
        // flush of the idle tty can leave its bytes behind: a known limit.)
        let tty = client.open();
        tty.write_all(b"stale\r");
        assert!(
            client.log.wait_for("cannot connect", WAIT).is_some(),
            "{}",
            client.log.all()
        );
    }
    let conf = config_entry(port, &pty.slave, "hangup=0");
    let _d = Daemon::builder(&conf).start();
    {
        let tty = client.open();
        tty.write_all(b"atz\r");
        assert_eq!(
            pty.read_for(4, WAIT),
            b"atz\r",
            "the device's first bytes:\n{}",
            client.log.all()
        );
        // The server speaks after the program stopped reading.
        pty.write_all(b"\r\nRING\r\n");
        thread::sleep(Duration::from_millis(200));
    }
    // The close is seen as the master's hang-up: an open at the same instant would continue
    // the connection, as one program.
    assert!(
        wait_until(WAIT, || established(port) == 0),
        "closing LINK kept the connection"
    );
    let tty = client.open();
    tty.write_all(b"at\r");
    assert_eq!(pty.read_for(3, WAIT), b"at\r");
    pty.write_all(b"OK\r\n");
    let got = tty.read_until(b"OK\r\n", WAIT);
    assert_eq!(
        got,
        b"OK\r\n",
        "the last program's unread bytes reached this one:\n{}",
        client.log.all()
    );
}

/// A server that asks Telnet questions without end and reads none of the answers: the
/// client stops answering at a bound and hangs the tty up, instead of growing or hanging.
#[test]
fn a_server_that_never_reads_the_answers_is_hung_up_on() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = Client::of("rfc2217", addr);
    let flood = thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return 0;
        };
        // IAC DO ECHO: refused with IAC WONT ECHO every time.
        let chunk = [255u8, 253, 1].repeat(10_000);
        s.set_write_timeout(Some(WAIT)).expect("timeout");
        let mut sent = 0usize;
        while sent < 64 << 20 {
            match io::Write::write(&mut s, &chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let tty = client.open();
    tty.wait_end(WAIT * 4)
        .unwrap_or_else(|e| panic!("{e}\n{}", client.log.all()));
    assert!(flood.join().expect("flood") > 64 * 1024);
    // The log is read from the client's stderr by a thread of its own: wait for the line.
    assert!(
        client
            .log
            .wait_for("server reads no answers", WAIT)
            .is_some(),
        "{}",
        client.log.all()
    );
    assert_eq!(client.log.count("server reads no answers"), 1);
}

/// A program that opens LINK after another closed it finds nothing the last one left
/// unread, and the settings it made are kept, as on a real port.
#[test]
fn a_quick_reopen_finds_a_clean_tty_with_the_same_settings() {
    let pty = Pty::open().expect("pty");
    let (_d, addr) = one_device(&pty.slave, "hangup=0", &[]);
    let client = Client::of("socket", addr);
    let out = run_bounded(
        Command::new("stty").args(["-F", client.link_str(), "57600"]),
        WAIT,
    );
    assert!(out.status.success(), "stty: {out:?}");
    for round in 0..5 {
        {
            let tty = client.open();
            tty.write_all(b"AT\r");
            assert_eq!(pty.read_for(3, WAIT), b"AT\r", "round {round}");
            pty.write_all(b"\r\nOK\r\n");
            // The answer reaches the tty, and the program leaves without reading it.
            thread::sleep(Duration::from_millis(200));
        }
        // The client sees the last close as the master's hang-up; a program that opens
        // LINK before that instant continues the same connection, as one program (known
        // limit). Once it is seen, the next program gets a clean tty.
        assert!(wait_until(WAIT, || established(addr.port()) == 0));
        let tty = client.open();
        assert_eq!(
            speed(&tty.termios()),
            libc::B57600,
            "round {round}: settings lost"
        );
        let stale = tty.read_until(b"OK", Duration::from_millis(500));
        assert!(
            stale.is_empty(),
            "round {round}: the last program's unread bytes: {stale:?}"
        );
        drop(tty);
        assert!(wait_until(WAIT, || established(addr.port()) == 0));
    }
}

/// A server that talks without end before any negotiation (a raw line named with
/// rfc2217://): the handshake still ends within its bound, the program's bytes go out, and
/// the client does not grow.
#[test]
fn a_server_that_never_stops_talking_cannot_stall_the_handshake() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = Client::of("rfc2217", addr);
    let heard = thread::spawn(move || {
        let Ok((s, _)) = listener.accept() else {
            return Vec::new();
        };
        let mut reader = s.try_clone().expect("clone");
        let talker = thread::spawn(move || {
            let mut s = s;
            s.set_write_timeout(Some(WAIT)).expect("timeout");
            let chunk = vec![b'y'; 64 * 1024];
            while io::Write::write_all(&mut s, &chunk).is_ok() {}
        });
        reader.set_read_timeout(Some(WAIT * 2)).expect("timeout");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"hi") {
            match io::Read::read(&mut reader, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = reader.shutdown(std::net::Shutdown::Both);
        let _ = talker.join();
        got
    });
    let tty = client.open();
    tty.write_all(b"hi");
    // The tty is read meanwhile, or the client would stall on its full buffers.
    let reading = thread::spawn(move || while tty.read_some(WAIT).is_ok() {});
    let got = heard.join().expect("server");
    assert!(got.ends_with(b"hi"), "the program's bytes never went out");
    let rss = fs::read_to_string(format!("/proc/{}/status", client.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    assert!(rss < 32 * 1024, "the client grew to {rss} KiB");
    let _ = reading.join();
}

/// LINK is ours to replace only if it is a link to a pseudo-terminal (an earlier run's):
/// not a udev link to a real port.
#[test]
fn link_to_a_real_device_is_not_taken_over() {
    let dir = TempDir::new("takeover");
    let link = dir.join("modem");
    std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
    let out = run_bounded(
        modemd_command()
            .arg("-l")
            .arg(&link)
            .args(["-n", "socket://127.0.0.1:9"]),
        WAIT,
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a link to a pseudo-terminal"),
        "{out:?}"
    );
    assert_eq!(fs::read_link(&link).expect("link"), Path::new("/dev/null"));
}
