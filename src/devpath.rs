//! Resolving a device path through its symbolic links, for the name its lock file carries:
//! `/dev/modem` → `/dev/ttyUSB0` must lock `LCK..ttyUSB0`, as cu, minicom and pppd do.
//!
//! Not realpath(3): musl's keeps two `PATH_MAX` buffers on the stack, and the 8 KiB it
//! touches stay resident in every session thread that called it (a quarter of a megabyte
//! with 32 sessions). This walks the path one component at a time with `readlink` on heap
//! buffers. The walk is pure (the links come from a function), so it is tested without a
//! file system.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// More links than this in one path is a loop (Linux's own limit).
const MAX_LINKS: usize = 40;

/// `path`, absolute and without symbolic links, `.` or `..`.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    if path.as_os_str().is_empty() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    let start = if path.is_absolute() {
        PathBuf::new()
    } else {
        std::env::current_dir()?
    };
    walk(start, path, |p| match std::fs::read_link(p) {
        Ok(target) => Ok(Some(target)),
        // EINVAL: it exists and is not a link.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(e),
    })
}

/// Resolves `path` from the directory `start` (ignored if `path` is absolute), asking
/// `link` for each component: `Ok(Some(target))` for a link, `Ok(None)` for anything else
/// that exists, an error for what does not.
///
/// The path is handled as bytes, split at `/`, as std's `Components` splits it (empty and
/// `.` components dropped, `..` the parent): std's component iteration, `PathBuf::push` and
/// `PathBuf::pop` cost the router image more than this walk.
pub fn walk(
    start: PathBuf,
    path: &Path,
    mut link: impl FnMut(&Path) -> io::Result<Option<PathBuf>>,
) -> io::Result<PathBuf> {
    let mut done = if path.is_absolute() {
        b"/".to_vec()
    } else {
        start.into_os_string().into_vec()
    };
    // Components still to walk, the next one last.
    let mut todo: Vec<Vec<u8>> = Vec::new();
    push_components(&mut todo, path.as_os_str().as_bytes());
    let mut links = 0;
    while let Some(name) = todo.pop() {
        if name == b".." {
            pop(&mut done);
            continue;
        }
        push(&mut done, &name);
        if let Some(target) = link(Path::new(OsStr::from_bytes(&done)))? {
            links += 1;
            if links > MAX_LINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            pop(&mut done);
            if target.is_absolute() {
                done = b"/".to_vec();
            }
            push_components(&mut todo, target.as_os_str().as_bytes());
        }
    }
    Ok(PathBuf::from(OsString::from_vec(done)))
}

/// Queues the components of `path` that name something (not empty, not `.`) so that its
/// first is popped next.
fn push_components(todo: &mut Vec<Vec<u8>>, path: &[u8]) {
    let at = todo.len();
    let names = path.split(|&b| b == b'/');
    todo.extend(
        names
            .filter(|c| !c.is_empty() && *c != b".")
            .map(<[u8]>::to_vec),
    );
    todo[at..].reverse();
}

/// `PathBuf::push` of a plain name: a `/` between them unless `dir` is empty or ends in one.
fn push(dir: &mut Vec<u8>, name: &[u8]) {
    if !dir.is_empty() && !dir.ends_with(b"/") {
        dir.push(b'/');
    }
    dir.extend_from_slice(name);
}

