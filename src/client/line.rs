//! What client mode's local tty asks of the remote line, as RFC 2217 commands, and what the
//! server answered (DESIGN §5). Pure: a termios in, command bytes out.
//!
//! A PTY carries speed, stop bits and flow flags; it forces CS8 and no parity, so data bits
//! and parity are never sent and the server's line keeps its own. `B0` is how a program
//! hangs up a real modem: it is sent as DTR off, and a speed again as DTR on.

use crate::config::Flow;
use crate::serial::termios;
use crate::telnet::{self, Command};

/// SET-CONTROL values (RFC 2217): outbound flow control none, XON/XOFF, hardware; DTR.
const FLOW_NONE: u8 = 1;
const FLOW_XONXOFF: u8 = 2;
const FLOW_HARDWARE: u8 = 3;
/// DTR on.
pub const DTR_ON: u8 = 8;
/// DTR off.
pub const DTR_OFF: u8 = 9;

/// The settings of the tty that the server is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// Bits per second; 0 is `B0` (DTR off).
    pub baud: u32,
    /// 1 or 2.
    pub stop_bits: u8,
    /// Flow control.
    pub flow: Flow,
}

impl Wanted {
    /// What `t` asks for; `custom` is the rate of a `BOTHER` termios (from termios2), if
    /// known. `None` when the speed cannot be told (`BOTHER` where termios2 is missing).
    pub fn of(t: &libc::termios, custom: Option<u32>) -> Option<Wanted> {
        let baud = if t.c_cflag & libc::CBAUD == libc::B0 {
            0
        } else {
            termios::standard_speed(t).or(custom)?
        };
        Some(Wanted {
            baud,
            stop_bits: termios::framing(t).2,
            flow: termios::flow(t),
        })
    }
}

/// A setting a server answers, one bit each in [`Asked`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// SET-BAUDRATE.
    Baud = 0,
    /// SET-STOPSIZE.
    StopSize = 1,
    /// SET-CONTROL, flow control values.
    Flow = 2,
    /// SET-CONTROL, DTR values.
    Dtr = 3,
}

const SETTINGS: [Setting; 4] = [
    Setting::Baud,
    Setting::StopSize,
    Setting::Flow,
    Setting::Dtr,
];

impl Setting {
    /// The RFC 2217 command that sets it.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Baud => "SET-BAUDRATE",
            Setting::StopSize => "SET-STOPSIZE",
            Setting::Flow | Setting::Dtr => "SET-CONTROL",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// What was asked of the server and not answered yet, and what it is known to do wrong.
#[derive(Debug, Default)]
pub struct Asked {
    waiting: [Option<u32>; 4],
    /// Settings whose odd answer was logged already: each is logged once.
    odd: u8,
    /// Settings the server left unanswered once: not waited for again.
    silent: u8,
}

/// An answer that is not the value asked: logged (once per setting).
#[derive(Debug, PartialEq, Eq)]
pub struct Odd {
    /// Which.
    pub setting: Setting,
    /// What was asked.
    pub asked: u32,
    /// What the server answered.
    pub answered: u32,
}

impl Asked {
    fn ask(&mut self, setting: Setting, value: u32) {
        self.waiting[setting as usize] = Some(value);
    }

    /// Takes the server's answer `cmd`; `Some` the first time a setting is answered with
    /// another value than asked (ser2net and sredird do that for DTR on a PTY).
    pub fn answer(&mut self, cmd: Command) -> Option<Odd> {
        let (setting, value) = match cmd {
            Command::SetBaud(v) => (Setting::Baud, v),
            Command::SetStopSize(v) => (Setting::StopSize, v.into()),
            Command::SetControl(v) => {
                let flow = self.waiting[Setting::Flow as usize];
                let dtr = self.waiting[Setting::Dtr as usize];
                // A flow value answers flow if that was asked; anything else answers DTR if
                // that was, however odd the value.
                let setting = match (v, flow, dtr) {
                    (FLOW_NONE..=FLOW_HARDWARE, Some(_), _) => Setting::Flow,
                    (_, _, Some(_)) => Setting::Dtr,
                    _ => Setting::Flow,
                };
                (setting, v.into())
            }
            _ => return None,
        };
        let asked = self.waiting[setting as usize].take()?;
        if asked == value || self.odd & setting.bit() != 0 {
            return None;
        }
        self.odd |= setting.bit();
        Some(Odd {
            setting,
            asked,
            answered: value,
        })
    }

