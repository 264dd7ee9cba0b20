//! The command line: options → mode (daemon, inetd, client, check, version, help). Nothing
//! else.

use std::path::PathBuf;
use std::process::ExitCode;

use modemd::client::{self, url::Url};
use modemd::config::{Options, Settings};
use modemd::{daemon, inetd, log, serial, server, sys};

const DEFAULT_CONFIG: &str = "/etc/modemd.conf";
const DEFAULT_LOCK_DIR: &str = "/var/lock";
const DEFAULT_PID_FILE: &str = "/var/run/modemd.pid";

/// What `-h` prints. Written out rather than made by getopts' `usage()`, whose formatting
/// code costs the router image 3 KB for text that never changes; `options()` below must list
/// the same options.
const USAGE: &str = r#"usage: modemd [-n] [-d]... [-c FILE] [-L DIR] [-p FILE] [-u USER[:GROUP]]   daemon
       modemd -t [-c FILE]                                                 check config
       modemd [-s SETTINGS] [-o OPTIONS] [-L DIR] [-d] DEVICE   inetd: one session on fd 0
       modemd -l LINK [-n] [-d]... [-p FILE] URL          client: a local tty for a remote line
       modemd -V | -h

Options:
    -c FILE             config file (default /etc/modemd.conf)
    -n                  stay in the foreground and log to stderr
    -d                  more logging (repeatable)
    -t                  check the config, print every problem, exit 0 or 1
    -L DIR              UUCP lock directory (default /var/lock)
    -p FILE             pid file (default /var/run/modemd.pid as a daemon)
    -u USER[:GROUP]     drop root after binding the listeners
    -s SETTINGS         line settings in inetd mode (default 115200,8,N,1)
    -o OPTIONS          line options in inetd mode:
                        idle=SECONDS,flow=none|rtscts|xonxoff,hangup=MS|off,rfc2217=on|fixed
    -l LINK             client mode: a tty at LINK for the line at URL,
                        rfc2217://HOST:PORT or socket://HOST:PORT
    -V                  print the version
    -h                  print this help
"#;

/// The options, for parsing only: their help is [`USAGE`].
fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    for (flag, multi) in [
        ("n", false),
        ("d", true),
        ("t", false),
        ("V", false),
        ("h", false),
    ] {
        if multi {
            o.optflagmulti(flag, "", "");
        } else {
            o.optflag(flag, "", "");
        }
    }
    for name in ["c", "L", "p", "u", "s", "o", "l"] {
        o.optopt(name, "", "", "");
    }
    o
}

/// Option `-name` parsed, or its default when not given; an error names the option.
fn parsed<T>(m: &getopts::Matches, name: &str) -> Result<T, String>
where
    T: std::str::FromStr + Default,
    T::Err: std::fmt::Display,
{
    match m.opt_str(name) {
        None => Ok(T::default()),
        Some(text) => text.parse().map_err(|e| format!("-{name}: {e}")),
    }
}

fn bad_usage(msg: &str) -> ExitCode {
    log::eprint(format_args!("modemd: {msg} (modemd -h for help)\n"));
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // Release builds abort on panic (smaller, and no unwinder on the MIPS targets): no
    // destructor runs, so the locks this process holds must be removed by the hook. The
    // router builds (panic=immediate-abort) run no hook either: their locks then name a dead
    // PID, which every UUCP lock user treats as stale (and the next modemd removes the lock
    // template, LTMP.<pid>, that they leave too). So they install none: a hook they never
    // call would still link std's default hook and its printing (mipsel -5.2 KB).
    #[cfg(all(panic = "abort", not(panic = "immediate-abort")))]
    {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            modemd::lock::release_all();
        }));
    }
    let opts = options();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let m = match opts.parse(&args) {
        Ok(m) => m,
        Err(e) => return bad_usage(&e.to_string()),
    };
    if m.opt_present("h") {
        log::print(format_args!("{USAGE}"));
        return ExitCode::SUCCESS;
    }
    if m.opt_present("V") {
        log::print(format_args!("modemd {}\n", env!("CARGO_PKG_VERSION")));
        return ExitCode::SUCCESS;
    }
    if m.free.len() > 1 {
        return bad_usage("more than one DEVICE");
    }
    if m.free.is_empty() && (m.opt_present("s") || m.opt_present("o")) {
        // Silently ignored, they would leave a user believing a line runs as they said.
        return bad_usage("-s and -o go with a DEVICE (inetd mode); a config line says its own");
    }
    log::set_verbosity(m.opt_count("d").min(u8::MAX as usize) as u8);
    if let Some(link) = m.opt_str("l") {
        return client_mode(&m, link);
    }
    serial::force_plain_termios(sys::env_is_set(c"MODEMD_PLAIN_TERMIOS"));
    let config_path = m.opt_str("c").unwrap_or_else(|| DEFAULT_CONFIG.to_owned());
    let lock_dir = PathBuf::from(
        m.opt_str("L")
            .unwrap_or_else(|| DEFAULT_LOCK_DIR.to_owned()),
    );

    // inetd mode: a DEVICE argument, or a TCP connection on descriptor 0.
    let inetd_device = m.free.first();
    if !m.opt_present("t") && (inetd_device.is_some() || sys::stdin_is_tcp()) {
        // stderr is the client's connection under inetd.
        log::use_syslog();
        let source = match inetd_device {
            Some(device) => {
                if !device.starts_with('/') {
                    modemd::error!("relative device path '{device}' (expected /dev/...)");
                    return ExitCode::FAILURE;
                }
                let (settings, options) =
                    match (parsed::<Settings>(&m, "s"), parsed::<Options>(&m, "o")) {
                        (Ok(settings), Ok(options)) => (settings, options),
                        (Err(e), _) | (_, Err(e)) => {
                            modemd::error!("{e}");
                            return ExitCode::FAILURE;
                        }
                    };
                inetd::Source::Device {
                    device: PathBuf::from(device),
                    settings,
                    options,
                }
            }
            None => match server::load(&config_path) {
                Some(config) => inetd::Source::Config(config),
                None => return ExitCode::FAILURE,
            },
        };
        return match inetd::run(source, lock_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                modemd::error!("{e}");
                ExitCode::FAILURE
            }
        };
    }

    let Some(config) = server::load(&config_path) else {
        return ExitCode::FAILURE;
    };
    if m.opt_present("t") {
        let devices: usize = config.pools.iter().map(|p| p.entries.len()).sum();
        log::print(format_args!(
            "{config_path}: ok ({} listeners, {devices} devices)\n",
            config.pools.len()
        ));
        return ExitCode::SUCCESS;
    }
    let user = match m.opt_str("u").map(|spec| daemon::identity(&spec)) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(e)) => {
            modemd::error!("-u: {e}");
            return ExitCode::FAILURE;
        }
    };
    let daemon = !m.opt_present("n");
    if let Err(e) = pid_path_usable(&m, daemon) {
        return e;
    }
    let pid_file = m
        .opt_str("p")
        .or_else(|| daemon.then(|| DEFAULT_PID_FILE.to_owned()))
        .map(PathBuf::from);
    let opts = server::Options {
        config_path,
        lock_dir,
        pid_file,
        daemon,
        user,
    };
    finish(server::run(config, opts))
}

