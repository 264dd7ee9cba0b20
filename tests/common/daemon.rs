//! The programs under test as child processes: modemd (behind `MODEMD_LAUNCHER` if set),
//! modem-sim, and any command run to completion; all killed and reaped on drop, all waited
//! for with a bound.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{START, TempDir, WAIT, config_entry, free_port, wait_until};

fn bin(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// The modemd binary under test.
pub fn modemd_bin() -> PathBuf {
    bin("MODEMD_BIN", env!("CARGO_BIN_EXE_modemd"))
}

/// Whether the daemon runs under an emulator (`MODEMD_LAUNCHER`): then its memory figures
/// are the emulator's, and only native runs check them.
pub fn emulated() -> bool {
    std::env::var("MODEMD_LAUNCHER").is_ok_and(|l| !l.trim().is_empty())
}

/// A program path that runs modemd when exec'd directly (by inetd or tcpd): the binary, or
/// under an emulator a small script in `dir` that runs it behind `MODEMD_LAUNCHER`.
pub fn modemd_program(dir: &Path) -> PathBuf {
    if !emulated() {
        return modemd_bin();
    }
    let launcher = std::env::var("MODEMD_LAUNCHER").unwrap_or_default();
    let script = dir.join("modemd");
    let text = format!(
        "#!/bin/sh\nexec {launcher} {} \"$@\"\n",
        modemd_bin().display()
    );
    fs::write(&script, text).expect("write launcher script");
    let mut perms = fs::metadata(&script).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    fs::set_permissions(&script, perms).expect("chmod launcher script");
    script
}

/// A command running modemd (behind `MODEMD_LAUNCHER` if set).
pub fn modemd_command() -> Command {
    let launcher = std::env::var("MODEMD_LAUNCHER").unwrap_or_default();
    let mut words = launcher.split_whitespace();
    match words.next() {
        Some(first) => {
            let mut c = Command::new(first);
            c.args(words).arg(modemd_bin());
            c
        }
        None => Command::new(modemd_bin()),
    }
}

/// Log lines a child wrote to stderr, collected by a thread.
#[derive(Clone, Default)]
pub struct LogLines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl LogLines {
    /// Collects the lines of `stream` (a child's stderr) from now on.
    pub fn of(stream: impl Read + Send + 'static) -> LogLines {
        let lines = LogLines::default();
        let collected = lines.clone();
        thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("MODEMD_TEST_VERBOSE").is_some() {
                    eprintln!("{line}");
                }
                let (m, c) = &*collected.0;
                m.lock().unwrap().push(line);
                c.notify_all();
            }
        });
        lines
    }

    /// The first line containing `needle` that appears within `timeout`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (m, c) = &*self.0;
        let mut lines = m.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            lines = c.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// How many lines contain `needle` now.
    pub fn count(&self, needle: &str) -> usize {
        self.0
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn all(&self) -> String {
        self.0.0.lock().unwrap().join("\n")
    }
}

/// Spawns `cmd` with no input and its stderr collected as its log.
pub fn spawn_logging(cmd: &mut Command) -> (ChildGuard, LogLines) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let log = LogLines::of(child.stderr.take().expect("stderr"));
    (ChildGuard(child), log)
}

/// A running modemd child in the foreground (`-n`), killed on drop.
pub struct Daemon {
    pub child: ChildGuard,
    pub log: LogLines,
    pub dir: TempDir,
    pub config: PathBuf,
}

/// How to start a [`Daemon`]: `Daemon::builder(config_text)`, then what differs from the
/// defaults, then `start()`.
pub struct DaemonBuilder<'a> {
    config_text: &'a str,
    dir: Option<TempDir>,
    lock_dir: Option<&'a Path>,
    args: &'a [&'a str],
    env: &'a [(&'a str, &'a str)],
    fd_limit: Option<u64>,
}

impl Daemon {
    /// A daemon on `config_text`, by default with its config file and locks in a fresh temp
    /// dir, no further arguments and the test's environment.
    pub fn builder(config_text: &str) -> DaemonBuilder<'_> {
        DaemonBuilder {
            config_text,
            dir: None,
            lock_dir: None,
            args: &[],
            env: &[],
            fd_limit: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.0.id() as i32
    }

    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the child to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.0.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Number of threads of the daemon (from /proc).
    pub fn threads(&self) -> usize {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("Threads line")
    }

    /// Number of open descriptors of the daemon.
    pub fn fds(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("fd dir")
            .count()
    }

    /// VmRSS in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }
}

impl<'a> DaemonBuilder<'a> {
    /// Where the config file goes (and the locks, unless [`DaemonBuilder::lock_dir`]); the
    /// daemon owns it from then on.
    pub fn dir(mut self, dir: TempDir) -> Self {
        self.dir = Some(dir);
        self
    }

    /// Another lock directory (e.g. the system's, to meet `cu`).
    pub fn lock_dir(mut self, lock_dir: &'a Path) -> Self {
        self.lock_dir = Some(lock_dir);
        self
    }

