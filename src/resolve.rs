//! The ACL's resolver: DNS through the C library, each lookup bounded in time and in number,
//! so that a slow or dead name server refuses name-matched clients instead of piling up
//! session threads. The reverse lookup follows the C library's order: `/etc/hosts` first,
//! then the PTR record through res_query(3).
//!
//! The answers are parsed by `dns.rs`, which stays pure; this module does the asking. It
//! must never keep a session waiting longer than `DNS_TIMEOUT`, never have more than
//! `MAX_LOOKUPS` lookups alive, and never decide admission: that is `acl.rs`.

use std::ffi::CString;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::acl::Resolver;
use crate::sys;

/// How long one DNS lookup of the ACL may take; a slow resolver then refuses name-matched
/// clients instead of piling up threads.
const DNS_TIMEOUT: Duration = Duration::from_secs(3);
/// Most DNS lookups in flight; beyond that a lookup fails at once.
const MAX_LOOKUPS: usize = 16;
static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

/// DNS through the C library (`/etc/hosts`, then DNS), bounded in time: the C calls cannot
/// be cancelled, so each runs as a job on a worker thread that we stop waiting for after
/// [`DNS_TIMEOUT`]; [`MAX_LOOKUPS`] caps how many such jobs exist.
pub struct SystemResolver;

/// One question for a lookup thread.
enum Query {
    Reverse(IpAddr),
    Forward(String),
}

/// Its answer.
enum Answer {
    Name(Option<String>),
    Addrs(Vec<IpAddr>),
}

fn ask(query: Query) -> Answer {
    match query {
        Query::Reverse(ip) => Answer::Name(reverse_lookup(ip)),
        Query::Forward(name) => Answer::Addrs(forward_lookup(&name)),
    }
}

/// The addresses of `name`, as std's `ToSocketAddrs` finds them (an address literal is its
/// own answer, else getaddrinfo(3)), through `sys` instead: std's lookup with its error
/// texts cost the router image 1.7 KB, and a failure here is only an empty answer.
fn forward_lookup(name: &str) -> Vec<IpAddr> {
    if let Ok(ip) = name.parse() {
        return vec![ip];
    }
    CString::new(name)
        .ok()
        .and_then(|host| sys::host_addrs(&host))
        .unwrap_or_default()
}

fn bounded(query: Query) -> Option<Answer> {
    if LOOKUPS.fetch_add(1, Ordering::SeqCst) >= MAX_LOOKUPS {
        LOOKUPS.fetch_sub(1, Ordering::SeqCst);
        crate::warning!("{MAX_LOOKUPS} DNS lookups already in flight; not resolving");
        return None;
    }
    let (promise, outcome) = crate::thread::promise();
    let job = Box::new(move || {
        let answer = ask(query);
        LOOKUPS.fetch_sub(1, Ordering::SeqCst);
        promise.keep(answer);
    });
    if crate::thread::run(c"dns", job).is_err() {
        LOOKUPS.fetch_sub(1, Ordering::SeqCst);
        return None;
    }
    let answer = outcome.wait(Some(DNS_TIMEOUT));
    if answer.is_none() {
        crate::warning!(
            "DNS lookup gave no answer within {} s; not waiting",
            DNS_TIMEOUT.as_secs()
        );
    }
    answer
}

impl Resolver for SystemResolver {
    fn reverse(&self, ip: IpAddr) -> Option<String> {
        match bounded(Query::Reverse(ip)) {
            Some(Answer::Name(name)) => name,
            _ => None,
        }
    }

    fn forward(&self, name: &str) -> Vec<IpAddr> {
        match bounded(Query::Forward(name.to_owned())) {
            Some(Answer::Addrs(addrs)) => addrs,
            _ => Vec::new(),
        }
    }
}

/// The name `ip` has: its /etc/hosts line, else its PTR record (through res_query(3)).
fn reverse_lookup(ip: IpAddr) -> Option<String> {
    if let Ok(hosts) = sys::read_text(std::path::Path::new("/etc/hosts")) {
        if let Some(name) = crate::dns::hosts_name(&hosts, ip) {
            return Some(name);
        }
    }
    let query = CString::new(crate::dns::ptr_query(ip)).ok()?;
    // A UDP answer without EDNS fits in 512 bytes; a longer one is cut, and then parsed only
    // as far as it goes.
    let mut answer = [0u8; 512];
    let n = sys::res_query(&query, C_IN, T_PTR, &mut answer)?;
    crate::dns::ptr_answer(&answer[..n])
}

/// DNS class IN and type PTR (RFC 1035, 3.2.2 and 3.2.4), for res_query.
const C_IN: libc::c_int = 1;
const T_PTR: libc::c_int = 12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_lookups_take_literals_as_they_are_and_names_from_the_c_library() {
        assert_eq!(forward_lookup("192.0.2.7"), [IpAddr::from([192, 0, 2, 7])]);
        assert_eq!(
            forward_lookup("::1"),
            [IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1u16])]
        );
        assert!(forward_lookup("localhost").contains(&IpAddr::from([127, 0, 0, 1])));
        assert!(forward_lookup("no\0such").is_empty());
    }

    #[test]
    fn lookups_beyond_the_cap_fail_at_once() {
        LOOKUPS.fetch_add(MAX_LOOKUPS, Ordering::SeqCst);
        let start = std::time::Instant::now();
        let name = SystemResolver.reverse(IpAddr::from([127, 0, 0, 1]));
        let addrs = SystemResolver.forward("localhost");
        LOOKUPS.fetch_sub(MAX_LOOKUPS, Ordering::SeqCst);
        assert_eq!((name, addrs), (None, Vec::new()));
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(
            LOOKUPS.load(Ordering::SeqCst),
            0,
            "the refused lookups left no count"
        );
    }
}
