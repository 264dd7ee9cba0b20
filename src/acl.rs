//! Host patterns (the `HOSTS` field) and the decision whether a client may use a device.
//!
//! Pure: DNS is reached only through the [`Resolver`] trait, so the matching rules are tested
//! with a fake resolver. A hostname pattern matches only a *forward-confirmed* reverse name: the
//! PTR name of the client must resolve back to the client's address, otherwise whoever controls
//! the PTR zone of an address could claim to be `trusted.foo.org` (the check tcpd calls
//! PARANOID). Addresses are compared after unwrapping IPv4-mapped IPv6 (`::ffff:a.b.c.d`), which
//! is how a dual-stack listener reports IPv4 clients.
#![forbid(unsafe_code)]

use std::cell::OnceCell;
use std::fmt;
use std::net::IpAddr;

/// At most this many patterns on one line.
pub const MAX_PATTERNS: usize = 256;
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// One entry of a `HOSTS` list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// One address.
    Addr(IpAddr),
    /// A CIDR block; host bits are zero.
    Net(IpAddr, u8),
    /// One host name, lowercase, without a trailing dot.
    Name(String),
    /// `*.foo.org` (or tcpd's `.foo.org`): any name ending in `.foo.org`; stored as `.foo.org`.
    Domain(String),
}

/// The parsed `HOSTS` field. Empty means any host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostList {
    patterns: Vec<Pattern>,
}

/// Why a `HOSTS` field is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatternError {
    /// An empty item between commas.
    Empty,
    /// `addr/len` with a bad address or length.
    BadCidr(String),
    /// Host bits set in a CIDR block (`192.168.2.1/24`): almost always a typo for `.0/24`.
    HostBitsSet(String),
    /// Not an address and not a valid host name or `*.domain` pattern.
    BadName(String),
    /// More than [`MAX_PATTERNS`] items.
    TooMany,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::Empty => write!(f, "empty host entry (two commas in a row?)"),
            PatternError::BadCidr(s) => write!(
                f,
                "bad CIDR block '{s}' (expected ADDRESS/LENGTH, length 0-32 for IPv4, 0-128 for IPv6)"
            ),
            PatternError::HostBitsSet(s) => {
                write!(
                    f,
                    "bad CIDR block '{s}': address has bits set beyond the prefix"
                )
            }
            PatternError::BadName(s) => write!(
                f,
                "bad host '{s}' (expected an IP address, ADDRESS/LENGTH, a host name or *.domain)"
            ),
            PatternError::TooMany => write!(f, "more than {MAX_PATTERNS} hosts on one line"),
        }
    }
}

impl std::error::Error for PatternError {}

/// Turns `::ffff:a.b.c.d` into `a.b.c.d`; other addresses are returned unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_cidr(item: &str, addr: &str, len: &str) -> Result<Pattern, PatternError> {
    let bad = || PatternError::BadCidr(item.to_owned());
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let len: u8 = len.parse().map_err(|_| bad())?;
    let (ip, len) = match ip {
        IpAddr::V4(_) if len > 32 => return Err(bad()),
        IpAddr::V6(_) if len > 128 => return Err(bad()),
        // A block inside ::ffff:0:0/96 is an IPv4 block written the IPv6 way.
        IpAddr::V6(v6) if len >= 96 && v6.to_ipv4_mapped().is_some() => (canonical(ip), len - 96),
        _ => (ip, len),
    };
    if mask(ip, len) != ip {
        return Err(PatternError::HostBitsSet(item.to_owned()));
    }
    Ok(Pattern::Net(ip, len))
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & m).into())
        }
        IpAddr::V6(v6) => {
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & m).into())
        }
    }
}

/// Whether `name` is a syntactically valid DNS host name (letters, digits, `-`, dots).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn parse_pattern(item: &str) -> Result<Pattern, PatternError> {
    if item.is_empty() {
        return Err(PatternError::Empty);
    }
    if let Some((addr, len)) = item.split_once('/') {
        return parse_cidr(item, addr, len);
    }
    if let Ok(ip) = item.parse::<IpAddr>() {
        return Ok(Pattern::Addr(canonical(ip)));
    }
    let lower = item.to_ascii_lowercase();
    let lower = lower.strip_suffix('.').unwrap_or(&lower);
    let domain = lower.strip_prefix("*.").or_else(|| lower.strip_prefix('.'));
    match domain {
        Some(d) if valid_name(d) => Ok(Pattern::Domain(format!(".{d}"))),
        // A name made only of digits and dots is a mistyped address, not a host.
        None if valid_name(lower) && !lower.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
            Ok(Pattern::Name(lower.to_owned()))
        }
        _ => Err(PatternError::BadName(item.to_owned())),
    }
}

impl HostList {
    /// Parses a comma-separated `HOSTS` field.
    pub fn parse(field: &str) -> Result<HostList, PatternError> {
        let mut patterns = Vec::new();
        for item in field.split(',') {
            if patterns.len() == MAX_PATTERNS {
                return Err(PatternError::TooMany);
            }
            patterns.push(parse_pattern(item)?);
        }
        Ok(HostList { patterns })
    }

