//! Other programs the tests talk to: Debian's pyserial, the RFC 2217 client DESIGN §4 must
//! satisfy "exactly as shipped by Debian"; and the RFC 2217 servers nobody here wrote that
//! client mode meets, sredird (behind socat as its inetd) and ser2net 4.

use std::fs;
use std::io::Read;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use modemd::sys;

use super::{
    ChildGuard, LogLines, Pty, PtyExt, START, TempDir, WAIT, free_port, listening, run_bounded,
    spawn_logging, wait_until,
};

/// Debian's `/usr/bin/python3`, where python3-serial is installed; a `python3` first on PATH
/// (pyenv) lacks it. Without the variables that would point it at another Python's library.
pub fn python3() -> Command {
    let mut c = Command::new("/usr/bin/python3");
    c.env_remove("PYTHONHOME").env_remove("PYTHONPATH");
    c
}

/// Runs `script` under [`python3`], at most `timeout` (then kills it and panics).
pub fn pyserial(script: &str, timeout: Duration) -> Output {
    run_bounded(python3().arg("-c").arg(script), timeout)
}

/// Starts a Python program `script` under [`python3`] with its output piped, for a test that
/// talks to it while it runs (see [`serve_checks`]).
pub fn spawn_python(script: &str) -> ChildGuard {
    ChildGuard(
        python3()
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python3"),
    )
}

/// Everything a finished (or killed) child wrote.
pub fn said(child: &mut Child) -> String {
    let _ = child.wait();
    let mut said = String::new();
    if let Some(out) = child.stdout.as_mut() {
        let _ = out.read_to_string(&mut said);
    }
    if let Some(err) = child.stderr.as_mut() {
        let _ = err.read_to_string(&mut said);
    }
    said
}

/// Waits for `child` to exit 0, at most `timeout`; panics with what it said otherwise.
pub fn assert_exits_ok(child: &mut Child, timeout: Duration) {
    let ok = wait_until(timeout, || matches!(child.try_wait(), Ok(Some(_))));
    if !ok {
        let _ = child.kill();
    }
    let said = said(child);
    assert!(ok, "client still running: {said}");
    let status = child.try_wait().ok().flatten();
    assert!(status.is_some_and(|s| s.success()), "client failed: {said}");
}

/// What the test says back to a client on the device side, line by line, while checking
/// the line: the client tells what it just set, `check` looks at the PTY (its termios) and
/// the test answers `ok`. If `client` has not told `done` by the deadline, it is killed and
/// what it said shown.
pub fn serve_checks(
    pty: &Pty,
    client: &mut Child,
    mut check: impl FnMut(&str, &Pty),
) -> Vec<String> {
    let master = pty.master.try_clone().expect("dup master");
    let mut seen = Vec::new();
    let mut pending = Vec::new();
    let deadline = Instant::now() + WAIT * 4;
    loop {
        if Instant::now() >= deadline || matches!(client.try_wait(), Ok(Some(_))) {
            let _ = client.kill();
            let said = said(client);
            panic!("checks did not finish: {seen:?}; the client said: {said}");
        }
        let got = pty.read_for(1, Duration::from_millis(100));
        pending.extend_from_slice(&got);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).trim().to_owned();
            check(&line, pty);
            let _ = sys::write(master.as_fd(), b"ok\n");
            let done = line == "done";
            seen.push(line);
            if done {
                return seen;
            }
        }
    }
}

/// A server process group (the server and whatever it forks), ended on drop: SIGTERM, then
/// SIGKILL for what is left.
pub struct Peer {
    pub child: ChildGuard,
    pub log: LogLines,
    pub port: u16,
    pub dir: TempDir,
}

