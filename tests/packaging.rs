//! What ships beside the binary: the OpenWrt init script's UCI translation and the .ipk, the
//! SysV init script driving a real modemd, the systemd unit, the man pages, and shellcheck
//! over every shell script; and that the RFC 2217 peers are there. The tools these tests call
//! are installed by .ci/run.

mod common;

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::peers::pyserial;
use common::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{name} is not installed (.ci/run installs it)");
    Command::new(name)
}

fn run_ok(cmd: &mut Command) -> String {
    let out = run_bounded(cmd, Duration::from_secs(60));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// The RFC 2217 tests' peers: without them those tests cannot run, so say so here, once.
#[test]
fn rfc2217_peers_are_installed() {
    // Debian's own pyserial (python3-serial), the one DESIGN §4 must work with.
    let out = pyserial("import serial; print(serial.__file__)", START);
    let path = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && path.starts_with("/usr/lib/python3/dist-packages/serial/"),
        "no Debian pyserial for /usr/bin/python3 (apt-get install python3-serial): {path}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        Path::new("/usr/bin/gensiot").exists(),
        "no gensiot (apt-get install gensio-bin)"
    );
}

#[test]
fn every_shell_script_passes_shellcheck() {
    let r = root();
    let mut checked = 0;
    // POSIX sh, BusyBox ash (closest shellcheck dialect: dash), bash.
    for (dialect, files) in [
        (
            "sh",
            vec![
                "etc/init.d/modemd",
                "etc/init.d/modemd-client",
                "openwrt/ipk.sh",
            ],
        ),
        (
            "dash",
            vec!["openwrt/files/modemd.init", "tests/openwrt/functions.sh"],
        ),
        ("bash", vec![".ci/run"]),
    ] {
        for f in files {
            run_ok(tool("shellcheck").args(["-s", dialect]).arg(r.join(f)));
            checked += 1;
        }
    }
    if let Ok(dir) = fs::read_dir(r.join("cross")) {
        for e in dir.filter_map(Result::ok) {
            if e.path().extension().is_some_and(|x| x == "sh") {
                // -x -P SCRIPTDIR: follow the files a script sources beside itself.
                run_ok(
                    tool("shellcheck")
                        .args(["-s", "bash", "-x", "-P", "SCRIPTDIR"])
                        .arg(e.path()),
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 5);
}

/// Runs the OpenWrt init script's translation on `uci` (the test stand-ins for OpenWrt's
/// shell functions: tests/openwrt/functions.sh) and returns the generated config and the
/// procd calls of start_service and reload_service.
fn translate(uci: &str) -> (String, String, PathBuf, TempDir) {
    let dir = TempDir::new("uci");
    fs::write(dir.join("modemd"), uci).expect("write uci");
    let conf = dir.join("modemd.conf");
    let log = dir.join("procd.log");
    // Each rc.common action runs in a shell of its own, as on the router.
    for action in ["start_service", "reload_service"] {
        let script = format!(
            ". '{}'; . '{}'; UCI_DIR='{}'; PROCD_LOG='{}'; CONF='{}'; {action}",
            root().join("tests/openwrt/functions.sh").display(),
            root().join("openwrt/files/modemd.init").display(),
            dir.path().display(),
            log.display(),
            conf.display()
        );
        run_ok(Command::new("sh").args(["-c", &script]));
    }
    let text = fs::read_to_string(&conf).expect("generated config");
    let procd = fs::read_to_string(&log).expect("procd log");
    (text, procd, conf, dir)
}

#[test]
fn openwrt_uci_becomes_a_valid_modemd_config() {
    let uci = "\
config port 'modem'
\toption listen '5800'
\toption device '/dev/ttyS1'
\toption baud '57600'
\toption databits '7'
\toption parity 'E'
\toption stopbits '2'
\tlist hosts '*.foo.org'
\tlist hosts '192.168.2.0/24'
\toption idle '600'
\toption flow 'rtscts'
\toption hangup '1000'
\toption rfc2217 'on'

config port
\toption enabled '1'
\toption listen '127.0.0.1:2006'
\toption device '/dev/ttyUSB0'
\toption settings '9600,8,N,1'
\tlist hosts '::1'
\toption hangup 'off'
\toption rfc2217 'fixed'

config port 'spare'
\toption enabled '0'
\toption listen '5801'
\toption device '/dev/ttyS3'
\tlist hosts '10.0.0.1'
";
    let (text, procd, conf, _dir) = translate(uci);
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    // Every option reaches the output: listen, device, baud/databits/parity/stopbits or
    // settings, each hosts item, idle, flow, hangup, rfc2217; a disabled section does not.
    assert_eq!(
        lines,
        [
            "5800 /dev/ttyS1 57600,7,E,2 *.foo.org,192.168.2.0/24 idle=600 flow=rtscts hangup=1000 rfc2217=on",
            "127.0.0.1:2006 /dev/ttyUSB0 9600,8,N,1 ::1 hangup=off rfc2217=fixed",
        ]
    );
    let out = run_bounded(modemd_command().arg("-t").arg("-c").arg(&conf), START);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(procd.contains(&format!(
        "procd_set_param command /usr/sbin/modemd -n -c {}",
        conf.display()
    )));
    assert!(procd.contains("procd_set_param respawn"));
    assert!(procd.contains("procd_send_signal modemd * HUP"), "{procd}");
}

#[test]
fn openwrt_defaults_fill_in_the_line_settings() {
    let (text, _, _, _dir) = translate(
        "config port\n\toption listen '2006'\n\toption device '/dev/ttyUSB0'\n\tlist hosts '192.168.1.0/24'\n",
    );
    assert!(
        text.contains("2006 /dev/ttyUSB0 115200,8,N,1 192.168.1.0/24\n"),
        "{text}"
    );
    // The shipped UCI file is valid and, being disabled, shares nothing.
    let shipped = fs::read_to_string(root().join("openwrt/files/modemd.config")).expect("read");
    let (text, _, _, _dir) = translate(&shipped);
    assert_eq!(
        text.lines().filter(|l| !l.starts_with('#')).count(),
        0,
        "{text}"
    );
}

fn cross_binary() -> Option<(PathBuf, &'static str)> {
    let p = root().join("dist/mipsel-unknown-linux-musl/modemd");
    p.exists().then_some((p, "mipsel_24kc"))
}

#[test]
fn ipk_has_control_files_permissions_and_a_static_binary() {
    let dir = TempDir::new("ipk");
    let (binary, arch) = cross_binary().unwrap_or_else(|| {
        eprintln!("note: no dist/mipsel-unknown-linux-musl/modemd; packaging the native binary");
        (modemd_bin(), "x86_64")
    });
    let ipk = run_ok(
        Command::new(root().join("openwrt/ipk.sh"))
            .arg(arch)
            .arg(&binary)
            .arg(dir.path()),
    );
    let ipk = PathBuf::from(ipk.trim());
    assert_eq!(ipk, dir.join(&format!("modemd_0.1.0-1_{arch}.ipk")));
    let members = run_ok(tool("ar").arg("t").arg(&ipk));
    assert_eq!(members, "debian-binary\ncontrol.tar.gz\ndata.tar.gz\n");
    run_ok(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && ar x '{}' && mkdir c d && tar xzf control.tar.gz -C c && tar xzf data.tar.gz -C d",
        dir.path().display(),
        ipk.display()
    )));
    assert_eq!(
        fs::read_to_string(dir.join("debian-binary")).expect("read"),
        "2.0\n"
    );
    let control = fs::read_to_string(dir.join("c/control")).expect("control");
    for field in [
        "Package: modemd\n",
        "Version: 0.1.0-1\n",
        &format!("Architecture: {arch}\n"),
        "License: MIT\n",
    ] {
        assert!(
            control.contains(field),
            "control lacks {field:?}:\n{control}"
        );
    }
    assert_eq!(
        fs::read_to_string(dir.join("c/conffiles")).expect("conffiles"),
        "/etc/config/modemd\n"
    );
    let listing = run_ok(tool("tar").args(["tzvf"]).arg(dir.join("data.tar.gz")));
    for (mode, path) in [
        ("-rwxr-xr-x 0/0", "./usr/sbin/modemd"),
        ("-rwxr-xr-x 0/0", "./etc/init.d/modemd"),
        ("-rw-r--r-- 0/0", "./etc/config/modemd"),
    ] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(mode) && l.ends_with(path)),
            "{path} not {mode} in:\n{listing}"
        );
    }
    let installed = fs::metadata(dir.join("d/usr/sbin/modemd"))
        .expect("binary")
        .len();
    let size: u64 = control
        .lines()
        .find_map(|l| l.strip_prefix("Installed-Size: "))
        .and_then(|v| v.parse().ok())
        .expect("Installed-Size");
    assert!(size >= installed);
    if arch == "mipsel_24kc" {
        let file = run_ok(tool("file").arg(dir.join("d/usr/sbin/modemd")));
        assert!(
            file.contains("MIPS") && file.contains("statically linked"),
            "{file}"
        );
    }
}

