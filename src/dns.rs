//! Reverse lookups, the pure part: the `/etc/hosts` entry of an address, the PTR query name,
//! and the PTR record of a DNS answer.
//!
//! Why not getnameinfo(3): in musl it brings printf (for port numbers and scope ids we never
//! ask for), about 13 KiB of the router image's 288 KiB. The query itself still goes through
//! the C library's res_query(3), which knows resolv.conf; only the answer is read here, and it
//! comes from the network, so this parser trusts no length or pointer in it.

use std::net::IpAddr;

/// DNS record type PTR and class IN.
const TYPE_PTR: u16 = 12;
const CLASS_IN: u16 = 1;
/// A name longer than this is not a DNS name (RFC 1035 §2.3.4).
const MAX_NAME: usize = 255;

/// The name `ip`'s first line in a hosts file names it with, as the C library's lookup picks
/// it: the first line with that address, its first name.
pub fn hosts_name(hosts: &str, ip: IpAddr) -> Option<String> {
    hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_ascii_whitespace();
        let addr: IpAddr = fields.next()?.parse().ok()?;
        if addr != ip {
            return None;
        }
        fields.next().map(str::to_owned)
    })
}

/// The name to ask PTR records of: `4.3.2.1.in-addr.arpa`, or the nibbles of an IPv6 address
/// under `ip6.arpa`.
pub fn ptr_query(ip: IpAddr) -> String {
    let mut q = String::with_capacity(74);
    match ip {
        IpAddr::V4(v4) => {
            for b in v4.octets().iter().rev() {
                q.push_str(&b.to_string());
                q.push('.');
            }
            q.push_str("in-addr.arpa");
        }
        IpAddr::V6(v6) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for b in v6.octets().iter().rev() {
                q.push(HEX[usize::from(b & 15)] as char);
                q.push('.');
                q.push(HEX[usize::from(b >> 4)] as char);
                q.push('.');
            }
            q.push_str("ip6.arpa");
        }
    }
    q
}

/// The first PTR record in the answer section of the DNS message `msg`, if the message is a
/// well-formed, successful response. A name with a byte a host name cannot have (a dot
/// inside a label, say) is no name: it could only be an attempt to pass for another one.
pub fn ptr_answer(msg: &[u8]) -> Option<String> {
    let header = msg.get(..12)?;
    let flags = u16::from_be_bytes([header[2], header[3]]);
    // A response (QR set) with RCODE 0.
    if flags & 0x8000 == 0 || flags & 0x000f != 0 {
        return None;
    }
    let questions = u16::from_be_bytes([header[4], header[5]]);
    let answers = u16::from_be_bytes([header[6], header[7]]);
    let mut pos = 12;
    for _ in 0..questions {
        pos = skip_name(msg, pos)?.checked_add(4)?;
    }
    for _ in 0..answers {
        pos = skip_name(msg, pos)?;
        let fixed = msg.get(pos..pos.checked_add(10)?)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = u16::from_be_bytes([fixed[2], fixed[3]]);
        let len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let data = pos + 10;
        let end = data.checked_add(len)?;
        if end > msg.len() {
            return None;
        }
        if rtype == TYPE_PTR && class == CLASS_IN {
            return read_name(msg, data);
        }
        pos = end;
    }
    None
}

/// Where the name at `pos` ends in place (after its last label or its pointer).
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            1..=63 => pos = pos.checked_add(1 + usize::from(len))?,
            0xc0..=0xff => {
                msg.get(pos + 1)?;
                return Some(pos + 2);
            }
            // 0x40 and 0x80: label types no one uses.
            _ => return None,
        }
    }
}

/// The dotted name at `pos`, following compression pointers (only backwards ones, so a loop
/// of them cannot make this spin), if every label is a host name label.
fn read_name(msg: &[u8], mut pos: usize) -> Option<String> {
    let mut name = String::new();
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => break,
            1..=63 => {
                let label = msg.get(pos + 1..pos + 1 + usize::from(len))?;
                if !label.iter().all(|&b| is_host_byte(b)) {
                    return None;
                }
                if !name.is_empty() {
                    name.push('.');
                }
                name.extend(label.iter().map(|&b| char::from(b)));
                if name.len() > MAX_NAME {
                    return None;
                }
                pos += 1 + usize::from(len);
            }
            0xc0..=0xff => {
                let target = usize::from(u16::from_be_bytes([len & 0x3f, *msg.get(pos + 1)?]));
                if target >= pos {
                    return None;
                }
                pos = target;
            }
            _ => return None,
        }
    }
    (!name.is_empty()).then_some(name)
}

