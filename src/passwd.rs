//! The user and group a daemon drops to, read from `/etc/passwd` and `/etc/group` text.
//!
//! Why not getpwnam(3) and initgroups(3): musl's bring their own file readers and an nscd
//! client (about 8 KiB of the router image); the files are all musl consults anyway. On a
//! glibc system this skips NSS modules such as LDAP, which do not hold a serial daemon's
//! local system user.

/// The user ID and primary group ID of `user`.
pub fn user(passwd: &str, user: &str) -> Option<(u32, u32)> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != user {
            return None;
        }
        let _password = f.next()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// The ID of `group`.
pub fn group(groups: &str, group: &str) -> Option<u32> {
    groups.lines().find_map(|line| {
        let mut f = line.split(':');
        if f.next()? != group {
            return None;
        }
        let _password = f.next()?;
        f.next()?.parse().ok()
    })
}

/// The groups `user` is to be in: `primary` first, then every group listing `user` as a
/// member, once each (what initgroups(3) sets).
pub fn memberships(groups: &str, user: &str, primary: u32) -> Vec<u32> {
    let mut ids = vec![primary];
    for line in groups.lines() {
        let mut f = line.split(':');
        let (Some(_name), Some(_password), Some(gid), Some(members)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        let Ok(gid) = gid.parse() else { continue };
        // ASCII blanks only, as the files are written: str::trim's Unicode table costs the
        // router image half a kilobyte.
        if members.split(',').any(|m| m.trim_ascii() == user) && !ids.contains(&gid) {
            ids.push(gid);
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/ash\n\
                          broken line\n\
                          nobody:*:65534:65534:nobody:/var:/bin/false\n\
                          modem:x:1000:20::/var/empty:/bin/false\n\
                          bad:x:uid:1::/:/bin/false\n";
    const GROUP: &str = "root:x:0:\n\
                         dialout:x:20:modem,other\n\
                         uucp:x:10:other, modem\n\
                         nogroup:x:65534:\n\
                         junk\n\
                         lock:x:54:modemd\n";

    #[test]
    fn users() {
        assert_eq!(user(PASSWD, "nobody"), Some((65534, 65534)));
        assert_eq!(user(PASSWD, "modem"), Some((1000, 20)));
        assert_eq!(user(PASSWD, "mode"), None);
        assert_eq!(user(PASSWD, "bad"), None);
        assert_eq!(user(PASSWD, ""), None);
    }

    #[test]
    fn groups() {
        assert_eq!(group(GROUP, "dialout"), Some(20));
        assert_eq!(group(GROUP, "nogroup"), Some(65534));
        assert_eq!(group(GROUP, "junk"), None);
        assert_eq!(group(GROUP, "wheel"), None);
    }

    #[test]
    fn supplementary_groups_name_the_user_exactly() {
        assert_eq!(memberships(GROUP, "modem", 20), vec![20, 10]);
        assert_eq!(memberships(GROUP, "nobody", 65534), vec![65534]);
        // "modemd" is not "modem".
        assert_eq!(memberships(GROUP, "modem", 1), vec![1, 20, 10]);
    }
}