#[test]
fn sysv_init_script_starts_reloads_and_stops_modemd() {
    let pty = Pty::open().expect("pty");
    let other = Pty::open().expect("pty");
    let dir = TempDir::new("initd");
    let (p1, p2) = (free_port(), free_port());
    let conf = dir.join("modemd.conf");
    let line = |port: u16, dev: &Path| config_line(port, dev);
    fs::write(&conf, line(p1, &pty.slave)).expect("write");
    let pid_file = dir.join("modemd.pid");
    let script = root().join("etc/init.d/modemd");
    let init = |action: &str| {
        let mut c = Command::new("sh");
        c.arg(&script)
            .arg(action)
            .env("DAEMON", modemd_program(dir.path()))
            .env("CONFIG", &conf)
            .env("PIDFILE", &pid_file)
            .env("OPTIONS", format!("-L {}", dir.path().display()));
        run_bounded(&mut c, Duration::from_secs(20))
    };
    // Connects until the port serves; while a reload is in flight the port may not be
    // there yet, and a device may still be finishing the previous session (busy).
    let serves = |port: u16, pty: &Pty| {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            let Ok(mut c) = std::net::TcpStream::connect(addr) else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            c.write_all(b"hi").expect("write");
            if pty.read_for(2, Duration::from_millis(500)) == b"hi" {
                drop(c);
                assert!(pty.wait_hangup(WAIT));
                return true;
            }
        }
        false
    };

    assert!(init("start").status.success());
    let pid: i32 = fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let status = init("status");
    assert_eq!(status.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&status.stdout).contains(&format!("running (pid {pid})")));
    assert!(serves(p1, &pty));

    fs::write(&conf, line(p1, &pty.slave) + &line(p2, &other.slave)).expect("write");
    assert!(init("reload").status.success());
    let deadline = std::time::Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", p2)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "reload did not add the port"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(serves(p2, &other), "new port does not serve after reload");
    assert!(serves(p1, &pty));

    let stop = init("stop");
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stdout)
    );
    assert!(wait_gone(pid, Duration::from_secs(2)));
    assert!(!pid_file.exists(), "pid file left");
    assert_eq!(init("status").status.code(), Some(3));
}

