//! modemd as a Unix daemon: detaching with a pid file written after binding, syslog,
//! refusing a second start, a clear failure when a port is taken, and `-u`.

mod common;

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use common::*;

/// Only one test at a time may own /dev/log.
static DEV_LOG: Mutex<()> = Mutex::new(());

/// A syslog socket at /dev/log for the length of a test (this machine runs no syslogd).
struct Syslog(UnixDatagram);

impl Syslog {
    fn bind() -> Option<Syslog> {
        let path = Path::new("/dev/log");
        if path.exists() {
            // A real syslog daemon owns it; we cannot capture without disturbing it.
            return None;
        }
        let sock = UnixDatagram::bind(path).expect("bind /dev/log (tests run as root)");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        Some(Syslog(sock))
    }

    fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        while std::time::Instant::now() < deadline {
            if let Ok(n) = self.0.recv(&mut buf) {
                let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                if line.contains(needle) {
                    return Some(line);
                }
            }
        }
        None
    }
}

/// A daemon that is not our child: killed by PID if the test ends early.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill by PID; at worst the process is already gone (ESRCH).
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

impl Drop for Syslog {
    fn drop(&mut self) {
        let _ = fs::remove_file("/dev/log");
    }
}

#[test]
fn daemon_mode_pid_file_syslog_and_sigterm() {
    let _guard = DEV_LOG.lock().unwrap_or_else(|p| p.into_inner());
    let syslog = Syslog::bind();
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("daemon");
    let port = free_port();
    let conf = dir.join("modemd.conf");
    fs::write(&conf, config_line(port, &pty.slave)).expect("write config");
    let pid_file = dir.join("modemd.pid");
    let start = || {
        let mut cmd = modemd_command();
        cmd.arg("-c")
            .arg(&conf)
            .arg("-L")
            .arg(dir.path())
            .arg("-p")
            .arg(&pid_file);
        run_bounded(&mut cmd, Duration::from_secs(10))
    };
    // The starting process returns only once the daemon is up.
    let out = start();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: i32 = fs::read_to_string(&pid_file)
        .expect("pid file exists when modemd returns")
        .trim()
        .parse()
        .expect("pid");
    let _daemon = KillOnDrop(pid);
    assert!(!wait_gone(pid, Duration::ZERO), "daemon not running");
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert!(
        String::from_utf8_lossy(&cmdline).contains("modemd"),
        "pid file names another program"
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut c = connect(addr);
    c.write_all(b"up").expect("write");
    assert_eq!(pty.read_for(2, WAIT), b"up", "daemon does not serve");
    drop(c);

    if let Some(log) = &syslog {
        // facility daemon (3) * 8 + info (6) = 30; ident modemd with the daemon's PID.
        let line = log.wait_for("listening on", WAIT).expect("no syslog line");
        assert!(line.starts_with("<30>"), "{line}");
        assert!(
            line.contains(&format!("modemd[{pid}]: listening on 127.0.0.1:{port}")),
            "{line}"
        );
        assert!(
            log.wait_for("session end", WAIT).is_some(),
            "session not logged to syslog"
        );
    } else {
        eprintln!("note: /dev/log belongs to a syslog daemon here; syslog lines not checked");
    }

    // A second start with the same pid file is refused and leaves the first alone.
    let again = start();
    assert_eq!(again.status.code(), Some(1));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains(&format!("already running as process {pid}")),
        "{err}"
    );
    assert!(!wait_gone(pid, Duration::ZERO));

    // SAFETY: kill on a PID we just read from our own daemon's pid file.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert!(
        wait_gone(pid, Duration::from_secs(2)),
        "daemon still alive after SIGTERM"
    );
    assert!(!pid_file.exists(), "pid file left after SIGTERM");
    assert!(dir.locks().is_empty());
}

