//! inetd mode: the seed's own setup through Debian's openbsd-inetd and tcpd, and modemd
//! handed an accepted socket on descriptor 0 with a config file.

mod common;

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const INETD: &str = "/usr/sbin/inetd";
const TCPD: &str = "/usr/sbin/tcpd";
const SYSTEM_LOCKS: &str = "/var/lock";

#[test]
fn seed_setup_through_openbsd_inetd_and_tcpd() {
    assert!(
        Path::new(INETD).exists() && Path::new(TCPD).exists(),
        "needs Debian's openbsd-inetd and tcpd (.ci/run installs them)"
    );
    let sim = Sim::start(&["-i", "Linux ISDN"]);
    let dir = TempDir::new("inetd");
    let port = free_port();
    // The mini-HOWTO's line, on a loopback port: inetd runs tcpd, tcpd runs modemd DEVICE.
    let conf = dir.join("inetd.conf");
    fs::write(
        &conf,
        format!(
            "127.0.0.1:{port} stream tcp nowait root {TCPD} {} {}\n",
            modemd_program(dir.path()).display(),
            sim.device.display()
        ),
    )
    .expect("write inetd.conf");
    // openbsd-inetd in the foreground (-d -i) on a private config.
    let (_inetd, log) = spawn_logging(
        Command::new(INETD)
            .args(["-d", "-i"])
            .arg(&conf)
            .stdout(Stdio::null()),
    );
    assert!(
        log.wait_for(&format!("ADD: 127.0.0.1:{port}"), WAIT)
            .is_some(),
        "{}",
        log.all()
    );

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut first = connect(addr);
    assert_eq!(at(&mut first, "atz"), "atz\r\r\nOK\r\n");
    assert_eq!(at(&mut first, "ati1"), "ati1\r\r\nLinux ISDN\r\n\r\nOK\r\n");
    let lock = Path::new(SYSTEM_LOCKS).join(lock_name(&sim.device));
    assert!(
        lock.exists(),
        "no lock in {SYSTEM_LOCKS} during the session"
    );

    assert_busy(addr, "second client");
    assert!(
        at(&mut first, "ati1").contains("Linux ISDN"),
        "first client disturbed"
    );

    drop(first);
    assert!(
        wait_until(WAIT, || !lock.exists()),
        "lock left after the inetd session"
    );
}

/// Runs modemd with an accepted connection on descriptors 0-2, as inetd does.
fn inetd_child(args: &[&str], conf: Option<&Path>) -> (TcpStream, std::process::Child) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = connect(addr);
    let (server_side, _) = listener.accept().expect("accept");
    let fd = std::os::fd::OwnedFd::from(server_side);
    let mut cmd = modemd_command();
    if let Some(conf) = conf {
        cmd.arg("-c").arg(conf);
    }
    let child = cmd
        .args(args)
        .stdin(Stdio::from(fd.try_clone().expect("dup")))
        .stdout(Stdio::from(fd.try_clone().expect("dup")))
        .stderr(Stdio::from(fd))
        .spawn()
        .expect("spawn modemd");
    (client, child)
}

fn wait_child(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    None
}

#[test]
fn config_mode_serves_the_entries_of_the_local_port_and_hangs_up() {
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("inetdc");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    // The socket handed over is on some other port: no entry must match it...
    let conf = dir.join("modemd.conf");
    fs::write(
        &conf,
        format!("{port} {} 115200,8,N,1 127.0.0.1\n", pty.slave.display()),
    )
    .expect("write");
    let (mut c, mut child) = inetd_child(&["-L", dir.path().to_str().expect("utf-8")], Some(&conf));
    assert_eq!(read_to_close(&mut c, WAIT), Some(Vec::new()));
    assert_eq!(wait_child(&mut child).map(|s| s.code()), Some(Some(1)));

    // ...while a bare-port entry for the right port serves it.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    fs::write(
        &conf,
        format!(
            "{} {} 115200,8,N,1 127.0.0.1\n",
            addr.port(),
            pty.slave.display()
        ),
    )
    .expect("write");
    let mut c = connect(addr);
    let (server_side, _) = listener.accept().expect("accept");
    let fd = std::os::fd::OwnedFd::from(server_side);
    let mut child = modemd_command()
        .arg("-c")
        .arg(&conf)
        .arg("-L")
        .arg(dir.path())
        .stdin(Stdio::from(fd.try_clone().expect("dup")))
        .stdout(Stdio::from(fd.try_clone().expect("dup")))
        .stderr(Stdio::from(fd))
        .spawn()
        .expect("spawn");
    c.write_all(b"ATZ\r").expect("write");
    assert_eq!(pty.read_for(4, WAIT), b"ATZ\r");
    pty.write_all(b"OK");
    assert_eq!(
        read_until(&mut c, b"OK", WAIT),
        b"OK",
        "only device bytes reach the client"
    );
    assert_eq!(dir.locks(), [lock_name(&pty.slave)]);
    drop(c);
    assert_eq!(wait_child(&mut child).map(|s| s.success()), Some(true));
    assert!(pty.wait_hangup(WAIT));
    assert_eq!(dir.lock_files(), Vec::<String>::new(), "lock files left");
}

