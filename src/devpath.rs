//! Resolving a device path through its symbolic links, for the name its lock file carries:
//! `/dev/modem` → `/dev/ttyUSB0` must lock `LCK..ttyUSB0`, as cu, minicom and pppd do.
//!
//! Not realpath(3): musl's keeps two `PATH_MAX` buffers on the stack, and the 8 KiB it
//! touches stay resident in every session thread that called it (a quarter of a megabyte
//! with 32 sessions). This walks the path one component at a time with `readlink` on heap
//! buffers. The walk is pure (the links come from a function), so it is tested without a
//! file system.

use std::io;
use std::path::{Component, Path, PathBuf};

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
pub fn walk(
    start: PathBuf,
    path: &Path,
    mut link: impl FnMut(&Path) -> io::Result<Option<PathBuf>>,
) -> io::Result<PathBuf> {
    let mut done = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        start
    };
    // Components still to walk, the next one last.
    let mut todo: Vec<PathBuf> = Vec::new();
    push_components(&mut todo, path);
    let mut links = 0;
    while let Some(c) = todo.pop() {
        match c.components().next() {
            Some(Component::CurDir) | Some(Component::RootDir) | None => {}
            Some(Component::ParentDir) => {
                done.pop();
            }
            Some(Component::Normal(name)) => {
                done.push(name);
                if let Some(target) = link(&done)? {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    done.pop();
                    if target.is_absolute() {
                        done = PathBuf::from("/");
                    }
                    push_components(&mut todo, &target);
                }
            }
            Some(Component::Prefix(_)) => {}
        }
    }
    Ok(done)
}

/// Queues the components of `path` so that its first is popped next.
fn push_components(todo: &mut Vec<PathBuf>, path: &Path) {
    let at = todo.len();
    todo.extend(path.components().map(|c| PathBuf::from(c.as_os_str())));
    todo[at..].reverse();
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
