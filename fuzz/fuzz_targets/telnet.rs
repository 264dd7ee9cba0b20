//! The Telnet decoder, server and client side, on arbitrary peer bytes: no panic; a split at any point decodes as
//! the whole and leaves the same state; no decode returns more bytes than it was given; and
//! data escaped by `escape` decodes back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modemd::telnet::{Command, Decoder, escape};

/// `input` decoded in two reads cut at `cut`: (data, replies, commands) concatenated.
fn decode(d: &mut Decoder, input: &[u8], cut: usize) -> (Vec<u8>, Vec<u8>, Vec<Command>) {
    let (mut data, mut replies, mut commands) = (Vec::new(), Vec::new(), Vec::new());
    for part in [&input[..cut], &input[cut..]] {
        let mut buf = part.to_vec();
        let n = d.decode(&mut buf, part.len(), &mut replies, &mut commands);
        assert!(n <= part.len(), "decode returned {n} of {}", part.len());
        data.extend_from_slice(&buf[..n]);
    }
    (data, replies, commands)
}

/// A decoder that has sent its greeting: the server's, or (`client`) client mode's.
fn greeted(client: bool) -> Decoder {
    let mut d = if client {
        Decoder::client()
    } else {
        Decoder::new()
    };
    d.greeting(&mut Vec::new());
    d
}

fuzz_target!(|data: &[u8]| {
    let Some((&at, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(at) * (stream.len() + 1) / 256;
    // The low bit of the cut byte picks the side: both decode any bytes a peer may send.
    let client = at & 1 == 1;
    let (mut a, mut b) = (greeted(client), greeted(client));
    let whole = decode(&mut a, stream, 0);
    assert!(
        decode(&mut b, stream, cut) == whole,
        "split at {cut} differs"
    );
    // The same state after: the same next input decodes the same.
    assert!(decode(&mut a, stream, cut) == decode(&mut b, stream, 0));
    assert!(a.com_port() == b.com_port() && a.com_port_pending() == b.com_port_pending());

    // The server's own escaping, read back by a client-side decoder: the data, nothing else.
    let mut buf = stream.to_vec();
    buf.resize(2 * stream.len(), 0);
    let n = escape(&mut buf, stream.len());
    let (back, replies, commands) = decode(&mut Decoder::new(), &buf[..n], n / 2);
    assert!(back == stream && replies.is_empty() && commands.is_empty());
});
