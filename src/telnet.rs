//! Telnet (RFC 854) with COM-PORT-OPTION (RFC 2217): the peer's bytes in, its data, our
//! negotiation answers and its COM-PORT commands out. The server side of an `rfc2217` line
//! (DESIGN §4) and, with [`Decoder::client`], client mode's side (DESIGN §5), where the
//! commands are the server's answers (code + [`SERVER`]) read back as the same [`Command`]s.
//!
//! Pure: [`Decoder`] is a state machine over bytes, with no I/O and no clock, so any split of
//! the stream across reads decodes the same as the whole. What to do with a command (apply a
//! speed, read it back, answer code + [`SERVER`]) is the caller's job; this module only builds
//! the frames ([`subnegotiation`], [`escape`]).
//!
//! Negotiation is RFC 1143's Q method, cut down to what a server that never withdraws an
//! option needs: each side of BINARY (RFC 856), SGA (RFC 858) and COM-PORT-OPTION is NO, YES
//! or WANTYES (asked by [`Decoder::greeting`]). A request for a change gets one answer, a
//! request for what is in force or an answer to our own request gets none, so two Q-method
//! peers cannot loop. Every other option is refused once per request (`WILL x` → `DONT x`,
//! `DO x` → `WONT x`), ECHO included: pyserial asks `DO ECHO` and takes `WONT ECHO` fine.
//!
//! Data passes as it is (binary mode is assumed both ways, so no CR NUL / CR LF rewriting;
//! pyserial does none either), with `IAC IAC` read as one 0xFF. Telnet commands other than
//! BREAK (NOP, DM, IP, AO, AYT, EC, EL, GA, a stray SE) are dropped. A subnegotiation holds at
//! most [`MAX_SB`] bytes; a longer one is discarded whole at its `IAC SE`. COM-PORT commands
//! are taken before the client's `WILL COM-PORT-OPTION` too (RFC 855 has an option agreed
//! first, but a client that skips that gains nothing: the line is an RFC 2217 line anyway).
#![forbid(unsafe_code)]

/// Interpret As Command: starts every Telnet command; doubled, it is one 0xFF data byte.
pub const IAC: u8 = 255;
/// Subnegotiation End.
pub const SE: u8 = 240;
/// Break: the client wants a break sent on the line.
pub const BRK: u8 = 243;
/// Subnegotiation Begin.
pub const SB: u8 = 250;
/// The sender will use (or uses) an option.
pub const WILL: u8 = 251;
/// The sender will not use an option.
pub const WONT: u8 = 252;
/// The sender asks the receiver to use an option.
pub const DO: u8 = 253;
/// The sender asks the receiver not to use an option.
pub const DONT: u8 = 254;

/// Option: 8-bit data path (RFC 856).
pub const BINARY: u8 = 0;
/// Option: suppress go-ahead (RFC 858).
pub const SGA: u8 = 3;
/// Option: COM-PORT-OPTION (RFC 2217).
pub const COM_PORT_OPTION: u8 = 44;

/// Server answers are the client command code + 100.
pub const SERVER: u8 = 100;
/// RFC 2217 SIGNATURE: without text, a request for the receiver's signature.
pub const SIGNATURE: u8 = 0;
/// RFC 2217 SET-BAUDRATE: 4 bytes, big-endian; 0 queries.
pub const SET_BAUDRATE: u8 = 1;
/// RFC 2217 SET-DATASIZE: 5 to 8; 0 queries.
pub const SET_DATASIZE: u8 = 2;
/// RFC 2217 SET-PARITY: 1 none, 2 odd, 3 even, 4 mark, 5 space; 0 queries.
pub const SET_PARITY: u8 = 3;
/// RFC 2217 SET-STOPSIZE: 1 one, 2 two, 3 one and a half; 0 queries.
pub const SET_STOPSIZE: u8 = 4;
/// RFC 2217 SET-CONTROL: flow control, BREAK, DTR, RTS and their queries.
pub const SET_CONTROL: u8 = 5;
/// RFC 2217 NOTIFY-LINESTATE.
pub const NOTIFY_LINESTATE: u8 = 6;
/// RFC 2217 NOTIFY-MODEMSTATE.
pub const NOTIFY_MODEMSTATE: u8 = 7;
/// RFC 2217 FLOWCONTROL-SUSPEND: stop sending data to the client.
pub const FLOWCONTROL_SUSPEND: u8 = 8;
/// RFC 2217 FLOWCONTROL-RESUME: send data to the client again.
pub const FLOWCONTROL_RESUME: u8 = 9;
/// RFC 2217 SET-LINESTATE-MASK.
pub const SET_LINESTATE_MASK: u8 = 10;
/// RFC 2217 SET-MODEMSTATE-MASK.
pub const SET_MODEMSTATE_MASK: u8 = 11;
/// RFC 2217 PURGE-DATA: 1 receive buffer, 2 transmit buffer, 3 both.
pub const PURGE_DATA: u8 = 12;

/// The most bytes a subnegotiation may hold between `IAC SB` and `IAC SE`, option byte
/// included (after `IAC IAC` is undone). RFC 2217's longest is a signature, which a client
/// sends only to tell its own, and that is ignored.
pub const MAX_SB: usize = 64;

