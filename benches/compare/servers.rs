//! The servers compared: how each is found, configured, started on a set of devices, watched
//! through `/proc`, and stopped.
//!
//! Every server runs in a process group of its own (socat's forked children included), so
//! that its CPU and memory are summed over all of its processes and one signal ends it all.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{TempDir, config_entry, free_port, run_bounded};
use crate::device::Device;
use crate::procs::{self, Mem};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Modemd,
    Ser2net,
    Ser2netTuned,
    Socat,
    Floor,
    /// modemd on an `rfc2217=on` line: the RFC 2217 table only.
    ModemdRfc2217,
    /// ser2net tuned with a `telnet(rfc2217)` accepter: the RFC 2217 table only.
    Ser2netRfc2217,
    /// Client mode's table (`compare/client.rs`), not servers but what a program on the
    /// client host uses to reach a line: `modemd -l LINK socket://` to a raw modemd line,
    ClientSocket,
    /// `modemd -l LINK rfc2217://` to an `rfc2217=on` line,
    ClientRfc2217,
    /// and `socat PTY,link=LINK,raw,echo=0 TCP:…` to a raw line, as people do today.
    ClientSocat,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Modemd,
        Kind::Ser2net,
        Kind::Ser2netTuned,
        Kind::Socat,
        Kind::Floor,
    ];

    /// The RFC 2217 table's servers: modemd's raw line first, every ratio is to it.
    pub const TELNET: [Kind; 3] = [Kind::Modemd, Kind::ModemdRfc2217, Kind::Ser2netRfc2217];

    /// Client mode's table: the two modemd clients, then socat, every ratio is to it.
    pub const CLIENTS: [Kind; 3] = [Kind::ClientSocket, Kind::ClientRfc2217, Kind::ClientSocat];

    /// The line a client of client mode's table reaches; a server is its own line.
    pub fn line(self) -> Kind {
        match self {
            Kind::ClientSocket | Kind::ClientSocat => Kind::Modemd,
            Kind::ClientRfc2217 => Kind::ModemdRfc2217,
            k => k,
        }
    }

    /// Whether the server speaks Telnet to its clients.
    pub fn telnet(self) -> bool {
        matches!(self, Kind::ModemdRfc2217 | Kind::Ser2netRfc2217)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Modemd => "modemd",
            Kind::Ser2net => "ser2net",
            Kind::Ser2netTuned => "ser2net tuned",
            Kind::Socat => "socat",
            Kind::Floor => "C relay",
            Kind::ModemdRfc2217 => "modemd rfc2217",
            Kind::Ser2netRfc2217 => "ser2net tuned telnet(rfc2217)",
            Kind::ClientSocket => "modemd -l socket://",
            Kind::ClientRfc2217 => "modemd -l rfc2217://",
            Kind::ClientSocat => "socat PTY",
        }
    }

    /// What the server does when a session ends, as the disconnect table shows it.
    pub fn after_session(self) -> &'static str {
        match self {
            Kind::Modemd | Kind::ModemdRfc2217 => {
                "default `hangup=500`: drops DTR, keeps the device open and locked 500 ms \
                 discarding what it says, flushes its input, frees it; a client arriving \
                 meanwhile waits for it"
            }
            Kind::Ser2net | Kind::Ser2netTuned | Kind::Ser2netRfc2217 => {
                "no hang-up hold: closes the device when the client goes; one client per port, \
                 a client arriving while the port is still in use is refused"
            }
            Kind::Socat => {
                "cannot hold or refuse: fork mode opens the device in a new process per client \
                 and takes no lock (`-t 0`: a session's process ends at once when its client \
                 goes), so two clients may share the device and nobody is ever told `busy`"
            }
            Kind::Floor => {
                "no hold, no lock: closes the device when the client goes; a client arriving \
                 while the port still has a session is accepted and closed at once"
            }
            Kind::ClientSocket | Kind::ClientRfc2217 => {
                "disconnects at the last close of LINK, so the server frees the line"
            }
            Kind::ClientSocat => "stays connected from its start to its end, LINK open or not",
        }
    }
}

/// What modemd does with a device after a session. The other servers have no such option:
/// they close the device at once, whatever it still says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hangup {
    /// `hangup=0`: freed at once, like the others, so that measurements which reconnect
    /// (connects, and the next measurement after each session) do not wait 500 ms each time.
    Free,
    /// The line's default hold (500 ms): the disconnect table, which is about that hold.
    Hold,
}