impl Peer {
    /// Starts `cmd` in a process group of its own and waits until something listens on
    /// 127.0.0.1:`port`, at most [`START`].
    fn start(cmd: &mut Command, port: u16, dir: TempDir) -> Peer {
        let (child, log) = spawn_logging(cmd.process_group(0).stdout(Stdio::null()));
        let mut peer = Peer {
            child,
            log,
            port,
            dir,
        };
        let up = wait_until(START, || {
            listening(port) || matches!(peer.child.0.try_wait(), Ok(Some(_)))
        });
        assert!(
            up && listening(port),
            "{cmd:?} is not listening on {port}:\n{}",
            peer.log.all()
        );
        peer
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The pid of the process group leader (socat, ser2net).
    pub fn pid(&self) -> i32 {
        self.child.0.id() as i32
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: kill takes no pointers; the group is this peer's own.
        unsafe { libc::kill(-self.pid(), libc::SIGTERM) };
        let pid = self.pid();
        if !wait_until(Duration::from_millis(500), || {
            matches!(self.child.0.try_wait(), Ok(Some(_)))
        }) {
            // SAFETY: as above.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        // SAFETY: as above; also ends the session children a fork listener left behind.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

/// Debian's sredird (an RFC 2217 server run per connection by inetd, the connection on its
/// stdin and stdout) behind socat as the inetd: `socat TCP-LISTEN:PORT,bind=127.0.0.1,
/// reuseaddr,fork EXEC:'/usr/sbin/sredird 5 DEVICE LOCKFILE',nofork`. `nofork` makes socat
/// exec sredird on the accepted socket itself, as inetd would (without it sredird would get a
/// socketpair to socat). Its argv: `sredird [-i] LOG-LEVEL DEVICE LOCKFILE [POLL-INTERVAL]`;
/// the lock file goes to a directory of the test's own.
///
/// Quirk: sredird answers a SET-CONTROL DTR ON (8) with 1 (no flow control), so pyserial's
/// open fails with "remote rejected value for option 'control'" unless the URL says
/// `?ign_set_control`.
pub fn sredird(device: &Path) -> Peer {
    let port = free_port();
    let dir = TempDir::new("sredird");
    let lock = dir.join(&format!(
        "LCK..{}",
        device.file_name().expect("device name").to_string_lossy()
    ));
    let exec = format!(
        "EXEC:{SREDIRD} 5 {} {},nofork",
        device.display(),
        lock.display()
    );
    Peer::start(
        Command::new(SOCAT)
            .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
            .arg(exec),
        port,
        dir,
    )
}

pub const SREDIRD: &str = "/usr/sbin/sredird";
pub const SOCAT: &str = "/usr/bin/socat";
pub const SER2NET: &str = "/usr/sbin/ser2net";

/// Debian's ser2net 4 sharing `device` with RFC 2217 (gensio's `telnet(rfc2217)` filter on
/// the accepter) on a fresh loopback port, in the foreground (`-n -d`), on a YAML file of its
/// own (`-c`, so not /etc/ser2net/ser2net.yaml), with its own pid file (`-P`) and no UUCP
/// locks (`-u`, as a killed ser2net would leave them in /var/lock). The YAML:
///
/// ```yaml
/// connection: &line
///   accepter: telnet(rfc2217),tcp,127.0.0.1,PORT
///   connector: serialdev,/dev/pts/N,115200n81,local
/// ```
///
/// Quirk: on a PTY ser2net never answers a SET-CONTROL DTR request, so pyserial's open waits
/// for the answer and fails ("timeout while waiting for option 'control'") unless the URL
/// says `?ign_set_control`.
pub fn ser2net(device: &Path) -> Peer {
    let port = free_port();
    let dir = TempDir::new("ser2net");
    let yaml = dir.join("ser2net.yaml");
    fs::write(
        &yaml,
        format!(
            "%YAML 1.1\n---\nconnection: &line\n  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}\n  \
             connector: serialdev,{},115200n81,local\n",
            device.display()
        ),
    )
    .expect("write ser2net.yaml");
    let pid = dir.join("ser2net.pid");
    Peer::start(
        Command::new(SER2NET)
            .args(["-n", "-d", "-u", "-c"])
            .arg(&yaml)
            .arg("-P")
            .arg(&pid),
        port,
        dir,
    )
}

/// Runs a pyserial `script` that must exit 0 within `timeout`: what it printed (stdout, then
/// stderr), else a panic with everything it said.
pub fn pyserial_ok(script: &str, timeout: Duration) -> String {
    let out = pyserial(script, timeout);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pyserial failed: {said}");
    said
}

/// Taylor `cu -l LINE -s 115200` on a terminal of its own: the PTY whose master the test
/// types into and reads what cu shows.
pub fn cu(line: &str) -> (ChildGuard, Pty) {
    let term = Pty::open().expect("pty");
    let tty = || {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&term.slave)
            .expect("tty")
    };
    let cu = ChildGuard(
        Command::new("/usr/bin/cu")
            .args(["-l", line, "-s", "115200"])
            .stdin(Stdio::from(tty()))
            .stdout(Stdio::from(tty()))
            .stderr(Stdio::from(tty()))
            .spawn()
            .expect("spawn cu"),
    );
    (cu, term)
}