    /// The list that admits every host (an absent `HOSTS` field).
    pub fn any() -> HostList {
        HostList::default()
    }

    /// Whether this list admits every host.
    pub fn is_any(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns, in file order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// What can be decided from the address alone: `Some(verdict)`, or `None` when only a
    /// name pattern could still admit `ip` (DNS needed).
    pub fn decide_by_address(&self, ip: IpAddr) -> Option<bool> {
        if self.is_any() {
            return Some(true);
        }
        let ip = canonical(ip);
        let by_addr = self.patterns.iter().any(|p| match *p {
            Pattern::Addr(a) => a == ip,
            Pattern::Net(net, len) => same_family(net, ip) && mask(ip, len) == net,
            Pattern::Name(_) | Pattern::Domain(_) => false,
        });
        let has_names = self
            .patterns
            .iter()
            .any(|p| matches!(p, Pattern::Name(_) | Pattern::Domain(_)));
        match (by_addr, has_names) {
            (true, _) => Some(true),
            (false, false) => Some(false),
            (false, true) => None,
        }
    }

    /// Whether `client` may connect. DNS is consulted (once per client, through `client`)
    /// only when no address pattern matched and a name pattern exists.
    pub fn admits<R: Resolver + ?Sized>(&self, client: &Client<'_, R>) -> bool {
        if let Some(verdict) = self.decide_by_address(client.ip) {
            return verdict;
        }
        let Some(name) = client.verified_name() else {
            return false;
        };
        self.patterns.iter().any(|p| match p {
            Pattern::Name(n) => n == name,
            Pattern::Domain(suffix) => name.ends_with(suffix.as_str()),
            Pattern::Addr(_) | Pattern::Net(..) => false,
        })
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// Access to DNS, injected so that matching stays pure.
pub trait Resolver {
    /// The PTR name of `ip`, if it has one.
    fn reverse(&self, ip: IpAddr) -> Option<String>;
    /// The addresses `name` resolves to.
    fn forward(&self, name: &str) -> Vec<IpAddr>;
}

/// A connecting client, with its forward-confirmed name looked up at most once.
pub struct Client<'r, R: Resolver + ?Sized> {
    ip: IpAddr,
    resolver: &'r R,
    name: OnceCell<Option<String>>,
}

impl<'r, R: Resolver + ?Sized> Client<'r, R> {
    /// A client connecting from `ip` (IPv4-mapped addresses are unwrapped).
    pub fn new(ip: IpAddr, resolver: &'r R) -> Self {
        Client {
            ip: canonical(ip),
            resolver,
            name: OnceCell::new(),
        }
    }

    /// The client's reverse name, lowercase, if it resolves forward to the client's address.
    pub fn verified_name(&self) -> Option<&str> {
        self.name
            .get_or_init(|| {
                let name = self.resolver.reverse(self.ip)?;
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if !valid_name(&name) {
                    return None;
                }
                let confirmed = self
                    .resolver
                    .forward(&name)
                    .into_iter()
                    .any(|a| canonical(a) == self.ip);
                confirmed.then_some(name)
            })
            .as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::collections::HashMap;

    #[derive(Default)]
    struct FakeDns {
        ptr: HashMap<IpAddr, String>,
        a: HashMap<String, Vec<IpAddr>>,
        lookups: Cell<u32>,
    }

    impl FakeDns {
        fn with(mut self, ip: &str, name: &str, forward: &[&str]) -> Self {
            self.ptr.insert(ip.parse().unwrap(), name.to_owned());
            let addrs = forward.iter().map(|a| a.parse().unwrap()).collect();
            self.a
                .insert(name.trim_end_matches('.').to_ascii_lowercase(), addrs);
            self
        }
    }

    impl Resolver for FakeDns {
        fn reverse(&self, ip: IpAddr) -> Option<String> {
            self.lookups.set(self.lookups.get() + 1);
            self.ptr.get(&ip).cloned()
        }
        fn forward(&self, name: &str) -> Vec<IpAddr> {
            self.a.get(name).cloned().unwrap_or_default()
        }
    }

    fn admits(hosts: &str, ip: &str, dns: &FakeDns) -> bool {
        let list = HostList::parse(hosts).unwrap();
        list.admits(&Client::new(ip.parse().unwrap(), dns))
    }

    #[test]
    fn address_and_cidr_entries_match_exactly() {
        let dns = FakeDns::default();
        assert!(admits("192.168.2.1", "192.168.2.1", &dns));
        assert!(!admits("192.168.2.1", "192.168.2.2", &dns));
        assert!(admits("192.168.2.0/24", "192.168.2.200", &dns));
        assert!(!admits("192.168.2.0/24", "192.168.3.1", &dns));
        assert!(admits("0.0.0.0/0", "10.1.2.3", &dns));
        assert!(!admits("0.0.0.0/0", "::1", &dns));
        assert!(admits("::1", "::1", &dns));
        assert!(admits("fd00::/8", "fd12::5", &dns));
        assert!(!admits("fd00::/8", "fe80::1", &dns));
        assert_eq!(dns.lookups.get(), 0, "address lists never touch DNS");
    }

    #[test]
    fn ipv4_mapped_clients_match_ipv4_entries() {
        let dns = FakeDns::default();
        assert!(admits("127.0.0.1", "::ffff:127.0.0.1", &dns));
        assert!(admits("127.0.0.0/8", "::ffff:127.9.9.9", &dns));
        assert!(admits("::ffff:10.0.0.0/104", "10.3.3.3", &dns));
        assert!(admits("::ffff:10.0.0.1", "10.0.0.1", &dns));
    }

    #[test]
    fn names_need_forward_confirmation() {
        let dns = FakeDns::default()
            .with("10.0.0.5", "pc5.Foo.Org.", &["10.0.0.5"])
            .with("10.0.0.6", "trusted.foo.org", &["10.9.9.9"]);
        assert!(admits("*.foo.org", "10.0.0.5", &dns));
        assert!(admits("pc5.foo.org", "10.0.0.5", &dns));
        assert!(admits(".foo.org", "10.0.0.5", &dns));
        assert!(!admits("*.bar.org", "10.0.0.5", &dns));
        assert!(!admits("foo.org", "10.0.0.5", &dns));
        // The PTR says trusted.foo.org, but that name does not lead back to 10.0.0.6.
        assert!(!admits("trusted.foo.org", "10.0.0.6", &dns));
        assert!(!admits("*.foo.org", "10.0.0.6", &dns));
        // No PTR at all.
        assert!(!admits("*.foo.org", "10.0.0.7", &dns));
    }

    #[test]
    fn reverse_lookup_happens_once_per_client() {
        let dns = FakeDns::default().with("10.0.0.5", "pc5.foo.org", &["10.0.0.5"]);
        let client = Client::new("10.0.0.5".parse().unwrap(), &dns);
        for hosts in ["*.bar.org", "pc5.foo.org", "*.foo.org"] {
            HostList::parse(hosts).unwrap().admits(&client);
        }
        assert_eq!(dns.lookups.get(), 1);
    }

    #[test]
    fn address_decisions_need_no_dns_unless_a_name_could_match() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let list = |s: &str| HostList::parse(s).unwrap();
        assert_eq!(
            list("10.0.0.0/8").decide_by_address(ip("10.1.1.1")),
            Some(true)
        );
        assert_eq!(
            list("10.0.0.0/8").decide_by_address(ip("11.1.1.1")),
            Some(false)
        );
        assert_eq!(
            list("10.0.0.1,*.foo.org").decide_by_address(ip("10.0.0.1")),
            Some(true)
        );
        assert_eq!(
            list("10.0.0.1,*.foo.org").decide_by_address(ip("10.0.0.2")),
            None
        );
        assert_eq!(HostList::any().decide_by_address(ip("::1")), Some(true));
    }

    #[test]
    fn empty_list_admits_anyone() {
        assert!(HostList::any().is_any());
        assert!(HostList::any().admits(&Client::new(
            "10.0.0.1".parse().unwrap(),
            &FakeDns::default()
        )));
    }

    #[test]
    fn bad_patterns_are_rejected_with_the_item() {
        let err = |s: &str| HostList::parse(s).unwrap_err();
        assert_eq!(
            err("10.0.0.0/33"),
            PatternError::BadCidr("10.0.0.0/33".into())
        );
        assert_eq!(err("10.0.0.0/"), PatternError::BadCidr("10.0.0.0/".into()));
        assert_eq!(
            err("10.0.0.0/+8"),
            PatternError::BadCidr("10.0.0.0/+8".into())
        );
        assert_eq!(
            err("10.0.0.300/8"),
            PatternError::BadCidr("10.0.0.300/8".into())
        );
        assert_eq!(err("::/129"), PatternError::BadCidr("::/129".into()));
        assert_eq!(
            err("10.0.0.1/8"),
            PatternError::HostBitsSet("10.0.0.1/8".into())
        );
        assert_eq!(err("a,,b"), PatternError::Empty);
        assert_eq!(
            err("foo_bar.org"),
            PatternError::BadName("foo_bar.org".into())
        );
        assert_eq!(err("*"), PatternError::BadName("*".into()));
        assert_eq!(err("*.foo.*"), PatternError::BadName("*.foo.*".into()));
        assert_eq!(
            err("192.168.2.300"),
            PatternError::BadName("192.168.2.300".into())
        );
        assert_eq!(err(&"a,".repeat(300)), PatternError::TooMany);
        assert_eq!(
            err("10.0.0.0/33").to_string(),
            "bad CIDR block '10.0.0.0/33' (expected ADDRESS/LENGTH, length 0-32 for IPv4, 0-128 for IPv6)"
        );
    }

    #[test]
    fn patterns_are_normalised() {
        let list = HostList::parse("*.Foo.ORG,Host.Example.,::ffff:1.2.3.4").unwrap();
        assert_eq!(
            list.patterns(),
            &[
                Pattern::Domain(".foo.org".into()),
                Pattern::Name("host.example".into()),
                Pattern::Addr("1.2.3.4".parse().unwrap()),
            ]
        );
    }
}