impl Hangup {
    /// The option word for modemd's config line.
    fn option(self) -> &'static str {
        match self {
            Hangup::Free => "hangup=0",
            Hangup::Hold => "",
        }
    }
}

/// Where each server's program is, and what it is.
pub struct Tools {
    pub modemd: PathBuf,
    pub ser2net: Option<PathBuf>,
    pub socat: Option<PathBuf>,
    pub relay: PathBuf,
    /// One line per tool: version or why it is skipped.
    pub notes: Vec<String>,
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn first_line(cmd: &mut Command) -> String {
    let out = run_bounded(cmd, Duration::from_secs(5));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.lines()
        .find(|l| l.contains("version"))
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// Whether an ELF file asks for a program interpreter (dynamically linked).
fn is_dynamic(path: &Path) -> Option<bool> {
    let b = fs::read(path).ok()?;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return None;
    }
    let u = |o: usize, n: usize| -> u64 {
        let mut v = 0u64;
        for i in (0..n).rev() {
            v = (v << 8) | u64::from(b[o + i]);
        }
        v
    };
    let (phoff, phentsize, phnum) = (u(32, 8) as usize, u(54, 2) as usize, u(56, 2) as usize);
    Some((0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u(o, 4) == 3 // PT_INTERP
    }))
}

impl Tools {
    /// Finds the servers and builds the C relay into `target/bench-floor/`.
    pub fn discover() -> Tools {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let static_build = root.join("dist/x86_64-unknown-linux-musl/modemd");
        let (modemd, why) = if let Some(p) = std::env::var_os("MODEMD_BIN") {
            (PathBuf::from(p), "MODEMD_BIN")
        } else if static_build.is_file() {
            (static_build, "static build in dist/")
        } else {
            (
                PathBuf::from(env!("CARGO_BIN_EXE_modemd")),
                "cargo's build; no dist/x86_64-unknown-linux-musl/modemd",
            )
        };
        let linkage = match is_dynamic(&modemd) {
            Some(true) => "dynamically linked",
            Some(false) => "statically linked",
            None => "linkage unknown",
        };
        let mut notes = vec![format!("modemd: {} ({why}; {linkage})", modemd.display())];

        let ser2net = which("ser2net");
        match &ser2net {
            Some(p) => notes.push(format!(
                "ser2net: {}",
                first_line(Command::new(p).arg("-v"))
            )),
            None => notes.push(
                "ser2net: NOT INSTALLED, skipped (`apt-get install -y ser2net`; `make bench` does it)"
                    .into(),
            ),
        }
        let socat = which("socat");
        match &socat {
            Some(p) => notes.push(format!("socat: {}", first_line(Command::new(p).arg("-V")))),
            None => notes.push(
                "socat: NOT INSTALLED, skipped (`apt-get install -y socat`; `make bench` does it)"
                    .into(),
            ),
        }

        let out_dir = root.join("target/bench-floor");
        fs::create_dir_all(&out_dir).expect("create target/bench-floor");
        let relay = out_dir.join("relay");
        let src = root.join("benches/floor/relay.c");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let out = run_bounded(
            Command::new(&cc)
                .args(["-O2", "-Wall", "-o"])
                .arg(&relay)
                .arg(&src),
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "{cc} -O2 {} failed:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        notes.push(format!(
            "C relay: benches/floor/relay.c, {} -O2 ({})",
            cc,
            String::from_utf8_lossy(
                &run_bounded(Command::new(&cc).arg("--version"), Duration::from_secs(5)).stdout
            )
            .lines()
            .next()
            .unwrap_or("")
        ));
        Tools {
            modemd,
            ser2net,
            socat,
            relay,
            notes,
        }
    }

    /// The servers of `kinds` that can run here, in that order.
    pub fn available(&self, kinds: &[Kind]) -> Vec<Kind> {
        kinds
            .iter()
            .copied()
            .filter(|k| match k {
                Kind::Ser2net | Kind::Ser2netTuned | Kind::Ser2netRfc2217 => self.ser2net.is_some(),
                Kind::Socat | Kind::ClientSocat => self.socat.is_some(),
                _ => true,
            })
            .collect()
    }
}

/// Process groups of running servers, so a panic or the watchdog can end them all.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Notes a process group to kill with every server's (a client of client mode's table).
pub fn track(pgid: i32) {
    GROUPS.lock().unwrap_or_else(|p| p.into_inner()).push(pgid);
}

