//! `OPTIONS`: the `KEY=VALUE` words after `HOSTS` (and inetd mode's `-o` list), read through
//! one table.
//!
//! Each option is one [`Row`] of [`TABLE`]: its key, how it is written in the unknown-option
//! message, what its values may be, and a plain `fn` that parses a value into its field of
//! [`Options`]. The checks every option shares (unknown key, repeated key, bad value) are
//! written once, here, so a new option is a row, a field and a value parser, and no new
//! parsing code. Pure: text in, values out.

use std::fmt;
use std::time::Duration;

use super::{ErrorKind, number};

/// Longest `idle=` accepted: a week.
const MAX_IDLE: u32 = 7 * 24 * 3600;
/// Longest `hangup=` accepted: a modem needs well under a second of DTR low; pppd holds 1 s.
const MAX_HANGUP_MS: u32 = 10_000;
/// Longest hold `hangup=` can ask for.
pub const MAX_HANGUP: Duration = Duration::from_millis(MAX_HANGUP_MS as u64);
/// `hangup=` when a line gives none.
pub const DEFAULT_HANGUP: Duration = Duration::from_millis(500);

/// The options of one line, a field per row of the table; what a line does not give stays at
/// its default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `idle=SECONDS`: end a session with no traffic either way for this long.
    pub idle: Option<Duration>,
    /// `flow=`: flow control on the line.
    pub flow: Flow,
    /// `hangup=`: how the line is left when a session ends.
    pub hangup: Hangup,
    /// `rfc2217=`: raw bytes, or Telnet with COM-PORT-OPTION.
    pub rfc2217: Rfc2217,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            idle: None,
            flow: Flow::None,
            hangup: Hangup::Hold(DEFAULT_HANGUP),
            rfc2217: Rfc2217::Off,
        }
    }
}

/// Flow control on a line (`flow=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flow {
    /// `none`: the line never pauses.
    #[default]
    None,
    /// `rtscts`: hardware flow control, the modem throttles us with CTS and we it with RTS.
    RtsCts,
    /// `xonxoff`: software flow control, XON/XOFF bytes both ways.
    XonXoff,
}

/// How a session leaves the line (`hangup=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hangup {
    /// DTR (and RTS) dropped, the device kept open and locked this long while what it says is
    /// read and thrown away, then freed. Zero frees it at once.
    Hold(Duration),
    /// `off`: DTR and RTS are never dropped (`HUPCL` cleared), for boards that reset on DTR.
    Off,
}

/// What a client speaks on a line (`rfc2217=`, DESIGN §4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rfc2217 {
    /// Not given: raw bytes both ways, no Telnet.
    #[default]
    Off,
    /// `on`: Telnet with COM-PORT-OPTION (RFC 2217); clients may set the line.
    On,
    /// `fixed`: COM-PORT-OPTION, but clients are told the settings and cannot change them.
    Fixed,
}

impl Hangup {
    /// How long the device is held after a session: zero for `off`.
    pub fn hold(self) -> Duration {
        match self {
            Hangup::Hold(hold) => hold,
            Hangup::Off => Duration::ZERO,
        }
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flow::None => "none",
            Flow::RtsCts => "rtscts",
            Flow::XonXoff => "xonxoff",
        })
    }
}

impl fmt::Display for Rfc2217 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rfc2217::Off => "off",
            Rfc2217::On => "on",
            Rfc2217::Fixed => "fixed",
        })
    }
}

/// One option. Plain `fn` pointers rather than a trait or a generic per option: one copy of
/// the machinery below in the router image, however many rows there are.
#[derive(Clone, Copy)]
pub(super) struct Row {
    /// The key before `=`.
    name: &'static str,
    /// How the option is written, for the unknown-option message: `idle=SECONDS`.
    help: &'static str,
    /// What a value may be, for the bad-value message.
    expected: &'static str,
    /// Parses a value into its field of [`Options`]; `None` if the value is bad.
    set: fn(&mut Options, &str) -> Option<()>,
}

