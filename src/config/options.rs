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

/// The options of one line, a field per row of the table; what a line does not give stays at
/// its default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `idle=SECONDS`: end a session with no traffic either way for this long.
    pub idle: Option<Duration>,
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
pub(super) const TABLE: &[Row] = &[Row {
    name: "idle",
    help: "idle=SECONDS",
    expected: "seconds, 1 to 604800",
    set: set_idle,
}];

// `read` keeps the keys it has seen as bits of a u32.
const _: () = assert!(TABLE.len() <= 32);

fn set_idle(options: &mut Options, value: &str) -> Option<()> {
    let secs = number(value).filter(|s| (1..=MAX_IDLE).contains(s))?;
    options.idle = Some(Duration::from_secs(secs.into()));
    Some(())
}

impl Options {
    /// The options of one config line, one word each.
    pub(super) fn from_words(words: &[&str]) -> Result<Options, ErrorKind> {
        read(words, TABLE)
    }
}

impl std::str::FromStr for Options {
    type Err = ErrorKind;

    /// A comma-separated list, `idle=600,flow=rtscts` (inetd mode's `-o`), read with the same
    /// rows and messages as the options of a config line.
    fn from_str(list: &str) -> Result<Self, ErrorKind> {
        Options::from_words(&list.split(',').collect::<Vec<_>>())
    }
}

/// Reads `words` with the rows of `table`; the first unknown, repeated or badly valued word is
/// the error.
fn read(words: &[&str], table: &[Row]) -> Result<Options, ErrorKind> {
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
            return Err(ErrorKind::BadOption((*word).to_owned()));
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

    fn set_flow(_: &mut Options, value: &str) -> Option<()> {
        matches!(value, "none" | "rtscts" | "xonxoff").then_some(())
    }

    /// The real table and one more row, as `flow=` will be.
    const TWO: &[Row] = &[
        TABLE[0],
        Row {
            name: "flow",
            help: "flow=none|rtscts|xonxoff",
            expected: "none, rtscts or xonxoff",
            set: set_flow,
        },
    ];

    fn secs(s: u64) -> Options {
        Options {
            idle: Some(Duration::from_secs(s)),
        }
    }

    #[test]
    fn unknown_option_message_lists_every_row() {
        let every: Vec<&str> = TABLE.iter().map(|row| row.help).collect();
        assert_eq!(
            ErrorKind::BadOption("nope=1".into()).to_string(),
            format!("unknown option 'nope=1' (known: {})", every.join(", "))
        );
        assert_eq!(
            Known(TWO).to_string(),
            "idle=SECONDS, flow=none|rtscts|xonxoff"
        );
    }

    #[test]
    fn a_new_row_needs_no_new_parsing_code() {
        let two = |words: &[&str]| read(words, TWO).map_err(|e| e.to_string());
        assert_eq!(two(&["flow=rtscts", "idle=5"]), Ok(secs(5)));
        assert_eq!(
            two(&["flow=on"]),
            Err("bad flow 'on' (expected none, rtscts or xonxoff)".into())
        );
        assert_eq!(
            two(&["flow=none", "idle=5", "flow=none"]),
            Err("option flow given twice".into())
        );
    }

    #[test]
    fn option_list_reads_like_the_options_of_a_line() {
        let list = |s: &str| s.parse::<Options>().map_err(|e| e.to_string());
        assert_eq!(list("idle=604800"), Ok(secs(604_800)));
        assert_eq!(
            list("idle=5,idel=5"),
            Err("unknown option 'idel=5' (known: idle=SECONDS)".into())
        );
        assert_eq!(list("idle=5,idle=6"), Err("option idle given twice".into()));
        assert_eq!(
            list("idle=604801"),
            Err("bad idle '604801' (expected seconds, 1 to 604800)".into())
        );
        assert_eq!(
            list(""),
            Err("unknown option '' (known: idle=SECONDS)".into())
        );
    }
}
