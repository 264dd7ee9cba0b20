//! How a TCP socket is built (`SO_REUSEADDR`, dual stack, options set before `listen`) and
//! tuned (`TCP_NODELAY`, keepalive), for the listeners and for inetd's connection.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::os::fd::{AsFd, BorrowedFd};

use crate::config::Listen;
use crate::sys;

/// Binds `listen` and listens, with TCP_NODELAY and the keepalive options set before the
/// first connection can arrive: accepted connections inherit them on Linux, which spares
/// every session the system calls. A bare port takes `[::]` with `IPV6_V6ONLY` off whatever
/// the system default (IPv4 clients arrive as mapped addresses), and falls back to `0.0.0.0`
/// on a kernel without IPv6.
pub fn bind(listen: Listen) -> io::Result<TcpListener> {
    // Options are set in order: one the kernel lacks (TCP_USER_TIMEOUT, last, before Linux
    // 2.6.37) leaves the others in place, and costs no port.
    let tune = |fd: BorrowedFd<'_>| {
        if let Err(e) = tune_socket(fd) {
            crate::warning!("{listen}: cannot set TCP_NODELAY/keepalive: {e}");
        }
    };
    match listen {
        Listen::Addr(addr) => tcp_listener(addr, false, tune),
        Listen::Port(port) => {
            let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
            tcp_listener(any6, true, tune).or_else(|e| match e.raw_os_error() {
                Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL) => {
                    tcp_listener(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)), false, tune)
                }
                _ => Err(e),
            })
        }
    }
}

/// A TCP listener on `addr`, with `setup` applied to the socket between `bind` and `listen`,
/// so that even the first connection inherits what it sets (std's `TcpListener::bind` does
/// both at once). `dual_stack`: an IPv6 socket also takes IPv4 (`IPV6_V6ONLY` off, whatever
/// the system default). `SO_REUSEADDR`, as std sets it: rebinding right after a restart must
/// not wait out TIME_WAIT.
fn tcp_listener(
    addr: SocketAddr,
    dual_stack: bool,
    setup: impl FnOnce(BorrowedFd<'_>),
) -> io::Result<TcpListener> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let fd = sys::socket(family, libc::SOCK_STREAM)?;
    sys::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if dual_stack && family == libc::AF_INET6 {
        sys::setsockopt_int(fd.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0)?;
    }
    sys::bind(fd.as_fd(), addr)?;
    setup(fd.as_fd());
    sys::listen(fd.as_fd(), 128)?;
    Ok(TcpListener::from(fd))
}

/// A client that vanishes without a FIN or RST (unplugged, NAT state lost) frees its modem
/// within about a minute: keepalive probes after 30 s of silence, every 10 s, 3 of them; and
/// data we sent that stays unacknowledged for 60 s ends the connection too (keepalive alone
/// does not probe while data is in flight).
pub const KEEPALIVE: [(libc::c_int, libc::c_int, libc::c_int); 5] = [
    (libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1),
    (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, 30),
    (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, 10),
    (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3),
    (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, 60_000),
];

/// Sets `TCP_NODELAY` (an AT dialogue is one small write after another) and [`KEEPALIVE`] on
/// a client connection, or on a listener, whose accepted connections inherit them on Linux.
pub fn tune_socket(socket: BorrowedFd<'_>) -> io::Result<()> {
    sys::setsockopt_int(socket, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
    KEEPALIVE
        .iter()
        .try_for_each(|&(level, name, value)| sys::setsockopt_int(socket, level, name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SO_REUSEADDR is set, and `setup` runs on a bound socket that does not listen yet.
    #[test]
    fn tcp_listener_reuses_the_address_and_sets_up_before_listen() {
        let mut listening_at_setup = None;
        let socket = tcp_listener(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), false, |fd| {
            let get = sys::getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN);
            listening_at_setup = Some(get.expect("SO_ACCEPTCONN"));
        })
        .expect("listen");
        assert_eq!(listening_at_setup, Some(0));
        let get = |name| sys::getsockopt_int(socket.as_fd(), libc::SOL_SOCKET, name).expect(".");
        assert_ne!(get(libc::SO_ACCEPTCONN), 0, "listening");
        assert_ne!(get(libc::SO_REUSEADDR), 0, "SO_REUSEADDR");
    }
}
