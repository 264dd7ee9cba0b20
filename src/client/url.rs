//! Client mode's `URL` argument, pyserial's names for the two kinds of line:
//! `rfc2217://HOST:PORT` and `socket://HOST:PORT` (DESIGN §5). Pure.

use std::fmt;
use std::str::FromStr;

/// What the server's line speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Telnet with COM-PORT-OPTION: the tty's settings are sent to the server.
    Rfc2217,
    /// Raw bytes: nothing but data is sent.
    Socket,
}

/// A parsed `URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// The protocol.
    pub scheme: Scheme,
    /// A name or an address (an IPv6 one without its brackets).
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// As given, for the log.
    text: String,
}

/// Why a `URL` is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlError {
    /// Neither `rfc2217://` nor `socket://`.
    Scheme,
    /// No `:PORT`, or a port that is not a number from 1 to 65535.
    Port,
    /// Nothing before `:PORT`, or an IPv6 address without its closing `]`.
    Host,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::Scheme => "expected rfc2217://HOST:PORT or socket://HOST:PORT",
            UrlError::Port => "expected :PORT, a number from 1 to 65535, at the end",
            UrlError::Host => "no HOST (an IPv6 address goes in brackets: [::1]:PORT)",
        })
    }
}

impl FromStr for Url {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Url, UrlError> {
        let (scheme, rest) = if let Some(rest) = s.strip_prefix("rfc2217://") {
            (Scheme::Rfc2217, rest)
        } else if let Some(rest) = s.strip_prefix("socket://") {
            (Scheme::Socket, rest)
        } else {
            return Err(UrlError::Scheme);
        };
        let (host, port) = rest.rsplit_once(':').ok_or(UrlError::Port)?;
        // Digits only: `parse` would take a sign, and `:` alone or `:0` is no port either.
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(UrlError::Port);
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(UrlError::Port),
        };
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.strip_suffix(']').ok_or(UrlError::Host)?,
            None if host.bytes().any(|b| matches!(b, b':' | b'[' | b']')) => {
                return Err(UrlError::Host);
            }
            None => host,
        };
        if host.is_empty() || host.bytes().any(|b| matches!(b, b'/' | b'?' | b'@')) {
            return Err(UrlError::Host);
        }
        Ok(Url {
            scheme,
            host: host.to_owned(),
            port,
            text: s.to_owned(),
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Result<Url, UrlError> {
        s.parse()
    }

    #[test]
    fn both_schemes_names_and_addresses() {
        let u = url("rfc2217://gw.lan:5800").expect("url");
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (Scheme::Rfc2217, "gw.lan", 5800)
        );
        let u = url("socket://192.168.1.1:2006").expect("url");
        assert_eq!((u.scheme, u.port), (Scheme::Socket, 2006));
        let u = url("rfc2217://[::1]:7000").expect("url");
        assert_eq!(u.host, "::1");
        assert_eq!(u.to_string(), "rfc2217://[::1]:7000");
        assert_eq!(
            url("socket://h:1").expect("url").to_string(),
            "socket://h:1"
        );
    }

    #[test]
    fn broken_urls_say_what_is_wrong() {
        for (s, e) in [
            ("telnet://h:23", UrlError::Scheme),
            ("h:23", UrlError::Scheme),
            ("RFC2217://h:1", UrlError::Scheme),
            ("rfc2217://h", UrlError::Port),
            ("rfc2217://h:", UrlError::Port),
            ("rfc2217://h:0", UrlError::Port),
            ("rfc2217://h:+5", UrlError::Port),
            ("rfc2217://h:65536", UrlError::Port),
            ("rfc2217://h:5800?logging=debug", UrlError::Port),
            ("rfc2217://:5800", UrlError::Host),
            ("rfc2217://::1:5800", UrlError::Host),
            ("rfc2217://[::1:5800", UrlError::Host),
            ("rfc2217://[::1:58]", UrlError::Port),
            ("rfc2217://[]:5800", UrlError::Host),
            ("rfc2217://user@h:5800", UrlError::Host),
            ("rfc2217://h/x:5800", UrlError::Host),
        ] {
            assert_eq!(url(s), Err(e), "{s}");
        }
    }
}