#[test]
fn a_port_in_use_fails_start_up_naming_the_port() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let dir = TempDir::new("inuse");
    let conf = dir.join("modemd.conf");
    fs::write(
        &conf,
        format!("127.0.0.1:{port} /dev/ttyS9 9600,8,N,1 127.0.0.1\n"),
    )
    .expect("w");
    for foreground in [true, false] {
        let mut cmd = modemd_command();
        if foreground {
            cmd.arg("-n");
        }
        cmd.arg("-c").arg(&conf).arg("-p").arg(dir.join("pid"));
        let out = run_bounded(&mut cmd, Duration::from_secs(10));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "started on a taken port");
        assert!(
            err.contains(&format!("cannot listen on 127.0.0.1:{port}")) && err.contains("in use"),
            "foreground={foreground}: {err}"
        );
        assert!(
            !dir.join("pid").exists(),
            "pid file written although start failed"
        );
    }
}

#[test]
fn dash_u_drops_to_the_user_after_binding() {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: not root; -u cannot be tested here");
        return;
    }
    let pty = Pty::open().expect("pty");
    fs::set_permissions(&pty.slave, fs::Permissions::from_mode(0o666)).expect("chmod pty");
    let dir = TempDir::new("user");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).expect("chmod dir");
    // Port below 1024: only root can bind it, so serving proves "bind, then drop".
    let port = (600..1000).find(|&p| port_bindable(p)).expect("port");
    let conf = config_line(port, &pty.slave);
    let d = Daemon::builder(&conf)
        .dir(dir)
        .args(&["-u", "nobody"])
        .start();
    let (uid, gid) = ids_of(d.pid());
    assert_eq!(uid, "65534 65534 65534 65534");
    assert_eq!(gid, "65534 65534 65534 65534");
    // Root's supplementary groups are gone: only nobody's own group (the daemon reads
    // /etc/group itself, as initgroups would).
    let status = fs::read_to_string(format!("/proc/{}/status", d.pid())).expect("status");
    let groups = status.lines().find_map(|l| l.strip_prefix("Groups:"));
    assert_eq!(groups.map(str::trim), Some("65534"), "{status}");
    // Sessions now lock and open as nobody.
    let mut c = connect(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_reaches(&mut c, &pty, b"hi", "no session as nobody");
    let lock = d.dir.join(&lock_name(&pty.slave));
    let meta = fs::metadata(&lock).expect("lock");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);
}

#[test]
fn a_dead_log_reader_costs_no_session() {
    // Under procd or systemd with -n, stderr is a pipe; if its reader dies, writes fail with
    // EPIPE. Logging must shrug that off.
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("epipe");
    let port = free_port();
    let conf = dir.join("modemd.conf");
    fs::write(&conf, config_line(port, &pty.slave)).expect("write config");
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe just returned these descriptors; we own them.
    let (reader, writer) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    drop(reader);
    let _d = ChildGuard(
        modemd_command()
            .arg("-n")
            .arg("-c")
            .arg(&conf)
            .arg("-L")
            .arg(dir.path())
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(writer))
            .spawn()
            .expect("spawn"),
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // No log to tell when it listens: connect until it does, as long as a start may take.
    let deadline = std::time::Instant::now() + START;
    for round in 0..3 {
        let mut c = loop {
            match std::net::TcpStream::connect(addr) {
                Ok(c) => break c,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("modemd never listened: {e}"),
            }
        };
        assert_reaches(
            &mut c,
            &pty,
            b"ok",
            &format!("round {round}: session lost to logging"),
        );
        drop(c);
        assert!(dir.wait_unlocked(WAIT), "round {round}: lock left");
    }
}

#[test]
fn line_options_without_a_device_are_a_usage_error() {
    let dir = TempDir::new("usage");
    let conf = dir.join("modemd.conf");
    fs::write(&conf, "127.0.0.1:1 /dev/ttyS9 9600,8,N,1 127.0.0.1\n").expect("w");
    for flag in ["-o", "-s"] {
        let value = if flag == "-o" {
            "hangup=0"
        } else {
            "9600,8,N,1"
        };
        let out = run_bounded(
            modemd_command()
                .args(["-n", "-c"])
                .arg(&conf)
                .args([flag, value]),
            Duration::from_secs(10),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {err}");
        assert!(err.contains("go with a DEVICE"), "{flag}: {err}");
    }
}
