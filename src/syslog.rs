//! A syslog client: one datagram per line to `/dev/log`, framed as BSD syslog
//! (`<PRI>modemd[PID]: text`).
//!
//! Why not syslog(3): it brings printf and the C library's time zone code (for a timestamp the
//! syslog daemon adds anyway) into the router image, about 8 KiB of its 288 KiB budget. The frame omits the timestamp, which RFC 3164 §4.3.2 allows:
//! busybox syslogd, OpenWrt's logd, rsyslog and journald all stamp such a message with its
//! time of arrival.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;

/// The socket every local syslog daemon listens on.
const DEV_LOG: &str = "/dev/log";
/// `daemon` facility (3), shifted as the priority value wants it.
const FACILITY_DAEMON: u8 = 3 << 3;
/// The largest message RFC 3164 lets a relay pass on; longer lines are cut at a character.
pub const MAX_FRAME: usize = 1024;

/// The frame of one line: priority, ident and PID, then `text` with NULs made visible (a C
/// syslog daemon would end the message at the first one), cut to [`MAX_FRAME`] bytes.
pub fn frame(severity: u8, pid: u32, text: &str) -> Vec<u8> {
    let mut out = format!("<{}>modemd[{pid}]: ", FACILITY_DAEMON | (severity & 7)).into_bytes();
    for c in text.chars() {
        let mut buf = [0u8; 4];
        let piece: &[u8] = if c == '\0' {
            b"\\0"
        } else {
            c.encode_utf8(&mut buf).as_bytes()
        };
        if out.len() + piece.len() > MAX_FRAME {
            break;
        }
        out.extend_from_slice(piece);
    }
    out
}

/// The connection to the syslog daemon, made on first use and remade once when a send fails
/// (the daemon was restarted, or was not up yet).
static SOCKET: Mutex<Option<UnixDatagram>> = Mutex::new(None);

fn connect() -> io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(DEV_LOG)?;
    Ok(s)
}

/// Connects now, so that the first line does not depend on what the process may still open
/// later (after a privilege drop, say). A missing syslog daemon is not an error: lines are
/// then dropped, as syslog(3) drops them.
pub fn open() {
    if let Ok(mut guard) = SOCKET.lock() {
        *guard = connect().ok();
    }
}

/// Sends one line with `severity` (a syslog level, 0–7).
pub fn send(severity: u8, text: &str) {
    let msg = frame(severity, std::process::id(), text);
    let Ok(mut guard) = SOCKET.lock() else {
        return;
    };
    if let Some(s) = guard.as_ref() {
        if s.send(&msg).is_ok() {
            return;
        }
    }
    *guard = connect().ok();
    if let Some(s) = guard.as_ref() {
        let _ = s.send(&msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_has_priority_ident_and_pid() {
        assert_eq!(
            frame(6, 42, "listening on 127.0.0.1:2006"),
            b"<30>modemd[42]: listening on 127.0.0.1:2006"
        );
        assert_eq!(frame(3, 1, "x"), b"<27>modemd[1]: x");
    }

    #[test]
    fn nul_is_shown_not_sent() {
        assert_eq!(frame(6, 7, "a\0b"), b"<30>modemd[7]: a\\0b");
    }

    #[test]
    fn long_lines_are_cut_at_a_character() {
        let text = "é".repeat(2000);
        let f = frame(6, 7, &text);
        assert!(f.len() <= MAX_FRAME && f.len() > MAX_FRAME - 2);
        assert!(std::str::from_utf8(&f).is_ok());
    }
}
