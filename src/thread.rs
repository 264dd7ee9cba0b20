//! Starting modemd's threads: one way, so that the router image holds one copy of std's
//! thread start-up code.

use std::io;
use std::thread::{Builder, JoinHandle};

/// Stack of session and listener threads: the session runs the resolver (getaddrinfo,
/// res_query), whose glibc implementation wants tens of KiB; untouched pages cost no memory.
pub const STACK: usize = 256 * 1024;

/// Starts a thread called `name` running `f`. Boxed: every closure type given to
/// `Builder::spawn` instantiates std's thread start-up anew, about 3 KiB of the router image
/// per call site; one `Box<dyn FnOnce>` type makes it one copy.
pub fn spawn(
    name: String,
    stack: usize,
    f: Box<dyn FnOnce() + Send>,
) -> io::Result<JoinHandle<()>> {
    Builder::new().name(name).stack_size(stack).spawn(f)
}
