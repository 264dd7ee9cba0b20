//! The DNS answer parser on arbitrary messages (what a hostile or broken resolver can send):
//! no panic, and a name it returns is a plain host name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modemd::dns::ptr_answer;

fuzz_target!(|data: &[u8]| {
    if let Some(name) = ptr_answer(data) {
        assert!(!name.is_empty() && name.len() <= 256, "{name:?}");
        assert!(!name.starts_with('.') && !name.ends_with('.') && !name.contains(".."), "{name:?}");
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'),
            "{name:?}"
        );
    }
});
