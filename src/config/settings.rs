//! `SETTINGS`: the `BAUD,DATABITS,PARITY,STOPBITS` field, parsed and printed back.
//!
//! Pure: text in, [`Settings`] out; nothing here touches a line (that is `serial.rs`).

use std::fmt;

use super::{ErrorKind, number};

pub(super) const MIN_BAUD: u32 = 50;
pub(super) const MAX_BAUD: u32 = 4_000_000;

/// Parity bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parity {
    /// `N`
    None,
    /// `E`
    Even,
    /// `O`
    Odd,
}

/// `BAUD,DATABITS,PARITY,STOPBITS`, fixed by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Bits per second.
    pub baud: u32,
    /// 5 to 8.
    pub data_bits: u8,
    /// Parity.
    pub parity: Parity,
    /// 1 or 2.
    pub stop_bits: u8,
}

impl Default for Settings {
    /// `115200,8,N,1`, the inetd-mode default.
    fn default() -> Self {
        Settings {
            baud: 115_200,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
        }
    }
}

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        write!(
            f,
            "{},{},{},{}",
            self.baud, self.data_bits, p, self.stop_bits
        )
    }
}

impl std::str::FromStr for Settings {
    type Err = ErrorKind;

    fn from_str(s: &str) -> Result<Self, ErrorKind> {
        // Four fields and no fifth, taken from the iterator: collecting them into a Vec
        // costs the router image more.
        let mut parts = s.split(',');
        let (Some(baud), Some(data), Some(parity), Some(stop), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(ErrorKind::BadSettings(s.to_owned()));
        };
        let baud = match number(baud) {
            Some(b) if (MIN_BAUD..=MAX_BAUD).contains(&b) => b,
            _ => return Err(ErrorKind::BadBaud(baud.to_owned())),
        };
        let data_bits = match number(data) {
            Some(d @ 5..=8) => d as u8,
            _ => return Err(ErrorKind::BadDataBits(data.to_owned())),
        };
        let parity = match parity {
            "N" | "n" => Parity::None,
            "E" | "e" => Parity::Even,
            "O" | "o" => Parity::Odd,
            _ => return Err(ErrorKind::BadParity(parity.to_owned())),
        };
        let stop_bits = match number(stop) {
            Some(s @ 1..=2) => s as u8,
            _ => return Err(ErrorKind::BadStopBits(stop.to_owned())),
        };
        Ok(Settings {
            baud,
            data_bits,
            parity,
            stop_bits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_display() {
        let s: Settings = "9600,7,e,2".parse().unwrap();
        assert_eq!(s.to_string(), "9600,7,E,2");
    }
}
