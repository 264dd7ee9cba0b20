//! `LISTEN`: a port, `ADDR:PORT`, `[V6ADDR]:PORT` or a service name, and which two of them
//! cannot both be bound.
//!
//! Pure: service names go through the function the caller passes; nothing here opens a socket.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::{ErrorKind, number};

/// Where a pool listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Listen {
    /// A bare port: every address, IPv4 and IPv6.
    Port(u16),
    /// One address and port.
    Addr(SocketAddr),
}

impl Listen {
    /// The TCP port.
    pub fn port(&self) -> u16 {
        match self {
            Listen::Port(p) => *p,
            Listen::Addr(a) => a.port(),
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Port(p) => write!(f, "port {p}"),
            Listen::Addr(a) => write!(f, "{a}"),
        }
    }
}

fn parse_port(s: &str, services: &dyn Fn(&str) -> Option<u16>) -> Result<u16, ErrorKind> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match number(s) {
            Some(p @ 1..=65535) => Ok(p as u16),
            _ => Err(ErrorKind::BadPort(s.to_owned())),
        };
    }
    let plausible = s.len() <= 64
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !plausible {
        return Err(ErrorKind::BadPort(s.to_owned()));
    }
    services(s).ok_or_else(|| ErrorKind::UnknownService(s.to_owned()))
}

pub(super) fn parse_listen(
    s: &str,
    services: &dyn Fn(&str) -> Option<u16>,
) -> Result<Listen, ErrorKind> {
    let bad = || ErrorKind::BadListen(s.to_owned());
    if let Some(rest) = s.strip_prefix('[') {
        // Split at the first `]`, which must be followed by `:`: the same fields as
        // splitting at the first "]:" (a `]` in the address fails its parse either way), and a
        // char pattern, where a string one costs the router image std's two-way searcher.
        let (addr, port) = rest.split_once(']').ok_or_else(bad)?;
        let port = port.strip_prefix(':').ok_or_else(bad)?;
        let ip: std::net::Ipv6Addr = addr.parse().map_err(|_| bad())?;
        return Ok(Listen::Addr(SocketAddr::new(
            ip.into(),
            parse_port(port, services)?,
        )));
    }
    match s.split_once(':') {
        Some((addr, port)) => {
            let ip: std::net::Ipv4Addr = addr.parse().map_err(|_| bad())?;
            Ok(Listen::Addr(SocketAddr::new(
                IpAddr::V4(ip),
                parse_port(port, services)?,
            )))
        }
        None => Ok(Listen::Port(parse_port(s, services)?)),
    }
}

/// Whether binding `a` keeps `b` from binding: same port, and one of them takes every
/// address of the other's family (a bare port and `[::]` take both families).
pub(super) fn overlap(a: Listen, b: Listen) -> bool {
    fn covers(a: Listen, b: Listen) -> bool {
        match a {
            Listen::Port(_) => true,
            Listen::Addr(x) if x.ip() == IpAddr::from([0u8; 16]) => true,
            Listen::Addr(x) if x.ip() == IpAddr::from([0u8; 4]) => match b {
                Listen::Port(_) => true,
                Listen::Addr(y) => y.is_ipv4(),
            },
            Listen::Addr(_) => false,
        }
    }
    a != b && a.port() == b.port() && (covers(a, b) || covers(b, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        let services = |name: &str| (name == "modem").then_some(2006);
        let l = |s: &str| parse_listen(s, &services).unwrap();
        assert_eq!(l("[::1]:7000"), Listen::Addr("[::1]:7000".parse().unwrap()));
        assert_eq!(l("modem"), Listen::Port(2006));
        assert_eq!(
            l("127.0.0.1:modem"),
            Listen::Addr("127.0.0.1:2006".parse().unwrap())
        );
        assert_eq!(l("65535"), Listen::Port(65535));
    }
}
