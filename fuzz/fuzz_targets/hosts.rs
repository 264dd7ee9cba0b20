//! The HOSTS parser and matcher on arbitrary input: no panic, and the rules hold: without a
//! forward-confirmed name only addresses decide; an exact address entry always admits.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use modemd::acl::{Client, HostList, Pattern, Resolver, canonical};

/// A resolver whose answers come from the fuzz input itself.
struct Fixed {
    name: Option<String>,
    addrs: Vec<IpAddr>,
}

impl Resolver for Fixed {
    fn reverse(&self, _ip: IpAddr) -> Option<String> {
        self.name.clone()
    }
    fn forward(&self, _name: &str) -> Vec<IpAddr> {
        self.addrs.clone()
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let (addr, rest) = data.split_at(16);
    let ip = if addr[0] & 1 == 0 {
        IpAddr::from([addr[1], addr[2], addr[3], addr[4]])
    } else {
        let mut b = [0u8; 16];
        b.copy_from_slice(addr);
        IpAddr::from(b)
    };
    let text = String::from_utf8_lossy(rest);
    let (field, name) = text.split_once('|').unwrap_or((&text, ""));
    let Ok(list) = HostList::parse(field) else {
        return;
    };
    let by_address = list.decide_by_address(ip).unwrap_or(false);
    // No DNS at all, or a PTR name that does not lead back to the client (a forged PTR):
    // names must not let anyone in.
    let none = Fixed { name: None, addrs: vec![] };
    assert_eq!(list.admits(&Client::new(ip, &none)), by_address, "{ip} {field:?}");
    let forged = Fixed { name: Some(name.to_owned()), addrs: vec![] };
    assert_eq!(list.admits(&Client::new(ip, &forged)), by_address, "{ip} {field:?} {name:?}");
    // A confirmed name may add admission, never take it away.
    let confirmed = Fixed { name: Some(name.to_owned()), addrs: vec![ip] };
    let full = list.admits(&Client::new(ip, &confirmed));
    assert!(full || !by_address);
    if list.patterns().contains(&Pattern::Addr(canonical(ip))) {
        assert!(full && by_address, "exact address entry {ip} refused");
    }
});