/// A COM-PORT-OPTION command from the client, or a Telnet BREAK. In client mode: the
/// server's answer to that command (its value the one in force), or its notification.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub enum Command {
    /// The client asks for the server's signature (SIGNATURE without text; a client telling
    /// its own signature is no request and gives no command).
    Signature,
    /// SET-BAUDRATE; 0 queries (so does a value shorter than 4 bytes).
    SetBaud(u32),
    /// SET-DATASIZE; 0 queries.
    SetDataSize(u8),
    /// SET-PARITY; 0 queries.
    SetParity(u8),
    /// SET-STOPSIZE; 0 queries.
    SetStopSize(u8),
    /// SET-CONTROL with its value (0, 4, 7, 10 and 13 are queries).
    SetControl(u8),
    /// NOTIFY-MODEMSTATE from the client: it asks for the modem state now (pyserial's
    /// `poll_modem` does).
    NotifyModemState,
    /// NOTIFY-LINESTATE from the client: it asks for the line state now.
    NotifyLineState,
    /// FLOWCONTROL-SUSPEND: send the client no data until [`Command::Resume`].
    Suspend,
    /// FLOWCONTROL-RESUME.
    Resume,
    /// SET-LINESTATE-MASK.
    LineStateMask(u8),
    /// SET-MODEMSTATE-MASK.
    ModemStateMask(u8),
    /// PURGE-DATA with its value.
    Purge(u8),
    /// Telnet BREAK (`IAC BRK`): send a break on the line.
    Break,
}

/// Where the decoder is in the client's stream.
#[derive(Clone, Copy)]
enum State {
    Data,
    /// After IAC, outside a subnegotiation.
    Iac,
    /// After IAC WILL/WONT/DO/DONT (the byte kept), before the option.
    Verb(u8),
    /// Inside IAC SB ... IAC SE.
    Sb,
    /// After IAC inside a subnegotiation.
    SbIac,
}

/// What the server says first (see [`Decoder::greeting`]).
#[rustfmt::skip]
const GREETING: [u8; 12] = [
    IAC, WILL, BINARY, IAC, DO, BINARY, IAC, WILL, SGA, IAC, DO, COM_PORT_OPTION,
];

/// What client mode says first: BINARY both ways, SGA both ways, and that it will do
/// COM-PORT-OPTION (RFC 2217: the client says WILL, the server DO).
#[rustfmt::skip]
const CLIENT_GREETING: [u8; 15] = [
    IAC, WILL, BINARY, IAC, DO, BINARY, IAC, WILL, SGA, IAC, DO, SGA, IAC, WILL, COM_PORT_OPTION,
];

/// RFC 1143 states of one side of one option. WANTNO is never entered: this server never
/// asks to turn an option off.
const NO: u8 = 0;
const YES: u8 = 1;
const WANTYES: u8 = 2;

/// The client's side of the Telnet connection, decoded: see the module documentation.
pub struct Decoder {
    state: State,
    /// RFC 1143 state per option and side: BINARY, SGA, COM-PORT-OPTION, each us then him.
    q: [u8; 6],
    /// The first bytes of the subnegotiation being read: option, code, up to 4 value bytes;
    /// zero where the client sent none.
    sb: [u8; 6],
    /// How many bytes it holds so far; stops at `MAX_SB + 1` (too long: to be discarded).
    sb_len: u8,
    /// Client mode: the peer is a server, whose COM-PORT codes are ours + [`SERVER`].
    client: bool,
}