#[test]
fn systemd_units_verify() {
    let dir = TempDir::new("unit");
    // The client's is a template: verify an instance of it.
    for (file, unit) in [
        ("modemd.service", "modemd.service"),
        ("modemd-client@.service", "modemd-client@modem.service"),
    ] {
        let text = fs::read_to_string(root().join("etc/systemd").join(file)).expect("unit");
        // verify insists that ExecStart exists: point it at the binary under test.
        let text = text.replace("/usr/sbin/modemd", &modemd_bin().display().to_string());
        fs::write(dir.join(file), text).expect("write");
        // --man=no: the man pages are in this tree, not installed where man looks.
        let out = run_ok(
            tool("systemd-analyze")
                .args(["verify", "--man=no"])
                .arg(dir.join(unit)),
        );
        assert!(
            out.trim().is_empty(),
            "systemd-analyze verify {unit} said:\n{out}"
        );
    }
}

/// The client's init script against a real server: `start` returns once LINK is there and
/// the tty reaches the server's device; `stop` removes LINK.
#[test]
fn client_init_script_starts_and_stops_client_mode() {
    let pty = Pty::open().expect("pty");
    let dir = TempDir::new("initc");
    let (_server, addr) = one_device(&pty.slave, "hangup=0", &[]);
    let link = dir.join("modem");
    let pid_file = dir.join("client.pid");
    let script = root().join("etc/init.d/modemd-client");
    let init = |action: &str| {
        let mut c = Command::new("sh");
        c.arg(&script)
            .arg(action)
            .env("DAEMON", modemd_program(dir.path()))
            .env("LINK", &link)
            .env("URL", format!("socket://{addr}"))
            .env("PIDFILE", &pid_file);
        run_bounded(&mut c, Duration::from_secs(20))
    };
    assert!(init("start").status.success());
    assert!(link.exists(), "start returned before LINK was made");
    let status = init("status");
    assert_eq!(status.status.code(), Some(0));
    let pid: i32 = fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    {
        let mut tty = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&link)
            .expect("open LINK");
        tty.write_all(b"hi").expect("write");
        assert_eq!(pty.read_for(2, WAIT), b"hi");
    }
    assert!(init("stop").status.success());
    assert!(wait_gone(pid, Duration::from_secs(2)));
    assert!(!link.exists(), "LINK left behind");
    assert!(!pid_file.exists(), "pid file left");
    assert_eq!(init("status").status.code(), Some(3));
}