/// Forgets a process group that ended.
pub fn untrack(pgid: i32) {
    GROUPS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&g| g != pgid);
}

/// Kills every running server (from the panic hook and the watchdog).
pub fn kill_all() {
    let groups = GROUPS.lock().unwrap_or_else(|p| p.into_inner());
    for &g in groups.iter() {
        // SAFETY: kill takes no pointers; `g` is a process group we created.
        unsafe { libc::kill(-g, libc::SIGKILL) };
    }
}

/// A running server exporting some devices, one port each; stopped on drop.
pub struct Server {
    pub kind: Kind,
    pub ports: Vec<u16>,
    pgid: i32,
    children: Vec<Child>,
    dir: TempDir,
    /// The names of the devices (UUCP lock names) and where the server's locks go, if it locks.
    names: Vec<String>,
    lock_dir: Option<PathBuf>,
}

const SETTLE: Duration = Duration::from_secs(10);

impl Server {
    /// Starts `kind` exporting `devices` on fresh loopback ports (retrying on other ports if a
    /// port was taken meanwhile); `hangup` applies to modemd only.
    pub fn start(
        kind: Kind,
        tools: &Tools,
        devices: &[&Device],
        hangup: Hangup,
    ) -> Result<Server, String> {
        let mut last = String::new();
        for _ in 0..3 {
            let ports: Vec<u16> = devices.iter().map(|_| free_port()).collect();
            match Server::try_start(kind, tools, devices, ports, hangup) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn try_start(
        kind: Kind,
        tools: &Tools,
        devices: &[&Device],
        ports: Vec<u16>,
        hangup: Hangup,
    ) -> Result<Server, String> {
        let dir = TempDir::new("cmp");
        let pairs: Vec<(u16, &Path)> = ports
            .iter()
            .copied()
            .zip(devices.iter().map(|d| d.path()))
            .collect();
        let mut commands = Vec::new();
        let mut lock_dir = None;
        match kind {
            Kind::Modemd | Kind::ModemdRfc2217 => {
                let conf = dir.join("modemd.conf");
                let options = match kind {
                    Kind::ModemdRfc2217 => format!("{} rfc2217=on", hangup.option()),
                    _ => hangup.option().to_owned(),
                };
                let text: String = pairs
                    .iter()
                    .map(|(p, d)| config_entry(*p, d, options.trim_start()))
                    .collect();
                fs::write(&conf, text).map_err(|e| e.to_string())?;
                let mut c = Command::new(&tools.modemd);
                c.arg("-n").arg("-c").arg(&conf).arg("-L").arg(dir.path());
                commands.push(c);
                lock_dir = Some(dir.path().to_owned());
            }
            Kind::Ser2net | Kind::Ser2netTuned | Kind::Ser2netRfc2217 => {
                let yaml = dir.join("ser2net.yaml");
                fs::write(&yaml, ser2net_yaml(&pairs, kind)).map_err(|e| e.to_string())?;
                let mut c = Command::new(tools.ser2net.as_ref().expect("ser2net"));
                c.arg("-n")
                    .arg("-c")
                    .arg(&yaml)
                    .arg("-P")
                    .arg(dir.join("pid"));
                commands.push(c);
                lock_dir = Some(PathBuf::from("/var/lock"));
            }
            Kind::Socat => {
                for (p, d) in &pairs {
                    let mut c = Command::new(tools.socat.as_ref().expect("socat"));
                    // -t 0: by default a session's process keeps the device (reading it!) for
                    // 0.5 s after its client left; the bench waits for the device to be free
                    // before the next client, so that would only make the run longer.
                    c.arg("-t")
                        .arg("0")
                        .arg(format!(
                            "TCP-LISTEN:{p},bind=127.0.0.1,reuseaddr,fork,nodelay"
                        ))
                        .arg(format!("FILE:{},raw,echo=0", d.display()));
                    commands.push(c);
                }
            }
            Kind::ClientSocket | Kind::ClientRfc2217 | Kind::ClientSocat => {
                return Err(format!("{} is a client, not a server", kind.name()));
            }
            Kind::Floor => {
                let mut c = Command::new(&tools.relay);
                c.args(pairs.iter().map(|(p, d)| format!("{p}={}", d.display())));
                commands.push(c);
            }
        }
        let log = dir.join("log");
        let mut children = Vec::new();
        let mut pgid = 0;
        for mut c in commands {
            let err = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| e.to_string())?;
            c.stdin(Stdio::null())
                .stdout(err.try_clone().map_err(|e| e.to_string())?)
                .stderr(err)
                .process_group(pgid);
            let child = c.spawn().map_err(|e| format!("{}: {e}", kind.name()))?;
            if pgid == 0 {
                pgid = child.id() as i32;
                track(pgid);
            }
            children.push(child);
        }
        let mut server = Server {
            kind,
            ports,
            pgid,
            children,
            dir,
            names: devices.iter().map(|d| d.name()).collect(),
            lock_dir,
        };
        let deadline = Instant::now() + SETTLE;
        loop {
            if procs::listening(&server.ports).len() == server.ports.len() {
                return Ok(server);
            }
            let died = server
                .children
                .iter_mut()
                .any(|c| matches!(c.try_wait(), Ok(Some(_))));
            if died || Instant::now() >= deadline {
                let log = fs::read_to_string(server.dir.join("log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(format!(
                    "{} did not start ({}): {}",
                    kind.name(),
                    if died { "exited" } else { "not listening" },
                    tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn addrs(&self) -> Vec<std::net::SocketAddr> {
        self.ports
            .iter()
            .map(|&p| std::net::SocketAddr::from(([127, 0, 0, 1], p)))
            .collect()
    }

    /// The server's live processes (socat forks one per session).
    pub fn pids(&self) -> Vec<i32> {
        if self.kind == Kind::Socat {
            procs::group_members(self.pgid)
        } else {
            vec![self.pgid]
        }
    }

    pub fn memory(&self) -> Mem {
        procs::memory(&self.pids())
    }

    pub fn cpu_ns(&self) -> u64 {
        procs::cpu_ns(&self.pids())
    }

    /// Waits until the server has closed `dev` and dropped its lock on it, so the next client
    /// finds it free; false if that takes longer than `timeout`.
    pub fn wait_released(&self, dev: &Device, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let lock = self
            .lock_dir
            .as_ref()
            .map(|d| d.join(format!("LCK..{}", dev.name())));
        loop {
            let held = procs::holds(&self.pids(), dev.path())
                || lock
                    .as_ref()
                    .is_some_and(|l| procs::lock_owner(l).is_some_and(|pid| pid == self.pgid));
            if !held {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill takes no pointers; the group is ours.
        unsafe { libc::kill(-self.pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline
            && self
                .children
                .iter_mut()
                .any(|c| matches!(c.try_wait(), Ok(None)))
        {
            thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: as above; also ends socat's session children.
        unsafe { libc::kill(-self.pgid, libc::SIGKILL) };
        for c in &mut self.children {
            let _ = c.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while !procs::group_members(self.pgid).is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        untrack(self.pgid);
        // A killed ser2net leaves the locks of its sessions behind: remove ours only.
        if let (Kind::Ser2net | Kind::Ser2netTuned | Kind::Ser2netRfc2217, Some(dir)) =
            (self.kind, &self.lock_dir)
        {
            for n in &self.names {
                let l = dir.join(format!("LCK..{n}"));
                if procs::lock_owner(&l) == Some(self.pgid) {
                    let _ = fs::remove_file(l);
                }
            }
        }
    }
}

/// ser2net 4.3's YAML: raw TCP on 127.0.0.1, the device at 115200 8N1 without modem control
/// (`local`); tuned adds `chardelay: false` and 16 KiB buffers (the defaults: 1 ms or more
/// of waiting after device data, 64-byte buffers); the RFC 2217 kind is tuned and puts
/// gensio's `telnet(rfc2217)` filter on the accepter.
fn ser2net_yaml(pairs: &[(u16, &Path)], kind: Kind) -> String {
    let telnet = if kind == Kind::Ser2netRfc2217 {
        "telnet(rfc2217),"
    } else {
        ""
    };
    let mut y = String::from("%YAML 1.1\n---\n");
    for (i, (port, dev)) in pairs.iter().enumerate() {
        y += &format!(
            "connection: &p{i}\n  accepter: {telnet}tcp,127.0.0.1,{port}\n  \
             connector: serialdev,{},115200n81,local\n",
            dev.display()
        );
        if kind != Kind::Ser2net {
            y += "  options:\n    chardelay: false\n    \
                  dev-to-net-bufsize: 16384\n    net-to-dev-bufsize: 16384\n";
        }
    }
    y
}