/// The slot of `opt` in [`Decoder::q`] for our side or the client's (`him`); None for an
/// option we do not support.
fn slot(opt: u8, him: bool) -> Option<usize> {
    let i = match opt {
        BINARY => 0,
        SGA => 2,
        COM_PORT_OPTION => 4,
        _ => return None,
    };
    Some(i + usize::from(him))
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder at the start of a connection: every option off, nothing asked yet.
    pub fn new() -> Decoder {
        Decoder {
            state: State::Data,
            q: [NO; 6],
            sb: [0; 6],
            sb_len: 0,
            client: false,
        }
    }

    /// A decoder for client mode's side of the connection (see [`Decoder::greeting`]).
    pub fn client() -> Decoder {
        Decoder {
            client: true,
            ..Decoder::new()
        }
    }

    /// What the server says first: `IAC WILL BINARY`, `IAC DO BINARY`, `IAC WILL SGA`,
    /// `IAC DO COM-PORT-OPTION`, appended to `out`. Those are then pending (RFC 1143 WANTYES),
    /// so the client's agreement gets no second reply. Call it once, before the first
    /// [`Decoder::decode`]: it sets the state those requests start from.
    /// A client decoder says `IAC WILL BINARY`, `IAC DO BINARY`, `IAC WILL SGA`, `IAC DO SGA`,
    /// `IAC WILL COM-PORT-OPTION` instead.
    pub fn greeting(&mut self, out: &mut Vec<u8>) {
        // Slots as in `slot`: BINARY us, him; SGA us, him; COM-PORT-OPTION us, him.
        if self.client {
            out.extend_from_slice(&CLIENT_GREETING);
            self.q = [WANTYES, WANTYES, WANTYES, WANTYES, WANTYES, NO];
        } else {
            out.extend_from_slice(&GREETING);
            self.q = [WANTYES, WANTYES, WANTYES, NO, NO, WANTYES];
        }
    }

    /// The state of COM-PORT-OPTION on the side that RFC 2217 has use it (the client's).
    fn com_port_state(&self) -> u8 {
        self.q[if self.client { 4 } else { 5 }]
    }

    /// Whether COM-PORT-OPTION is agreed: a server's client sent `WILL COM-PORT-OPTION`, a
    /// client's server `DO COM-PORT-OPTION`. The server checks it after each decode to send
    /// its first NOTIFY-MODEMSTATE once.
    pub fn com_port(&self) -> bool {
        self.com_port_state() == YES
    }

    /// Whether our request for COM-PORT-OPTION still waits for the peer's answer.
    pub fn com_port_pending(&self) -> bool {
        self.com_port_state() == WANTYES
    }

    /// Decodes the client's bytes `buf[..n]` (`n <= buf.len()`) in place: Telnet data bytes
    /// (`IAC IAC` → one 0xFF) are moved to the front of `buf` and their count returned (never
    /// more than `n`); negotiation answers are appended to `replies` (raw bytes to send as
    /// they are); COM-PORT commands and BREAK are pushed to `commands`, in order. State
    /// carries over between calls: any split of the stream (an IAC at the end of one read, a
    /// subnegotiation across reads) decodes the same as the whole.
    ///
    /// A subnegotiation broken by IAC and a byte other than IAC or SE is discarded, and that
    /// IAC and byte are read as the command they are (so `IAC WILL x` or a new `IAC SB` still
    /// counts). BSD telnetd ends the subnegotiation there too, but acts on its first part; a
    /// COM-PORT request cut short is not acted on here.
    pub fn decode(
        &mut self,
        buf: &mut [u8],
        n: usize,
        replies: &mut Vec<u8>,
        commands: &mut Vec<Command>,
    ) -> usize {
        self.decode_at(buf, n, replies, commands, None)
    }

    /// [`Decoder::decode`], also saying where in the data each command came: for each one
    /// pushed to `commands`, how many of this read's data bytes came before it is pushed to
    /// `at`. The caller writes the data up to there before it acts on the command, so that
    /// `ATH` then DTR off in one read hangs up in that order.
    pub fn decode_at(
        &mut self,
        buf: &mut [u8],
        n: usize,
        replies: &mut Vec<u8>,
        commands: &mut Vec<Command>,
        mut at: Option<&mut Vec<usize>>,
    ) -> usize {
        let base = commands.len();
        // Most reads hold no IAC: their data stays where it is.
        let mut i = 0;
        if let State::Data = self.state {
            i = buf[..n].iter().position(|&b| b == IAC).unwrap_or(n);
        }
        let mut len = i;
        while i < n {
            let b = buf[i];
            i += 1;
            match self.state {
                State::Data if b == IAC => self.state = State::Iac,
                State::Data => {
                    // The run of data up to the next IAC, moved at once: random data holds
                    // an IAC every 256 bytes, and byte by byte decoded it 3.7 times slower.
                    let start = i - 1;
                    let end = buf[i..n]
                        .iter()
                        .position(|&b| b == IAC)
                        .map_or(n, |p| i + p);
                    buf.copy_within(start..end, len);
                    len += end - start;
                    i = end;
                }
                State::Iac if b == IAC => {
                    buf[len] = IAC;
                    len += 1;
                    self.state = State::Data;
                }
                State::Iac => self.command(b, commands),
                State::Verb(verb) => {
                    self.negotiate(verb, b, replies);
                    self.state = State::Data;
                }
                State::Sb if b == IAC => self.state = State::SbIac,
                State::Sb => self.sb_push(b),
                State::SbIac if b == IAC => {
                    self.sb_push(IAC);
                    self.state = State::Sb;
                }
                State::SbIac if b == SE => {
                    commands.extend(self.sb_command());
                    self.state = State::Data;
                }
                State::SbIac => self.command(b, commands),
            }
            if let Some(at) = at.as_deref_mut() {
                while base + at.len() < commands.len() {
                    at.push(len);
                }
            }
        }
        len
    }

    /// The Telnet command `b` after an IAC (IAC IAC excepted).
    fn command(&mut self, b: u8, commands: &mut Vec<Command>) {
        self.state = match b {
            WILL..=DONT => State::Verb(b),
            SB => {
                self.sb = [0; 6];
                self.sb_len = 0;
                State::Sb
            }
            _ => {
                if b == BRK {
                    commands.push(Command::Break);
                }
                State::Data
            }
        };
    }

    /// The client's `verb` (WILL, WONT, DO, DONT) about `opt`, answered as RFC 1143 says.
    fn negotiate(&mut self, verb: u8, opt: u8, replies: &mut Vec<u8>) {
        // WILL and WONT are about the client's side, DO and DONT about ours.
        let him = verb <= WONT;
        let yes = verb == WILL || verb == DO;
        let (agree, refuse) = if him { (DO, DONT) } else { (WILL, WONT) };
        let answer = match slot(opt, him) {
            // Unsupported: refuse every request to turn it on; it is off already otherwise.
            None => yes.then_some(refuse),
            Some(s) => {
                let was = self.q[s];
                self.q[s] = if yes { YES } else { NO };
                // Only a change needs an answer; in WANTYES the client's word is the answer.
                match (was, yes) {
                    (NO, true) => Some(agree),
                    (YES, false) => Some(refuse),
                    _ => None,
                }
            }
        };
        if let Some(a) = answer {
            replies.extend_from_slice(&[IAC, a, opt]);
        }
    }

    /// Appends a subnegotiation byte, keeping the first six and counting up to `MAX_SB + 1`.
    fn sb_push(&mut self, b: u8) {
        let k = usize::from(self.sb_len);
        if let Some(slot) = self.sb.get_mut(k) {
            *slot = b;
        }
        if k <= MAX_SB {
            self.sb_len += 1;
        }
    }

    /// The command of the subnegotiation just ended, if it is a COM-PORT-OPTION request of
    /// a known code and not too long. Values shorter than the code needs read as 0 (a query).
    fn sb_command(&self) -> Option<Command> {
        let n = usize::from(self.sb_len);
        let [opt, code, a, b, c, d] = self.sb;
        if !(2..=MAX_SB).contains(&n) || opt != COM_PORT_OPTION {
            return None;
        }
        // A server's answers are our codes + SERVER; a client's codes are below it.
        let code = match (self.client, code.checked_sub(SERVER)) {
            (true, Some(c)) => c,
            (false, None) => code,
            _ => return None,
        };
        Some(match code {
            SIGNATURE if n == 2 => Command::Signature,
            SET_BAUDRATE if n >= 6 => Command::SetBaud(u32::from_be_bytes([a, b, c, d])),
            SET_BAUDRATE => Command::SetBaud(0),
            SET_DATASIZE => Command::SetDataSize(a),
            SET_PARITY => Command::SetParity(a),
            SET_STOPSIZE => Command::SetStopSize(a),
            SET_CONTROL => Command::SetControl(a),
            NOTIFY_LINESTATE => Command::NotifyLineState,
            NOTIFY_MODEMSTATE => Command::NotifyModemState,
            FLOWCONTROL_SUSPEND => Command::Suspend,
            FLOWCONTROL_RESUME => Command::Resume,
            SET_LINESTATE_MASK => Command::LineStateMask(a),
            SET_MODEMSTATE_MASK => Command::ModemStateMask(a),
            PURGE_DATA => Command::Purge(a),
            _ => return None,
        })
    }
}