/// `PathBuf::pop` of a path without `.` or `..` components: the last name and the slashes
/// before it go, but never the root (`/` stays `/`).
fn pop(path: &mut Vec<u8>) {
    let trimmed = path.len() - path.iter().rev().take_while(|&&b| b == b'/').count();
    if trimmed == 0 {
        return;
    }
    let parent = path[..trimmed].iter().rposition(|&b| b == b'/');
    let keep = match parent {
        None => 0,
        Some(at) => {
            let end = path[..at]
                .iter()
                .rposition(|&b| b != b'/')
                .map_or(0, |i| i + 1);
            // Slashes only before the name: the root.
            if end == 0 { 1 } else { end }
        }
    };
    path.truncate(keep);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file system of `existing` paths and `links` (path → target).
    fn resolve_in(existing: &[&str], links: &[(&str, &str)], path: &str) -> io::Result<String> {
        walk(PathBuf::from("/home"), Path::new(path), |p| {
            let p = p.to_str().expect("utf-8");
            if let Some((_, t)) = links.iter().find(|(from, _)| *from == p) {
                return Ok(Some(PathBuf::from(t)));
            }
            if existing.contains(&p) {
                Ok(None)
            } else {
                Err(io::Error::from_raw_os_error(libc::ENOENT))
            }
        })
        .map(|p| p.to_string_lossy().into_owned())
    }

    const DEV: &[&str] = &[
        "/dev",
        "/dev/ttyUSB0",
        "/dev/serial",
        "/dev/serial/by-id",
        "/home",
    ];

    #[test]
    fn a_plain_device_is_itself() {
        assert_eq!(
            resolve_in(DEV, &[], "/dev/ttyUSB0").unwrap(),
            "/dev/ttyUSB0"
        );
        assert_eq!(
            resolve_in(DEV, &[], "/dev/./ttyUSB0").unwrap(),
            "/dev/ttyUSB0"
        );
        assert_eq!(
            resolve_in(DEV, &[], "//dev//ttyUSB0").unwrap(),
            "/dev/ttyUSB0"
        );
    }

    #[test]
    fn relative_and_absolute_links_are_followed() {
        let links = [
            ("/dev/modem", "ttyUSB0"),
            ("/dev/serial/by-id/usb-X-port0", "../../ttyUSB0"),
            ("/dev/abs", "/dev/modem"),
        ];
        assert_eq!(
            resolve_in(DEV, &links, "/dev/modem").unwrap(),
            "/dev/ttyUSB0"
        );
        assert_eq!(
            resolve_in(DEV, &links, "/dev/serial/by-id/usb-X-port0").unwrap(),
            "/dev/ttyUSB0"
        );
        assert_eq!(resolve_in(DEV, &links, "/dev/abs").unwrap(), "/dev/ttyUSB0");
    }

    #[test]
    fn links_in_directories_and_dot_dot_after_them() {
        // `..` applies to where a link led, as the kernel does.
        let links = [("/d", "/dev/serial/by-id")];
        let existing = [DEV, &["/dev/serial/x"]].concat();
        assert_eq!(
            resolve_in(&existing, &links, "/d/../x").unwrap(),
            "/dev/serial/x"
        );
        assert_eq!(
            resolve_in(DEV, &[], "/../dev/ttyUSB0").unwrap(),
            "/dev/ttyUSB0"
        );
    }

    #[test]
    fn relative_paths_start_from_the_directory() {
        let existing = [DEV, &["/home/ttyS9"]].concat();
        assert_eq!(resolve_in(&existing, &[], "ttyS9").unwrap(), "/home/ttyS9");
    }

    #[test]
    fn pop_and_push_agree_with_pathbuf() {
        for p in [
            "/", "", "a", "a/b", "/a", "/a/b", "/a/b/", "//a//b//", "a//b",
        ] {
            let mut ours = p.as_bytes().to_vec();
            pop(&mut ours);
            let mut theirs = PathBuf::from(p);
            theirs.pop();
            assert_eq!(OsStr::from_bytes(&ours), theirs.as_os_str(), "pop {p:?}");
            let mut ours = p.as_bytes().to_vec();
            push(&mut ours, b"x");
            let mut theirs = PathBuf::from(p);
            theirs.push("x");
            assert_eq!(OsStr::from_bytes(&ours), theirs.as_os_str(), "push {p:?}");
        }
    }

    #[test]
    fn missing_paths_and_loops_fail() {
        let e = resolve_in(DEV, &[], "/dev/ttyUSB1").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        let links = [("/dev/a", "b"), ("/dev/b", "a")];
        let e = resolve_in(DEV, &links, "/dev/a").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn agrees_with_the_c_library_on_this_machine() {
        for p in [
            "/dev/null",
            "/proc/self/cwd",
            "/proc/self/root/dev/null",
            "/nonexistent/x",
        ] {
            let ours = resolve(Path::new(p));
            let theirs = std::fs::canonicalize(p);
            match (ours, theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{p}"),
                (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{p}"),
                (a, b) => panic!("{p}: ours {a:?}, libc {b:?}"),
            }
        }
    }
}
