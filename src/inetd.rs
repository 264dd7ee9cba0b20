//! inetd mode: the connection is already accepted and sits on descriptor 0, as inetd (or
//! tcpd) hands it over; serve that one session and exit.
//!
//! From admission on this is the daemon's code (`session::serve`): the same lock, open,
//! relay and hang-up. Only the pool differs: the single `DEVICE` of the command line (any
//! host; tcpd is the ACL in the seed's setup), or the config entries whose `LISTEN` matches
//! the socket's local port.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, FromRawFd};
use std::path::PathBuf;
use std::sync::Arc;

use crate::acl::{self, HostList};
use crate::config::{Config, Entry, Listen, Options, Pool, Settings};
use crate::daemon;
use crate::fault::Faults;
use crate::listener;
use crate::refusals::Refusals;
use crate::registry::Registry;
use crate::session::{self, Context};
use crate::spare::Spare;
use crate::sys::SignalSet;

/// Which devices the connection may use.
pub enum Source {
    /// `modemd [-s SETTINGS] DEVICE`.
    Device {
        /// The device path.
        device: PathBuf,
        /// Its line settings.
        settings: Settings,
        /// `-o`: its options, as on a config line.
        options: Options,
    },
    /// `modemd -c FILE` with a socket on descriptor 0.
    Config(Config),
}

/// Why the session could not even start.
#[derive(Debug)]
pub enum Error {
    /// Descriptor 0 is not a usable socket, or a thread could not start.
    Setup {
        /// What.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// No config entry listens on the port the client connected to.
    NoEntry {
        /// The socket's local address.
        local: SocketAddr,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Setup { what, source } => write!(f, "inetd mode: cannot {what}: {source}"),
            Error::NoEntry { local } => {
                write!(
                    f,
                    "inetd mode: no config entry listens on port {}",
                    local.port()
                )
            }
        }
    }
}

impl std::error::Error for Error {}

fn setup(what: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Setup { what, source }
}

/// The entries of `config` that serve a connection accepted on `local`.
fn pool_for(config: Config, local: SocketAddr) -> Option<Pool> {
    let local_ip = acl::canonical(local.ip());
    let entries: Vec<Entry> = config
        .pools
        .into_iter()
        .filter(|p| match p.listen {
            Listen::Port(port) => port == local.port(),
            Listen::Addr(a) => {
                a.port() == local.port() && (a.ip().is_unspecified() || a.ip() == local_ip)
            }
        })
        .flat_map(|p| p.entries)
        .collect();
    (!entries.is_empty()).then(|| Pool {
        listen: Listen::Port(local.port()),
        entries,
    })
}

/// Serves the connection on descriptor 0 until its session ends.
pub fn run(source: Source, lock_dir: PathBuf) -> Result<(), Error> {
    let signals = SignalSet::new(&daemon::SIGNALS);
    signals.block().map_err(setup("block signals"))?;
    // SAFETY: inetd passes the accepted connection as descriptor 0 and nothing else in this
    // process uses descriptor 0; from here on the stream owns it.
    let client = unsafe { TcpStream::from_raw_fd(0) };
    // inetd also puts the connection on 1 and 2. Those copies would keep it open after the
    // session closes it (the client would never see the hang-up), and anything written to
    // stderr would go to the client.
    daemon::null_stdio(1).map_err(setup("redirect stdout and stderr"))?;
    let local = client
        .local_addr()
        .map_err(setup("read the local address"))?;
    let pool = match source {
        Source::Device {
            device,
            settings,
            options,
        } => Pool {
            listen: Listen::Port(local.port()),
            entries: vec![Entry {
                line: 0,
                device,
                settings,
                hosts: HostList::any(),
                options,
            }],
        },
        Source::Config(config) => pool_for(config, local).ok_or(Error::NoEntry { local })?,
    };
    let ctx = Arc::new(Context {
        lock_dir,
        registry: Registry::new().map_err(setup("create the session registry"))?,
        faults: Faults::default(),
    });
    {
        let ctx = Arc::clone(&ctx);
        crate::thread::spawn(
            "signals".into(),
            64 * 1024,
            Box::new(move || {
                // SIGHUP (inetd's terminal going away) means nothing to a single session.
                while let Ok(libc::SIGHUP) = signals.wait() {}
                ctx.registry.stop_all();
            }),
        )
        .map_err(setup("start the signal thread"))?;
    }
    let peer = client.peer_addr().map_err(setup("read the peer address"))?;
    if let Err(e) = listener::tune_socket(client.as_fd()) {
        crate::warning!("{peer}: cannot set TCP_NODELAY/keepalive: {e}");
    }
    let refusals = Refusals::new(pool.listen, None);
    let client = session::Client {
        stream: client,
        peer,
        spare: Spare::default(),
    };
    session::serve(session::Handover::new(client), &pool, &refusals, &ctx);
    crate::lock::remove_template();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inetd_picks_the_entries_of_the_local_port() {
        let parse = |text: &str| crate::config::parse("m", text.as_bytes(), &|_| None).unwrap();
        let devices = |pool: Option<Pool>| -> Vec<PathBuf> {
            pool.map(|p| p.entries.into_iter().map(|e| e.device).collect())
                .unwrap_or_default()
        };
        let local = "127.0.0.1:5800".parse().unwrap();
        let by_addr = parse(
            "127.0.0.1:5800 /dev/b 9600,8,N,1 ::1\n10.0.0.1:5800 /dev/c 9600,8,N,1 ::1\n\
             127.0.0.1:5800 /dev/e 9600,8,N,1 ::1\n5801 /dev/d 9600,8,N,1 ::1\n",
        );
        assert_eq!(
            devices(pool_for(by_addr, local)),
            [PathBuf::from("/dev/b"), PathBuf::from("/dev/e")]
        );
        let bare = parse("5800 /dev/a 9600,8,N,1 ::1\n5801 /dev/d 9600,8,N,1 ::1\n");
        assert_eq!(
            devices(pool_for(bare.clone(), local)),
            [PathBuf::from("/dev/a")]
        );
        assert!(pool_for(bare, "127.0.0.1:5802".parse().unwrap()).is_none());
    }
}
