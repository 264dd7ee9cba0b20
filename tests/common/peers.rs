//! Other programs the tests talk to: Debian's pyserial, the RFC 2217 client DESIGN §4 must
//! satisfy "exactly as shipped by Debian".

use std::process::{Command, Output};
use std::time::Duration;

use super::run_bounded;

/// Debian's `/usr/bin/python3`, where python3-serial is installed; a `python3` first on PATH
/// (pyenv) lacks it. Without the variables that would point it at another Python's library.
pub fn python3() -> Command {
    let mut c = Command::new("/usr/bin/python3");
    c.env_remove("PYTHONHOME").env_remove("PYTHONPATH");
    c
}

/// Runs `script` under [`python3`], at most `timeout` (then kills it and panics).
pub fn pyserial(script: &str, timeout: Duration) -> Output {
    run_bounded(python3().arg("-c").arg(script), timeout)
}