/// Every option this version knows, in the order the unknown-option message lists them.
pub(super) const TABLE: &[Row] = &[
    Row {
        name: "idle",
        help: "idle=SECONDS",
        expected: "seconds, 1 to 604800",
        set: set_idle,
    },
    Row {
        name: "flow",
        help: "flow=none|rtscts|xonxoff",
        expected: "none, rtscts or xonxoff",
        set: set_flow,
    },
    Row {
        name: "hangup",
        help: "hangup=MS|off",
        expected: "milliseconds, 0 to 10000, or off",
        set: set_hangup,
    },
    Row {
        name: "rfc2217",
        help: "rfc2217=on|fixed",
        expected: "on or fixed",
        set: set_rfc2217,
    },
];

// `read` keeps the keys it has seen as bits of a u32.
const _: () = assert!(TABLE.len() <= 32);

fn set_idle(options: &mut Options, value: &str) -> Option<()> {
    let secs = number(value).filter(|s| (1..=MAX_IDLE).contains(s))?;
    options.idle = Some(Duration::from_secs(secs.into()));
    Some(())
}

fn set_flow(options: &mut Options, value: &str) -> Option<()> {
    options.flow = match value {
        "none" => Flow::None,
        "rtscts" => Flow::RtsCts,
        "xonxoff" => Flow::XonXoff,
        _ => return None,
    };
    Some(())
}

fn set_hangup(options: &mut Options, value: &str) -> Option<()> {
    options.hangup = match value {
        "off" => Hangup::Off,
        ms => Hangup::Hold(Duration::from_millis(
            number(ms).filter(|&ms| ms <= MAX_HANGUP_MS)?.into(),
        )),
    };
    Some(())
}

fn set_rfc2217(options: &mut Options, value: &str) -> Option<()> {
    options.rfc2217 = match value {
        "on" => Rfc2217::On,
        "fixed" => Rfc2217::Fixed,
        _ => return None,
    };
    Some(())
}

impl Options {
    /// The options of one config line, one word each.
    pub(super) fn from_words(words: &[&str]) -> Result<Options, ErrorKind> {
        read(&mut words.iter().copied(), TABLE)
    }
}

impl std::str::FromStr for Options {
    type Err = ErrorKind;

    /// A comma-separated list, `idle=600,flow=rtscts` (inetd mode's `-o`), read with the same
    /// rows and messages as the options of a config line.
    fn from_str(list: &str) -> Result<Self, ErrorKind> {
        read(&mut list.split(','), TABLE)
    }
}

/// Reads `words` with the rows of `table`; the first unknown, repeated or badly valued word is
/// the error. The words come as one iterator type for both callers (a config line's slice
/// and `-o`'s comma list), so the router image holds one copy of this and no Vec of them.
fn read(words: &mut dyn Iterator<Item = &str>, table: &[Row]) -> Result<Options, ErrorKind> {
    let mut options = Options::default();
    let mut seen = 0u32;
    for word in words {
        // An unknown option is an error: ignoring it would hide a typo, or a config written
        // for a newer modemd.
        let found = word.split_once('=').and_then(|(key, value)| {
            let i = table.iter().position(|row| row.name == key)?;
            Some((i, value))
        });
        let Some((i, value)) = found else {
            return Err(ErrorKind::BadOption(word.to_owned()));
        };
        let row = &table[i];
        if seen & 1 << i != 0 {
            return Err(ErrorKind::RepeatedOption(row.name));
        }
        seen |= 1 << i;
        if (row.set)(&mut options, value).is_none() {
            return Err(ErrorKind::BadOptionValue {
                key: row.name,
                value: value.to_owned(),
                expected: row.expected,
            });
        }
    }
    Ok(options)
}