    /// Arguments after `-n -c CONFIG -L LOCKDIR`.
    pub fn args(mut self, args: &'a [&'a str]) -> Self {
        self.args = args;
        self
    }

    /// Variables added to the daemon's environment.
    pub fn env(mut self, env: &'a [(&'a str, &'a str)]) -> Self {
        self.env = env;
        self
    }

    /// Starts the daemon with `RLIMIT_NOFILE` at `n` (as `prlimit --nofile=n` would).
    pub fn fd_limit(mut self, n: u64) -> Self {
        self.fd_limit = Some(n);
        self
    }

    /// Starts modemd and waits until every listener is up (one `listening on` line per
    /// pool), at most [`START`].
    pub fn start(self) -> Daemon {
        let dir = self.dir.unwrap_or_else(|| TempDir::new("d"));
        let lock_dir = self.lock_dir.unwrap_or(dir.path()).to_owned();
        let config = dir.join("modemd.conf");
        fs::write(&config, self.config_text).expect("write config");
        let mut cmd = modemd_command();
        if let Some(n) = self.fd_limit {
            let limit = libc::rlimit {
                rlim_cur: n as libc::rlim_t,
                rlim_max: n as libc::rlim_t,
            };
            // SAFETY: between fork and exec only setrlimit runs, which is async-signal-safe
            // and takes a pointer to a value the closure owns.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let (child, log) = spawn_logging(
            cmd.arg("-n")
                .arg("-c")
                .arg(&config)
                .arg("-L")
                .arg(&lock_dir)
                .args(self.args)
                .envs(self.env.iter().copied())
                .stdout(Stdio::null()),
        );
        let d = Daemon {
            child,
            log,
            dir,
            config,
        };
        let pools = {
            let mut seen = Vec::new();
            for l in self.config_text.lines() {
                let l = l.split('#').next().unwrap_or("");
                if let Some(first) = l.split_whitespace().next() {
                    if !seen.contains(&first) {
                        seen.push(first);
                    }
                }
            }
            seen.len()
        };
        let deadline = Instant::now() + START;
        while d.log.count("listening on") < pools {
            assert!(
                Instant::now() < deadline,
                "modemd did not start:\n{}",
                d.log.all()
            );
            thread::sleep(Duration::from_millis(10));
        }
        d
    }
}

/// The two ways modemd opens a device, as the environment that selects each: through
/// serialport, and with plain open(2) and termios (what qemu-user and old kernels get).
pub const OPEN_PATHS: [(&str, &[(&str, &str)]); 2] = [
    ("serialport", &[]),
    ("plain termios", &[("MODEMD_PLAIN_TERMIOS", "1")]),
];

/// A daemon sharing `device` alone on a fresh loopback port (see [`config_entry`] for
/// `options`), with `args` on its command line; and the address to connect to.
pub fn one_device(device: &Path, options: &str, args: &[&str]) -> (Daemon, SocketAddr) {
    let port = free_port();
    let conf = config_entry(port, device, options);
    (
        Daemon::builder(&conf).args(args).start(),
        SocketAddr::from(([127, 0, 0, 1], port)),
    )
}

/// A running simulated modem (`modem-sim`), killed on drop.
pub struct Sim {
    pub child: ChildGuard,
    pub device: PathBuf,
    /// What it logs: `line up` and `hang-up (slave closed)` as it sees the device side.
    pub log: LogLines,
}

impl Sim {
    /// Starts modem-sim with extra arguments and reads the PTY path it prints.
    pub fn start(args: &[&str]) -> Sim {
        let (mut child, log) = spawn_logging(
            Command::new(bin("MODEM_SIM_BIN", env!("CARGO_BIN_EXE_modem-sim")))
                .args(args)
                .stdout(Stdio::piped()),
        );
        let line = first_line(child.0.stdout.take().expect("stdout"))
            .recv_timeout(WAIT)
            .expect("modem-sim printed no PTY line");
        let device = PathBuf::from(
            line.trim()
                .strip_prefix("PTY ")
                .unwrap_or_else(|| panic!("unexpected modem-sim output {line:?}")),
        );
        Sim { child, device, log }
    }

    /// Waits until the simulator has seen `n` hang-ups in all (a pty has no DTR: the modem
    /// learns of the hang-up by seeing the device closed, and must before the next call).
    pub fn wait_hangups(&self, n: usize) -> bool {
        wait_until(WAIT, || self.log.count("hang-up") >= n)
    }
}

/// The first line `out` gives, read by a thread: wait for it with a bound.
pub fn first_line(out: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx
}

/// Runs `cmd` to completion, at most `timeout` (then kills it and panics); returns its output.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: out_t.join().expect("stdout reader"),
        stderr: err_t.join().expect("stderr reader"),
    }
}

/// Whether process `pid` is gone (or a zombie nobody reaps) within `timeout`.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    wait_until(timeout, || {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let state = status
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .unwrap_or("");
        status.is_empty() || state.trim_start().starts_with('Z')
    })
}

/// The uid and gid lines of a process, as four numbers each (real, effective, saved, fs).
pub fn ids_of(pid: i32) -> (String, String) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let get = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .expect("id line")
    };
    (get("Uid:"), get("Gid:"))
}

/// A child process that is killed and reaped on drop, whatever way a test ends.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
