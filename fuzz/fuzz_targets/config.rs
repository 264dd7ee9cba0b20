//! The config parser on arbitrary bytes: it must never panic, and what it accepts must be
//! consistent (every entry's settings print back to something that parses to the same).
#![no_main]

use libfuzzer_sys::fuzz_target;
use modemd::config::{self, Settings};

fuzz_target!(|data: &[u8]| {
    let services = |name: &str| (name == "modem").then_some(2006);
    match config::parse("fuzz.conf", data, &services) {
        Ok(c) => {
            for pool in &c.pools {
                assert!(!pool.entries.is_empty());
                for e in &pool.entries {
                    let again: Settings = e.settings.to_string().parse().expect("settings round trip");
                    assert_eq!(again, e.settings);
                    assert!(e.device.is_absolute());
                }
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty() && errors.len() <= config::MAX_ERRORS + 1);
            for e in &errors {
                assert!(e.line >= 1);
                assert!(e.to_string().starts_with("fuzz.conf:"));
            }
        }
    }
});
