//! The line as a modem needs it (DESIGN §2–§3): flow control, the hang-up and its hold,
//! nothing stale for the next client, busy only when busy. The device is a PTY master the
//! test drives; Linux lets the master read the slave's termios, which is how the line's
//! flags are seen.

mod common;

use common::*;

/// (option, CRTSCTS expected, IXON|IXOFF expected)
const FLOWS: [(&str, bool, bool); 4] = [
    ("", false, false),
    ("flow=none", false, false),
    ("flow=rtscts", true, false),
    ("flow=xonxoff", false, true),
];

/// Whether the line has hardware and software flow control on.
fn flow_flags(pty: &Pty) -> (bool, bool) {
    let t = pty.termios();
    let soft = libc::IXON | libc::IXOFF;
    (t.c_cflag & libc::CRTSCTS != 0, t.c_iflag & soft == soft)
}

#[test]
fn flow_option_sets_the_line() {
    for (option, hard, soft) in FLOWS {
        let pty = Pty::open().expect("pty");
        let (_d, addr) = one_device(&pty.slave, option, &[]);
        let _c = session(&pty, addr);
        assert_eq!(flow_flags(&pty), (hard, soft), "with '{option}'");
    }
}
