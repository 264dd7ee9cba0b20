//! The command line: options → mode (daemon, check, version, help). Nothing else.

use std::path::PathBuf;
use std::process::ExitCode;

use modemd::{config, log, serial, server, sys};

const DEFAULT_CONFIG: &str = "/etc/modemd.conf";
const DEFAULT_LOCK_DIR: &str = "/var/lock";
const DEFAULT_PID_FILE: &str = "/var/run/modemd.pid";

fn usage(opts: &getopts::Options) -> String {
    let brief = "\
usage: modemd [-n] [-d]... [-c FILE] [-L DIR] [-p FILE]   share serial devices over TCP
       modemd -t [-c FILE]                               check the config and exit
       modemd -V | -h";
    opts.usage(brief)
}

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.optopt("c", "", "config file (default /etc/modemd.conf)", "FILE");
    o.optflag("n", "", "stay in the foreground and log to stderr");
    o.optflagmulti("d", "", "more logging (repeatable)");
    o.optflag(
        "t",
        "",
        "check the config, print every problem, exit 0 or 1",
    );
    o.optopt("L", "", "UUCP lock directory (default /var/lock)", "DIR");
    o.optopt(
        "p",
        "",
        "pid file (default /var/run/modemd.pid as a daemon)",
        "FILE",
    );
    o.optflag("V", "", "print the version");
    o.optflag("h", "", "print this help");
    o
}

/// Reads and parses the config, printing every problem; `None` if it is unusable.
fn load(path: &str) -> Option<config::Config> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            modemd::error!("cannot read {path}: {e}");
            return None;
        }
    };
    match config::parse(path, &text, &sys::service_port) {
        Ok(c) => {
            for w in &c.warnings {
                modemd::warning!("{w}");
            }
            Some(c)
        }
        Err(errors) => {
            for e in &errors {
                modemd::error!("{e}");
            }
            None
        }
    }
}

fn main() -> ExitCode {
    let opts = options();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let m = match opts.parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("modemd: {e}\n{}", usage(&opts));
            return ExitCode::from(2);
        }
    };
    if m.opt_present("h") {
        print!("{}", usage(&opts));
        return ExitCode::SUCCESS;
    }
    if m.opt_present("V") {
        println!("modemd {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Some(extra) = m.free.first() {
        eprintln!("modemd: unexpected argument '{extra}' (inetd mode is not implemented yet)");
        return ExitCode::from(2);
    }
    log::set_verbosity(m.opt_count("d").min(u8::MAX as usize) as u8);
    serial::force_plain_termios(std::env::var_os("MODEMD_PLAIN_TERMIOS").is_some());
    let config_path = m.opt_str("c").unwrap_or_else(|| DEFAULT_CONFIG.to_owned());
    let Some(config) = load(&config_path) else {
        return ExitCode::FAILURE;
    };
    if m.opt_present("t") {
        let devices: usize = config.pools.iter().map(|p| p.entries.len()).sum();
        println!(
            "{config_path}: ok ({} listeners, {devices} devices)",
            config.pools.len()
        );
        return ExitCode::SUCCESS;
    }
    let daemon = !m.opt_present("n");
    let pid_file = m
        .opt_str("p")
        .or_else(|| daemon.then(|| DEFAULT_PID_FILE.to_owned()))
        .map(PathBuf::from);
    let opts = server::Options {
        lock_dir: PathBuf::from(
            m.opt_str("L")
                .unwrap_or_else(|| DEFAULT_LOCK_DIR.to_owned()),
        ),
        pid_file,
        daemon,
    };
    match server::run(config, opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            modemd::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