/// Appends `IAC SB COM-PORT-OPTION code value IAC SE` to `out`, with every 0xFF of `value`
/// doubled.
pub fn subnegotiation(code: u8, value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&[IAC, SB, COM_PORT_OPTION, code]);
    for &b in value {
        out.push(b);
        if b == IAC {
            out.push(IAC);
        }
    }
    out.extend_from_slice(&[IAC, SE]);
}

/// Doubles every 0xFF of `buf[..n]` in place, working from the end, and returns the new
/// length. `buf.len()` must be at least `n` plus the number of 0xFF bytes in `buf[..n]`:
/// callers read at most half a buffer.
pub fn escape(buf: &mut [u8], n: usize) -> usize {
    let extra = buf[..n].iter().filter(|&&b| b == IAC).count();
    let mut w = n + extra;
    debug_assert!(w <= buf.len(), "escape: no room to double 0xFF");
    let end = w;
    for r in (0..n).rev() {
        if w == r + 1 {
            break; // no 0xFF before: the rest is in place
        }
        let b = buf[r];
        w -= 1;
        buf[w] = b;
        if b == IAC {
            w -= 1;
            buf[w] = IAC;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use Command::*;

    const ECHO: u8 = 1;
    const NOP: u8 = 241;
    const DM: u8 = 242;
    const GA: u8 = 249;

    /// What one `decode` of `input` gives: (data, replies, commands).
    fn run(d: &mut Decoder, input: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<Command>) {
        let mut buf = input.to_vec();
        let (mut replies, mut commands) = (Vec::new(), Vec::new());
        let n = d.decode(&mut buf, input.len(), &mut replies, &mut commands);
        assert!(n <= input.len());
        buf.truncate(n);
        (buf, replies, commands)
    }

    /// A decoder that has sent its greeting, as every session's has.
    fn greeted() -> Decoder {
        let mut d = Decoder::new();
        d.greeting(&mut Vec::new());
        d
    }

    /// `input` decoded in pieces cut at `cuts` (ascending), outputs concatenated.
    fn run_split(
        d: &mut Decoder,
        input: &[u8],
        cuts: &[usize],
    ) -> (Vec<u8>, Vec<u8>, Vec<Command>) {
        let mut all = (Vec::new(), Vec::new(), Vec::new());
        let mut from = 0;
        for &to in cuts.iter().chain([input.len()].iter()) {
            let (data, replies, commands) = run(d, &input[from..to]);
            all.0.extend(data);
            all.1.extend(replies);
            all.2.extend(commands);
            from = to;
        }
        all
    }

    #[test]
    fn greeting_asks_binary_both_ways_sga_and_com_port() {
        let mut d = Decoder::new();
        let mut out = vec![7];
        d.greeting(&mut out);
        assert_eq!(
            out,
            [
                7, IAC, WILL, BINARY, IAC, DO, BINARY, IAC, WILL, SGA, IAC, DO, 44
            ]
        );
        assert!(!d.com_port());
    }

    /// pyserial 3.5 `Serial.open()` sends its REQUESTED options in list order (ECHO, we-SGA,
    /// they-SGA, they-RFC2217, we-RFC2217), then answers our WILL BINARY with DO BINARY and
    /// our DO BINARY with WILL BINARY; it waits for BINARY and COM-PORT-OPTION both ways.
    #[test]
    fn pyserial_open_is_answered_once_and_settles() {
        let mut d = greeted();
        let requests = [
            IAC, DO, ECHO, IAC, WILL, SGA, IAC, DO, SGA, IAC, DO, 44, IAC, WILL, 44,
        ];
        let (data, replies, commands) = run(&mut d, &requests);
        assert_eq!(data, []);
        assert_eq!(commands, []);
        // DO SGA and WILL COM-PORT-OPTION answer our own requests: no reply to them.
        assert_eq!(replies, [IAC, WONT, ECHO, IAC, DO, SGA, IAC, WILL, 44]);
        assert!(d.com_port());
        let (data, replies, commands) = run(&mut d, &[IAC, DO, BINARY, IAC, WILL, BINARY]);
        assert_eq!((data, replies, commands), (vec![], vec![], vec![]));
        assert!(d.com_port());
    }

    /// The same client, its answers to our greeting first (they may cross on the wire).
    #[test]
    fn pyserial_answers_before_requests_change_nothing() {
        let mut d = greeted();
        let stream = [
            IAC, DO, BINARY, IAC, WILL, BINARY, IAC, DO, ECHO, IAC, WILL, SGA, IAC, DO, SGA, IAC,
            DO, 44, IAC, WILL, 44,
        ];
        let (_, replies, _) = run(&mut d, &stream);
        assert_eq!(replies, [IAC, WONT, ECHO, IAC, DO, SGA, IAC, WILL, 44]);
    }

    #[test]
    fn com_port_waits_for_the_clients_will() {
        let mut d = greeted();
        run(&mut d, &[IAC, DO, 44]);
        assert!(!d.com_port(), "DO is about our side");
        let (_, replies, _) = run(&mut d, &[IAC, WONT, 44]);
        assert_eq!(replies, [], "a refusal of our DO is the answer to it");
        assert!(!d.com_port());
        let (_, replies, _) = run(&mut d, &[IAC, WILL, 44]);
        assert_eq!(replies, [IAC, DO, 44], "after the refusal, a new request");
        assert!(d.com_port());
    }

    /// pyserial's `_reconfigure_port`: the four settings back to back, each value packed
    /// (`!I` or `!B`) with 0xFF doubled.
    #[test]
    fn settings_back_to_back() {
        let mut d = greeted();
        let stream = [
            IAC, SB, 44, 1, 0x00, 0x01, 0xC2, 0x00, IAC, SE, // 115200
            IAC, SB, 44, 2, 8, IAC, SE, //
            IAC, SB, 44, 3, 1, IAC, SE, // none
            IAC, SB, 44, 4, 1, IAC, SE, // one
        ];
        let (data, replies, commands) = run(&mut d, &stream);
        assert_eq!(data, []);
        assert_eq!(replies, []);
        assert_eq!(
            commands,
            [
                SetBaud(115200),
                SetDataSize(8),
                SetParity(1),
                SetStopSize(1)
            ]
        );
    }

    #[test]
    fn baud_with_0xff_bytes_and_queries() {
        let mut d = greeted();
        let (_, _, commands) = run(&mut d, &[IAC, SB, 44, 1, 0, 0, IAC, IAC, IAC, IAC, IAC, SE]);
        assert_eq!(commands, [SetBaud(65535)]);
        let queries = [
            IAC, SB, 44, 1, 0, 0, 0, 0, IAC, SE, // 0: query
            IAC, SB, 44, 1, 0x25, 0x80, IAC, SE, // short: a query
            IAC, SB, 44, 1, 0x01, 0xC2, 0x00, IAC, SE, //
            IAC, SB, 44, 1, IAC, SE, //
            IAC, SB, 44, 2, IAC, SE, // no byte: 0
            IAC, SB, 44, 3, 0, IAC, SE, //
            IAC, SB, 44, 4, 0, 9, IAC, SE, // extra bytes ignored
        ];
        let (_, _, commands) = run(&mut d, &queries);
        assert_eq!(
            commands,
            [
                SetBaud(0),
                SetBaud(0),
                SetBaud(0),
                SetBaud(0),
                SetDataSize(0),
                SetParity(0),
                SetStopSize(0)
            ]
        );
        // More than four bytes: the first four count.
        let (_, _, commands) = run(&mut d, &[IAC, SB, 44, 1, 0, 0, 0x25, 0x80, 1, IAC, SE]);
        assert_eq!(commands, [SetBaud(9600)]);
    }

    /// Every SET-CONTROL value RFC 2217 names (and one it does not) passes as it is: pyserial
    /// sends 1-3 (flow), 5/6 (BREAK), 8/9 (DTR), 11/12 (RTS).
    #[test]
    fn set_control_values() {
        let mut d = greeted();
        let mut stream = Vec::new();
        for v in 0..=20 {
            stream.extend_from_slice(&[IAC, SB, 44, 5, v, IAC, SE]);
        }
        let (_, _, commands) = run(&mut d, &stream);
        let want: Vec<Command> = (0..=20).map(SetControl).collect();
        assert_eq!(commands, want);
    }

    #[test]
    fn purge_masks_notify_and_flow_control() {
        let mut d = greeted();
        let stream = [
            IAC, SB, 44, 12, 1, IAC, SE, // pyserial reset_input_buffer
            IAC, SB, 44, 12, 2, IAC, SE, // reset_output_buffer
            IAC, SB, 44, 12, 3, IAC, SE, //
            IAC, SB, 44, 10, 0, IAC, SE, //
            IAC, SB, 44, 11, IAC, IAC, IAC, SE, //
            IAC, SB, 44, 7, IAC, SE, // poll_modem
            IAC, SB, 44, 6, IAC, SE, //
            IAC, SB, 44, 8, IAC, SE, //
            IAC, SB, 44, 9, IAC, SE,
        ];
        let (_, _, commands) = run(&mut d, &stream);
        assert_eq!(
            commands,
            [
                Purge(1),
                Purge(2),
                Purge(3),
                LineStateMask(0),
                ModemStateMask(255),
                NotifyModemState,
                NotifyLineState,
                Suspend,
                Resume
            ]
        );
    }

    #[test]
    fn signature_request_answered_client_text_ignored() {
        let mut d = greeted();
        let (_, _, commands) = run(&mut d, &[IAC, SB, 44, 0, IAC, SE]);
        assert_eq!(commands, [Signature]);
        let (_, _, commands) = run(&mut d, b"\xff\xfa\x2c\x00pyserial 3.5\xff\xf0");
        assert_eq!(commands, []);
    }

    #[test]
    fn unknown_codes_server_codes_and_other_options_ignored() {
        let mut d = greeted();
        let stream = [
            IAC, SB, 44, 13, 1, IAC, SE, // no such code
            IAC, SB, 44, 101, 0, 0, 0, 0, IAC, SE, // a server's answer, not a request
            IAC, SB, 24, 0, b'x', IAC, SE, // TERMINAL-TYPE
            IAC, SB, 1, 5, IAC, SE, // another option with a COM-PORT code after it
            IAC, SB, IAC, SE, // empty
            IAC, SB, 44, IAC, SE, // no code
        ];
        let (data, replies, commands) = run(&mut d, &stream);
        assert_eq!((data, replies, commands), (vec![], vec![], vec![]));
    }

    #[test]
    fn data_with_doubled_iac() {
        let mut d = greeted();
        let (data, replies, commands) = run(
            &mut d,
            &[b'a', IAC, IAC, 0, IAC, IAC, IAC, IAC, b'\r', 0, b'\n', 0xFE],
        );
        assert_eq!(data, [b'a', IAC, 0, IAC, IAC, b'\r', 0, b'\n', 0xFE]);
        assert_eq!((replies, commands), (vec![], vec![]));
        // Plain data is left where it is.
        let (data, _, _) = run(&mut d, b"ATZ\r");
        assert_eq!(data, b"ATZ\r");
    }

    #[test]
    fn break_is_a_command_other_commands_are_dropped() {
        let mut d = greeted();
        let stream = [
            b'1', IAC, NOP, b'2', IAC, DM, IAC, 244, IAC, 245, IAC, 246, IAC, 247, IAC, 248, IAC,
            GA, b'3', IAC, BRK, b'4', IAC, SE, b'5',
        ];
        let (data, replies, commands) = run(&mut d, &stream);
        assert_eq!(data, b"12345");
        assert_eq!(replies, []);
        assert_eq!(commands, [Break]);
    }

    /// Commands and data keep their order among themselves.
    #[test]
    fn commands_in_stream_order() {
        let mut d = greeted();
        let stream = [
            IAC, SB, 44, 5, 8, IAC, SE, b'x', IAC, BRK, IAC, SB, 44, 5, 9, IAC, SE,
        ];
        let (data, _, commands) = run(&mut d, &stream);
        assert_eq!(data, b"x");
        assert_eq!(commands, [SetControl(8), Break, SetControl(9)]);
    }

    #[test]
    fn unknown_options_refused_once_per_request() {
        let mut d = greeted();
        let stream = [
            IAC, WILL, 24, IAC, DO, 24, IAC, WILL, ECHO, IAC, DO, 31, IAC, WONT, 24, IAC, DONT, 5,
            IAC, DO, 255,
        ];
        let (data, replies, commands) = run(&mut d, &stream);
        assert_eq!(data, []);
        assert_eq!(commands, []);
        assert_eq!(
            replies,
            [
                IAC, DONT, 24, IAC, WONT, 24, IAC, DONT, ECHO, IAC, WONT, 31, IAC, WONT, 255
            ]
        );
        // A request repeated is refused again: one answer per request, never more.
        let (_, replies, _) = run(&mut d, &[IAC, DO, ECHO, IAC, DO, ECHO]);
        assert_eq!(replies, [IAC, WONT, ECHO, IAC, WONT, ECHO]);
    }

    /// RFC 1143: what is in force is not confirmed again, so two such peers cannot loop.
    #[test]
    fn no_reply_to_a_repeated_agreement() {
        let mut d = greeted();
        let agree = [
            IAC, DO, BINARY, IAC, WILL, BINARY, IAC, DO, SGA, IAC, WILL, 44,
        ];
        let (_, replies, _) = run(&mut d, &agree);
        assert_eq!(replies, []);
        let (_, replies, _) = run(&mut d, &agree);
        assert_eq!(replies, []);
        // Options the client asks for first: one agreement, then silence.
        let (_, replies, _) = run(&mut d, &[IAC, WILL, SGA, IAC, DO, 44]);
        assert_eq!(replies, [IAC, DO, SGA, IAC, WILL, 44]);
        let (_, replies, _) = run(&mut d, &[IAC, WILL, SGA, IAC, DO, 44]);
        assert_eq!(replies, []);
    }

    #[test]
    fn withdrawals_acknowledged_once() {
        let mut d = greeted();
        run(&mut d, &[IAC, DO, BINARY, IAC, WILL, BINARY, IAC, WILL, 44]);
        let (_, replies, _) = run(
            &mut d,
            &[IAC, DONT, BINARY, IAC, WONT, BINARY, IAC, WONT, 44],
        );
        assert_eq!(
            replies,
            [IAC, WONT, BINARY, IAC, DONT, BINARY, IAC, DONT, 44]
        );
        assert!(!d.com_port());
        // Off already: nothing to say.
        let (_, replies, _) = run(&mut d, &[IAC, DONT, BINARY, IAC, WONT, 44, IAC, DONT, 31]);
        assert_eq!(replies, []);
        // And on again on request.
        let (_, replies, _) = run(&mut d, &[IAC, DO, BINARY]);
        assert_eq!(replies, [IAC, WILL, BINARY]);
    }

    /// A client that refuses what we asked: no reply (the refusal answers our request).
    #[test]
    fn refusal_of_our_request_not_answered() {
        let mut d = greeted();
        let (_, replies, _) = run(
            &mut d,
            &[IAC, DONT, BINARY, IAC, WONT, BINARY, IAC, DONT, SGA],
        );
        assert_eq!(replies, []);
    }

    #[test]
    fn truncated_iac_sb_at_end_of_read() {
        let mut d = greeted();
        let (data, _, commands) = run(&mut d, &[b'a', IAC, SB, 44, 1, 0, 0]);
        assert_eq!((data, commands), (b"a".to_vec(), vec![]));
        let (data, _, commands) = run(&mut d, &[0x25, 0x80, IAC]);
        assert_eq!((data, commands), (vec![], vec![]));
        let (data, _, commands) = run(&mut d, &[SE, b'b', IAC]);
        assert_eq!((data, commands), (b"b".to_vec(), vec![SetBaud(9600)]));
        let (data, _, _) = run(&mut d, &[IAC, b'c']);
        assert_eq!(data, [IAC, b'c']);
    }

    #[test]
    fn oversized_sb_discarded_whole() {
        let mut d = greeted();
        let mut stream = vec![IAC, SB, 44, 5, 8];
        stream.resize(2 + MAX_SB, b'x');
        stream.extend_from_slice(&[IAC, SE]);
        let (_, _, commands) = run(&mut d, &stream);
        assert_eq!(commands, [SetControl(8)], "{MAX_SB} bytes fit");
        let mut stream = vec![IAC, SB, 44, 5, 8];
        stream.resize(2 + MAX_SB + 1, b'x');
        stream.extend_from_slice(&[IAC, SE]);
        let (_, _, commands) = run(&mut d, &stream);
        assert_eq!(commands, [], "one byte more: discarded");
        // 1000 doubled IACs (which never end it), then the next SB counts.
        let mut stream = vec![IAC, SB, 44, 5, 8];
        stream.extend_from_slice(&[IAC; 2000]);
        stream.extend_from_slice(&[IAC, SE, b'd', IAC, SB, 44, 5, 9, IAC, SE]);
        let (data, replies, commands) = run(&mut d, &stream);
        assert_eq!(data, b"d");
        assert_eq!(replies, []);
        assert_eq!(commands, [SetControl(9)]);
    }

    #[test]
    fn malformed_sb_ends_and_its_iac_is_a_command() {
        let mut d = greeted();
        // A SET-CONTROL cut short by IAC WILL ECHO: not acted on; the WILL is refused.
        let (data, replies, commands) =
            run(&mut d, &[IAC, SB, 44, 5, 8, IAC, WILL, ECHO, b'a', IAC, SE]);
        assert_eq!(data, b"a");
        assert_eq!(replies, [IAC, DONT, ECHO]);
        assert_eq!(commands, []);
        // A new IAC SB in an open one starts afresh.
        let (_, _, commands) = run(&mut d, &[IAC, SB, 44, 5, IAC, SB, 44, 5, 11, IAC, SE]);
        assert_eq!(commands, [SetControl(11)]);
        // IAC BRK inside: a break, and the SB is gone.
        let (data, _, commands) = run(&mut d, &[IAC, SB, 44, 5, 1, IAC, BRK, b'z']);
        assert_eq!((data, commands), (b"z".to_vec(), vec![Break]));
    }

    /// A stream with every construct, decoded whole and cut at every one and every two points.
    #[test]
    fn every_split_decodes_identically() {
        let stream = [
            b'a', IAC, IAC, IAC, DO, ECHO, IAC, WILL, SGA, b'b', IAC, SB, 44, 1, 0, 0, IAC, IAC,
            IAC, IAC, IAC, SE, IAC, WILL, 44, IAC, NOP, IAC, BRK, b'c', IAC, SB, 44, 5, 8, IAC,
            WILL, 24, IAC, SB, 24, 1, IAC, SE, IAC, SB, 44, 12, 3, IAC, SE, IAC, DO, BINARY, 0xFE,
            IAC, SE, b'\r', 0,
        ];
        let whole = run_split(&mut greeted(), &stream, &[]);
        assert_eq!(whole.0, [b'a', IAC, b'b', b'c', 0xFE, b'\r', 0]);
        assert_eq!(whole.1, [IAC, WONT, ECHO, IAC, DO, SGA, IAC, DONT, 24]);
        assert_eq!(whole.2, [SetBaud(65535), Break, Purge(3)]);
        for i in 0..=stream.len() {
            assert_eq!(
                run_split(&mut greeted(), &stream, &[i]),
                whole,
                "cut at {i}"
            );
            for j in i..=stream.len() {
                assert_eq!(
                    run_split(&mut greeted(), &stream, &[i, j]),
                    whole,
                    "cut at {i} and {j}"
                );
            }
        }
        let bytewise: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(run_split(&mut greeted(), &stream, &bytewise), whole);
    }

    /// The fuzz target's invariants over random streams rich in Telnet bytes (xorshift, so
    /// the same inputs every run): a split anywhere decodes as the whole, leaves the decoder
    /// in the same state, and no decode returns more bytes than it was given.
    #[test]
    fn random_streams_split_anywhere_decode_the_same() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        const ALPHABET: [u8; 16] = [
            IAC, IAC, IAC, SB, SE, WILL, WONT, DO, DONT, BRK, 44, 0, 1, 5, b'a', NOP,
        ];
        for _ in 0..200_000 {
            let r = next();
            let len = (r % 40) as usize;
            let stream: Vec<u8> = (0..len)
                .map(|_| {
                    let v = next();
                    if v & 3 == 0 {
                        v as u8 >> 2
                    } else {
                        ALPHABET[(v >> 8) as usize % 16]
                    }
                })
                .collect();
            let cut = (r >> 32) as usize % (len + 1);
            let (mut a, mut b) = (greeted(), greeted());
            let whole = run_split(&mut a, &stream, &[]);
            assert_eq!(
                run_split(&mut b, &stream, &[cut]),
                whole,
                "{stream:?} cut at {cut}"
            );
            // Same state after: the same next input decodes the same.
            assert_eq!(
                run(&mut a, &stream),
                run(&mut b, &stream),
                "{stream:?} cut at {cut}"
            );
            assert_eq!(a.com_port(), b.com_port());
        }
    }

    #[test]
    fn subnegotiation_bytes() {
        let mut out = vec![1];
        subnegotiation(SERVER + SET_BAUDRATE, &9600u32.to_be_bytes(), &mut out);
        assert_eq!(out, [1, IAC, SB, 44, 101, 0, 0, 0x25, 0x80, IAC, SE]);
        out.clear();
        subnegotiation(SERVER + NOTIFY_MODEMSTATE, &[IAC], &mut out);
        assert_eq!(out, [IAC, SB, 44, 107, IAC, IAC, IAC, SE]);
        out.clear();
        subnegotiation(SERVER + SIGNATURE, b"modemd 0.1.0 /dev/ttyS1", &mut out);
        assert_eq!(out[..4], [IAC, SB, 44, 100]);
        assert_eq!(&out[4..out.len() - 2], b"modemd 0.1.0 /dev/ttyS1");
        assert_eq!(out[out.len() - 2..], [IAC, SE]);
        out.clear();
        subnegotiation(SERVER + FLOWCONTROL_RESUME, &[], &mut out);
        assert_eq!(out, [IAC, SB, 44, 109, IAC, SE]);
    }

    #[test]
    fn escape_doubles_0xff_in_place() {
        let mut buf = [IAC, b'a', IAC, IAC, b'b', 0, 0, 0, 0, 9];
        assert_eq!(escape(&mut buf, 5), 8);
        assert_eq!(buf, [IAC, IAC, b'a', IAC, IAC, IAC, IAC, b'b', 0, 9]);
        let mut buf = *b"plain\0\0";
        assert_eq!(escape(&mut buf, 5), 5);
        assert_eq!(&buf, b"plain\0\0");
        let mut buf = [b'x', b'y', IAC, 0];
        assert_eq!(escape(&mut buf, 3), 4);
        assert_eq!(buf, [b'x', b'y', IAC, IAC]);
        let mut buf = [IAC; 8];
        assert_eq!(escape(&mut buf, 4), 8);
        assert_eq!(escape(&mut [], 0), 0);
        // Escaped, then decoded: the bytes come back.
        let mut buf = [0u8; 512];
        for (i, b) in buf[..256].iter_mut().enumerate() {
            *b = i as u8;
        }
        let n = escape(&mut buf, 256);
        assert_eq!(n, 257);
        let (data, _, _) = run(&mut greeted(), &buf[..n]);
        assert_eq!(data, (0..=255).collect::<Vec<u8>>());
    }

    #[test]
    fn commands_are_placed_in_the_data() {
        let mut d = greeted();
        let mut stream = b"AB".to_vec();
        stream.extend_from_slice(&[IAC, SB, 44, 5, 9, IAC, SE]);
        stream.extend_from_slice(b"C\xff\xffD");
        stream.extend_from_slice(&[IAC, BRK]);
        stream.extend_from_slice(b"E");
        let (mut replies, mut commands, mut at) = (Vec::new(), Vec::new(), Vec::new());
        let mut buf = stream.clone();
        let n = d.decode_at(
            &mut buf,
            stream.len(),
            &mut replies,
            &mut commands,
            Some(&mut at),
        );
        assert_eq!(
            &buf[..n],
            b"AB C\xffD E"
                .iter()
                .filter(|&&b| b != b' ')
                .copied()
                .collect::<Vec<_>>()
                .as_slice()
        );
        assert_eq!(commands, [SetControl(9), Break]);
        assert_eq!(at, [2, 5]);
    }

    #[test]
    fn escape_in_place_equals_doubling_into_a_copy() {
        let mut x: u32 = 2_463_534_242;
        for round in 0..2000 {
            let len = round % 67;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    // Mostly IAC in some rounds, rarely in others.
                    if x % (1 + round as u32 % 5) == 0 {
                        IAC
                    } else {
                        x as u8
                    }
                })
                .collect();
            let mut want = Vec::new();
            for &b in &data {
                want.push(b);
                if b == IAC {
                    want.push(IAC);
                }
            }
            let mut buf = vec![0u8; 2 * len];
            buf[..len].copy_from_slice(&data);
            let n = escape(&mut buf, len);
            assert_eq!(&buf[..n], &want[..], "round {round}");
        }
    }

    /// Client mode against modemd's own server: the two greetings cross, and each side's
    /// requests are the other's answers, so nothing more is said.
    #[test]
    fn client_and_server_greetings_settle_in_silence() {
        let (mut client, mut server) = (Decoder::client(), Decoder::new());
        let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
        client.greeting(&mut to_server);
        server.greeting(&mut to_client);
        assert_eq!(&to_server[12..], [IAC, WILL, COM_PORT_OPTION]);
        assert!(client.com_port_pending() && !client.com_port());
        let (data, replies, commands) = run(&mut client, &to_client);
        assert!(data.is_empty() && commands.is_empty());
        let (_, server_replies, _) = run(&mut server, &to_server);
        // The server never asks the client for SGA: it agrees to the client's WILL SGA once.
        assert_eq!(server_replies, [IAC, DO, SGA]);
        assert!(replies.is_empty(), "{replies:?}");
        assert!(client.com_port() && !client.com_port_pending() && server.com_port());
        let (_, replies, _) = run(&mut client, &server_replies);
        assert!(replies.is_empty(), "{replies:?}");
    }

    #[test]
    fn client_reads_server_answers_and_ignores_client_codes() {
        let mut d = Decoder::client();
        d.greeting(&mut Vec::new());
        let mut input = b"OK".to_vec();
        subnegotiation(SERVER + SET_BAUDRATE, &9600u32.to_be_bytes(), &mut input);
        subnegotiation(SERVER + SET_CONTROL, &[9], &mut input);
        subnegotiation(SET_BAUDRATE, &9600u32.to_be_bytes(), &mut input);
        subnegotiation(SERVER + SIGNATURE, b"ser2net", &mut input);
        subnegotiation(SERVER + NOTIFY_MODEMSTATE, &[0x30], &mut input);
        input.extend_from_slice(b"\r\n");
        let (data, _, commands) = run(&mut d, &input);
        assert_eq!(data, b"OK\r\n");
        assert_eq!(commands, [SetBaud(9600), SetControl(9), NotifyModemState]);
    }

    #[test]
    fn client_sees_a_refused_com_port() {
        let mut d = Decoder::client();
        d.greeting(&mut Vec::new());
        let (_, replies, _) = run(&mut d, &[IAC, DONT, COM_PORT_OPTION]);
        assert!(replies.is_empty());
        assert!(!d.com_port() && !d.com_port_pending());
    }
}