/// `-l LINK URL`: client mode.
fn client_mode(m: &getopts::Matches, link: String) -> ExitCode {
    for o in ["t", "s", "o", "c", "L", "u"] {
        if m.opt_present(o) {
            return bad_usage(&format!("-{o} does not go with -l (client mode)"));
        }
    }
    let [url] = m.free.as_slice() else {
        return bad_usage("-l LINK takes one URL: rfc2217://HOST:PORT or socket://HOST:PORT");
    };
    let url = match url.parse::<Url>() {
        Ok(url) => url,
        Err(e) => return bad_usage(&format!("{url}: {e}")),
    };
    if !link.starts_with('/') {
        // A daemon works from /: a relative LINK would not be where the user looks.
        return bad_usage(&format!("-l {link}: LINK must be an absolute path"));
    }
    if let Err(e) = pid_path_usable(m, !m.opt_present("n")) {
        return e;
    }
    finish(client::run(client::Options {
        link: PathBuf::from(link),
        url,
        pid_file: m.opt_str("p").map(PathBuf::from),
        daemon: !m.opt_present("n"),
    }))
}

/// A daemon works from `/`: a relative `-p` would be checked in one directory and written
/// in another, and a second daemon started where the first was would not see it.
fn pid_path_usable(m: &getopts::Matches, daemon: bool) -> Result<(), ExitCode> {
    match m.opt_str("p") {
        Some(p) if daemon && !p.starts_with('/') => Err(bad_usage(&format!(
            "-p {p}: a daemon's pid file must be an absolute path"
        ))),
        _ => Ok(()),
    }
}

/// The exit of daemon and client mode.
fn finish(result: Result<server::Ended, server::Error>) -> ExitCode {
    match result {
        Ok(server::Ended::Stopped) => ExitCode::SUCCESS,
        Ok(server::Ended::Detached(outcome)) => {
            if let Some(msg) = &outcome.message {
                log::eprint(format_args!("modemd: {msg}\n"));
            }
            // _exit, not a return: this is the process that waited for the daemon (or the
            // middle one of the double fork), and what it holds belongs to the daemon now;
            // a normal exit would run atexit handlers and flush stdio on its behalf.
            sys::exit_now(outcome.code.into())
        }
        Err(e) => {
            modemd::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `-h` is written by hand: every option it lists must be one `options()` parses, and
    /// no other.
    #[test]
    fn the_usage_text_lists_exactly_the_options_parsed() {
        let listed: Vec<char> = USAGE
            .lines()
            .filter_map(|l| l.strip_prefix("    -"))
            .filter_map(|rest| rest.chars().next())
            .collect();
        assert_eq!(listed.len(), 12, "{listed:?}");
        for c in listed {
            let args = [format!("-{c}"), "value".to_owned()];
            assert!(options().parse(&args).is_ok(), "-{c} listed but not parsed");
        }
        for c in ('a'..='z').chain('A'..='Z') {
            let args = [format!("-{c}"), "value".to_owned()];
            if options().parse(&args).is_ok() {
                assert!(
                    USAGE.contains(&format!("    -{c} ")),
                    "-{c} parsed but not listed"
                );
            }
        }
    }
}