#[test]
fn man_pages_render_without_warnings() {
    for page in ["man/modemd.8", "man/modemd.conf.5"] {
        let path = root().join(page);
        let out = run_ok(tool("groff").args(["-ww", "-z", "-mdoc"]).arg(&path));
        assert!(out.trim().is_empty(), "groff on {page}:\n{out}");
        let out = run_ok(
            tool("mandoc")
                .args(["-T", "lint", "-W", "warning"])
                .arg(&path),
        );
        assert!(out.trim().is_empty(), "mandoc on {page}:\n{out}");
    }
}

/// The README's module table is the map a newcomer reads first: it must name every module
/// `src/lib.rs` declares, and no other.
#[test]
fn readme_module_table_matches_lib_rs() {
    let lib = fs::read_to_string(root().join("src/lib.rs")).expect("lib.rs");
    let mut declared: Vec<String> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_owned())
        .collect();
    declared.sort();
    let readme = fs::read_to_string(root().join("README.md")).expect("README");
    let table = readme
        .split_once("| file | job |")
        .and_then(|(_, rest)| rest.split("\n\n").next())
        .expect("module table in README.md");
    let mut listed: Vec<String> = table
        .lines()
        .filter_map(|row| row.strip_prefix("| "))
        .flat_map(|row| {
            let files = row.split(" |").next().unwrap_or("");
            files
                .split(", ")
                .map(|f| f.trim_matches('`').to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|f| f != "src/main.rs" && !f.starts_with("src/bin/") && f != "---")
        .map(|f| {
            let name = f.strip_prefix("src/").unwrap_or(&f);
            name.trim_end_matches(".rs")
                .trim_end_matches('/')
                .to_owned()
        })
        .collect();
    listed.sort();
    assert_eq!(listed, declared, "README module table vs src/lib.rs");
}