/// Letters, digits, `-` and `_`: what a label of a host name (RFC 952/1123, plus the
/// underscore real zones contain) can hold.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn hosts_file_first_line_first_name() {
        let hosts = "# comment\n127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n\
                     192.168.2.1 gw.foo.org gw # router\n192.168.2.1 second\nbogus line\n";
        assert_eq!(
            hosts_name(hosts, ip("127.0.0.1")).as_deref(),
            Some("localhost")
        );
        assert_eq!(hosts_name(hosts, ip("::1")).as_deref(), Some("localhost"));
        assert_eq!(
            hosts_name(hosts, ip("192.168.2.1")).as_deref(),
            Some("gw.foo.org")
        );
        assert_eq!(hosts_name(hosts, ip("10.0.0.1")), None);
        assert_eq!(hosts_name("10.0.0.1\n", ip("10.0.0.1")), None);
    }

    #[test]
    fn query_names() {
        assert_eq!(ptr_query(ip("192.168.2.1")), "1.2.168.192.in-addr.arpa");
        assert_eq!(
            ptr_query(ip("2001:db8::567:89ab")),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    /// A response to a PTR query of 1.2.168.192.in-addr.arpa with `answers` appended.
    fn response(answers: &[&[u8]]) -> Vec<u8> {
        let mut m = vec![
            0x12,
            0x34,
            0x81,
            0x80,
            0,
            1,
            0,
            answers.len() as u8,
            0,
            0,
            0,
            0,
        ];
        for label in ["1", "2", "168", "192", "in-addr", "arpa"] {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 12, 0, 1]);
        for a in answers {
            m.extend_from_slice(a);
        }
        m
    }

    /// An answer record owned by the question's name (a pointer to offset 12).
    fn record(rtype: u8, data: &[u8]) -> Vec<u8> {
        let mut r = vec![
            0xc0,
            12,
            0,
            rtype,
            0,
            1,
            0,
            0,
            0x0e,
            0x10,
            0,
            data.len() as u8,
        ];
        r.extend_from_slice(data);
        r
    }

    #[test]
    fn reads_the_ptr_record() {
        let ptr = record(12, b"\x02gw\x03foo\x03org\x00");
        assert_eq!(
            ptr_answer(&response(&[&ptr])).as_deref(),
            Some("gw.foo.org")
        );
    }

    #[test]
    fn follows_a_compression_pointer_and_skips_other_records() {
        // A CNAME first (RFC 2317 delegation), then a PTR whose name ends in a pointer to
        // the question's "arpa" label (offset 12 + 2 + 2 + 4 + 4 + 8 = 32).
        let cname = record(5, b"\x01x\xc0\x0c");
        let ptr = record(12, b"\x04host\xc0\x20");
        assert_eq!(
            ptr_answer(&response(&[&cname, &ptr])).as_deref(),
            Some("host.arpa")
        );
    }

    #[test]
    fn refuses_what_is_not_a_good_answer() {
        let ptr = record(12, b"\x02gw\x03foo\x03org\x00");
        let mut error = response(&[&ptr]);
        error[3] = 0x83; // NXDOMAIN
        assert_eq!(ptr_answer(&error), None);
        let mut query = response(&[&ptr]);
        query[2] = 0x01; // QR clear: a question, not an answer
        assert_eq!(ptr_answer(&query), None);
        // A dot inside a label would pass for a different name.
        let dotted = record(12, b"\x06gw.foo\x03org\x00");
        assert_eq!(ptr_answer(&response(&[&dotted])), None);
        // A pointer to itself (the record's data starts at 54), and one forwards.
        let looped = record(12, b"\xc0\x36");
        assert_eq!(ptr_answer(&response(&[&looped])), None);
        let forward = record(12, b"\xc0\x7f");
        assert_eq!(ptr_answer(&response(&[&forward])), None);
        // Every truncation of a good answer.
        let good = response(&[&ptr]);
        for n in 0..good.len() {
            assert_eq!(ptr_answer(&good[..n]), None, "cut at {n}");
        }
        assert_eq!(ptr_answer(&[]), None);
    }
}