    /// Forgets what is still unanswered (a connection ended), not what was learnt.
    pub fn forget(&mut self) {
        self.waiting = [None; 4];
    }

    /// Whether every answer worth waiting for has come.
    pub fn settled(&self) -> bool {
        SETTINGS
            .iter()
            .all(|&s| self.waiting[s as usize].is_none() || self.silent & s.bit() != 0)
    }

    /// Stops waiting: the settings still unanswered are not waited for again. Returns them
    /// with what was asked, the first time each is left unanswered (to be logged once).
    pub fn give_up(&mut self) -> Vec<(Setting, u32)> {
        let mut newly = Vec::new();
        for s in SETTINGS {
            if let Some(v) = self.waiting[s as usize].take() {
                if self.silent & s.bit() == 0 {
                    self.silent |= s.bit();
                    newly.push((s, v));
                }
            }
        }
        newly
    }
}

/// Appends to `out` the COM-PORT commands that take the server from `told` (`None`: nothing
/// told yet in this connection) to `now`, and notes them in `asked`.
pub fn commands(told: Option<Wanted>, now: Wanted, out: &mut Vec<u8>, asked: &mut Asked) {
    let was = told.map(|w| w.baud);
    if was != Some(now.baud) {
        if now.baud == 0 {
            control(DTR_OFF, Setting::Dtr, out, asked);
        } else {
            telnet::subnegotiation(telnet::SET_BAUDRATE, &now.baud.to_be_bytes(), out);
            asked.ask(Setting::Baud, now.baud);
            if was.is_none_or(|b| b == 0) {
                control(DTR_ON, Setting::Dtr, out, asked);
            }
        }
    }
    if told.map(|w| w.stop_bits) != Some(now.stop_bits) {
        telnet::subnegotiation(telnet::SET_STOPSIZE, &[now.stop_bits], out);
        asked.ask(Setting::StopSize, now.stop_bits.into());
    }
    if told.map(|w| w.flow) != Some(now.flow) {
        let v = match now.flow {
            Flow::None => FLOW_NONE,
            Flow::XonXoff => FLOW_XONXOFF,
            Flow::RtsCts => FLOW_HARDWARE,
        };
        control(v, Setting::Flow, out, asked);
    }
}

/// Appends SET-CONTROL `value` and notes it as asked for `setting`.
pub fn control(value: u8, setting: Setting, out: &mut Vec<u8>, asked: &mut Asked) {
    telnet::subnegotiation(telnet::SET_CONTROL, &[value], out);
    asked.ask(setting, value.into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telnet::Decoder;

    fn termios(speed: libc::speed_t) -> libc::termios {
        // SAFETY: termios is plain old data; all zero is a valid (B0, CS5) value.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        termios::raw(&mut t);
        // SAFETY: `t` is a valid termios; cfsetspeed only edits it.
        unsafe { libc::cfsetspeed(&mut t, speed) };
        t
    }

    /// What the server decodes of `bytes`, as the client's commands.
    fn decoded(bytes: &[u8]) -> Vec<Command> {
        let mut d = Decoder::new();
        let mut buf = bytes.to_vec();
        let (mut replies, mut commands) = (Vec::new(), Vec::new());
        let n = d.decode(&mut buf, bytes.len(), &mut replies, &mut commands);
        assert_eq!(n, 0, "no data among the commands");
        commands
    }

    #[test]
    fn termios_read_as_wanted() {
        let mut t = termios(libc::B9600);
        t.c_cflag |= libc::CSTOPB | libc::CRTSCTS;
        assert_eq!(
            Wanted::of(&t, None),
            Some(Wanted {
                baud: 9600,
                stop_bits: 2,
                flow: Flow::RtsCts
            })
        );
        assert_eq!(
            Wanted::of(&termios(libc::B0), None).map(|w| w.baud),
            Some(0)
        );
        let mut other = termios(libc::B9600);
        other.c_cflag = (other.c_cflag & !libc::CBAUD) | libc::BOTHER;
        assert_eq!(Wanted::of(&other, None), None);
        assert_eq!(
            Wanted::of(&other, Some(31_250)).map(|w| w.baud),
            Some(31_250)
        );
    }

    #[test]
    fn first_connection_tells_everything_then_only_changes() {
        use Command::*;
        let mut asked = Asked::default();
        let w = Wanted {
            baud: 115_200,
            stop_bits: 1,
            flow: Flow::None,
        };
        let mut out = Vec::new();
        commands(None, w, &mut out, &mut asked);
        assert_eq!(
            decoded(&out),
            [
                SetBaud(115_200),
                SetControl(DTR_ON),
                SetStopSize(1),
                SetControl(FLOW_NONE)
            ]
        );
        let mut out = Vec::new();
        commands(Some(w), w, &mut out, &mut asked);
        assert!(out.is_empty());
        let slower = Wanted {
            baud: 9600,
            stop_bits: 2,
            ..w
        };
        commands(Some(w), slower, &mut out, &mut asked);
        assert_eq!(decoded(&out), [SetBaud(9600), SetStopSize(2)]);
    }

    #[test]
    fn b0_drops_dtr_and_a_speed_raises_it_again() {
        use Command::*;
        let mut asked = Asked::default();
        let up = Wanted {
            baud: 57_600,
            stop_bits: 1,
            flow: Flow::XonXoff,
        };
        let down = Wanted { baud: 0, ..up };
        let mut out = Vec::new();
        commands(Some(up), down, &mut out, &mut asked);
        assert_eq!(decoded(&out), [SetControl(DTR_OFF)]);
        out.clear();
        commands(Some(down), up, &mut out, &mut asked);
        assert_eq!(decoded(&out), [SetBaud(57_600), SetControl(DTR_ON)]);
    }

    #[test]
    fn answers_settle_and_odd_ones_are_told_once() {
        use Command::*;
        let mut asked = Asked::default();
        let w = Wanted {
            baud: 9600,
            stop_bits: 1,
            flow: Flow::None,
        };
        commands(None, w, &mut Vec::new(), &mut asked);
        assert!(!asked.settled());
        assert_eq!(asked.answer(SetBaud(9600)), None);
        assert_eq!(asked.answer(SetControl(FLOW_NONE)), None);
        assert_eq!(asked.answer(SetStopSize(1)), None);
        // sredird on a PTY: DTR on answered with another value.
        assert_eq!(
            asked.answer(SetControl(7)),
            Some(Odd {
                setting: Setting::Dtr,
                asked: DTR_ON.into(),
                answered: 7
            })
        );
        assert!(asked.settled());
        control(DTR_ON, Setting::Dtr, &mut Vec::new(), &mut asked);
        assert_eq!(asked.answer(SetControl(7)), None, "told once");
        assert_eq!(asked.answer(SetBaud(9600)), None, "unasked");
    }

    #[test]
    fn an_unanswered_setting_is_given_up_once_and_not_waited_for_again() {
        let mut asked = Asked::default();
        control(DTR_ON, Setting::Dtr, &mut Vec::new(), &mut asked);
        assert!(!asked.settled());
        assert_eq!(asked.give_up(), [(Setting::Dtr, u32::from(DTR_ON))]);
        control(DTR_ON, Setting::Dtr, &mut Vec::new(), &mut asked);
        assert!(asked.settled(), "a silent setting is not waited for");
        assert!(asked.give_up().is_empty());
    }
}