#[test]
fn device_mode_session_ends_when_the_client_leaves_and_on_sigterm() {
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("inetdd");
    let dev = pty.slave.to_str().expect("utf-8").to_owned();
    let locks = dir.path().to_str().expect("utf-8").to_owned();
    let (mut c, mut child) = inetd_child(&["-L", &locks, "-s", "9600,8,N,1", &dev], None);
    c.write_all(b"x").expect("write");
    assert_eq!(pty.read_for(1, WAIT), b"x");
    // SAFETY: kill on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_child(&mut child).map(|s| s.success()), Some(true));
    assert_eq!(
        read_to_close(&mut c, WAIT),
        Some(Vec::new()),
        "client not hung up"
    );
    assert_eq!(
        dir.lock_files(),
        Vec::<String>::new(),
        "lock files left after SIGTERM"
    );
}

#[test]
fn device_mode_takes_line_options_with_dash_o() {
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("inetdo");
    let dev = pty.slave.to_str().expect("utf-8").to_owned();
    let locks = dir.path().to_str().expect("utf-8").to_owned();
    let (mut c, mut child) = inetd_child(&["-L", &locks, "-o", "flow=rtscts,hangup=0", &dev], None);
    c.write_all(b"x").expect("write");
    assert_eq!(pty.read_for(1, WAIT), b"x");
    let t = pty.termios();
    assert_ne!(
        t.c_cflag & libc::CRTSCTS,
        0,
        "no RTS/CTS with -o flow=rtscts"
    );
    assert_eq!(t.c_iflag & (libc::IXON | libc::IXOFF), 0);
    drop(c);
    assert_eq!(wait_child(&mut child).map(|s| s.success()), Some(true));

    // A bad -o is refused before anything is opened: nothing the client sends gets through.
    let (mut c, mut child) = inetd_child(&["-L", &locks, "-o", "flow=cts", &dev], None);
    let _ = c.write_all(b"y");
    assert_eq!(read_to_close(&mut c, WAIT), Some(Vec::new()));
    assert_eq!(wait_child(&mut child).map(|s| s.code()), Some(Some(1)));
    assert_eq!(
        pty.read_for(1, Duration::from_millis(200)),
        b"",
        "device opened"
    );
}

/// `-o rfc2217=on`: inetd mode speaks RFC 2217 as a daemon's line does.
#[test]
fn device_mode_speaks_rfc2217_with_dash_o() {
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("inetd2217");
    let dev = pty.slave.to_str().expect("utf-8").to_owned();
    let locks = dir.path().to_str().expect("utf-8").to_owned();
    let (mut c, mut child) = inetd_child(&["-L", &locks, "-o", "rfc2217=on,hangup=0", &dev], None);
    // The greeting: WILL BINARY, DO BINARY, WILL SGA, DO COM-PORT-OPTION.
    let greeting = read_until(&mut c, b"\xff\xfd\x2c", WAIT);
    assert!(greeting.ends_with(b"\xff\xfd\x2c"), "{greeting:?}");
    // SET-BAUDRATE 9600, answered (code + 100) with the speed in force.
    c.write_all(b"\xff\xfa\x2c\x01\x00\x00\x25\x80\xff\xf0")
        .expect("write");
    let answer = b"\xff\xfa\x2c\x65\x00\x00\x25\x80\xff\xf0";
    let got = read_until(&mut c, answer, WAIT);
    assert!(got.ends_with(answer), "{got:?}");
    assert_eq!(
        // SAFETY: cfgetospeed reads the termios passed by reference.
        unsafe { libc::cfgetospeed(&pty.termios()) },
        libc::B9600
    );
    drop(c);
    assert_eq!(wait_child(&mut child).map(|s| s.success()), Some(true));
}