/// The help texts of a table, comma-separated: `idle=SECONDS, flow=none|rtscts|xonxoff`.
pub(super) struct Known(pub(super) &'static [Row]);

impl fmt::Display for Known {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, row) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(row.help)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> Result<Options, String> {
        s.parse::<Options>().map_err(|e| e.to_string())
    }

    #[test]
    fn unknown_option_message_lists_every_row() {
        assert_eq!(
            ErrorKind::BadOption("nope=1".into()).to_string(),
            "unknown option 'nope=1' (known: idle=SECONDS, flow=none|rtscts|xonxoff, \
             hangup=MS|off, rfc2217=on|fixed)"
        );
    }

    #[test]
    fn options_not_given_keep_their_defaults() {
        let o = list("idle=5").expect("idle");
        assert_eq!(o.idle, Some(Duration::from_secs(5)));
        assert_eq!(
            (o.flow, o.hangup, o.rfc2217),
            (Flow::None, Hangup::Hold(DEFAULT_HANGUP), Rfc2217::Off)
        );
        assert_eq!(DEFAULT_HANGUP, Duration::from_millis(500));
    }

    #[test]
    fn flow_and_hangup_values() {
        assert_eq!(list("flow=rtscts").map(|o| o.flow), Ok(Flow::RtsCts));
        assert_eq!(list("flow=xonxoff").map(|o| o.flow), Ok(Flow::XonXoff));
        assert_eq!(list("flow=none").map(|o| o.flow), Ok(Flow::None));
        let hold = |ms| Ok(Hangup::Hold(Duration::from_millis(ms)));
        assert_eq!(list("hangup=0").map(|o| o.hangup), hold(0));
        assert_eq!(list("hangup=10000").map(|o| o.hangup), hold(10_000));
        assert_eq!(list("hangup=off").map(|o| o.hangup), Ok(Hangup::Off));
        assert_eq!(
            list("flow=on"),
            Err("bad flow 'on' (expected none, rtscts or xonxoff)".into())
        );
        for bad in ["10001", "-1", "", "1s", "OFF"] {
            assert_eq!(
                list(&format!("hangup={bad}")),
                Err(format!(
                    "bad hangup '{bad}' (expected milliseconds, 0 to 10000, or off)"
                ))
            );
        }
    }

    #[test]
    fn rfc2217_values() {
        assert_eq!(list("rfc2217=on").map(|o| o.rfc2217), Ok(Rfc2217::On));
        assert_eq!(list("rfc2217=fixed").map(|o| o.rfc2217), Ok(Rfc2217::Fixed));
        // Off is the default, not a value: a line without the option is raw.
        for bad in ["off", "ON", "yes", "1", ""] {
            assert_eq!(
                list(&format!("rfc2217={bad}")),
                Err(format!("bad rfc2217 '{bad}' (expected on or fixed)"))
            );
        }
        assert_eq!(
            list("rfc2217=on,rfc2217=fixed"),
            Err("option rfc2217 given twice".into())
        );
        // `-t` and the logs write it as the config word.
        let words = [Rfc2217::Off, Rfc2217::On, Rfc2217::Fixed].map(|r| r.to_string());
        assert_eq!(words, ["off", "on", "fixed"]);
    }

    #[test]
    fn option_list_reads_like_the_options_of_a_line() {
        let o = list("flow=rtscts,hangup=1000,idle=604800,rfc2217=fixed").expect("four options");
        assert_eq!(o.idle, Some(Duration::from_secs(604_800)));
        assert_eq!(o.flow, Flow::RtsCts);
        assert_eq!(o.hangup, Hangup::Hold(Duration::from_secs(1)));
        assert_eq!(o.rfc2217, Rfc2217::Fixed);
        // inetd mode's `-o rfc2217=on`: the option alone.
        assert_eq!(list("rfc2217=on").map(|o| o.rfc2217), Ok(Rfc2217::On));
        assert_eq!(
            list("idle=5,idel=5"),
            Err(
                "unknown option 'idel=5' (known: idle=SECONDS, flow=none|rtscts|xonxoff, \
                 hangup=MS|off, rfc2217=on|fixed)"
                    .into()
            )
        );
        assert_eq!(
            list("flow=none,idle=5,flow=none"),
            Err("option flow given twice".into())
        );
        assert_eq!(
            list("idle=604801"),
            Err("bad idle '604801' (expected seconds, 1 to 604800)".into())
        );
        assert!(list("").is_err());
    }
}
