//! Socket and name-service calls: socket, bind, listen, socket options, the services
//! database, DNS queries, and what descriptor 0 is. Thin wrappers, as the rest of `sys`.

use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::cvt;

/// `res_query(3)`: asks DNS the question `name` of `class` and `rtype` and puts the answer
/// in `answer`. Returns the length written (an answer longer than `answer` is cut to it), or
/// `None` without an answer: res_query gives its reason in `h_errno`, not `errno`, so there
/// is no `io::Error` to return.
pub fn res_query(
    name: &CStr,
    class: libc::c_int,
    rtype: libc::c_int,
    answer: &mut [u8],
) -> Option<usize> {
    let len = libc::c_int::try_from(answer.len()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `name` is a NUL-terminated string; `answer` is writable for the length given.
    let n = unsafe { c_res_query(name.as_ptr(), class, rtype, answer.as_mut_ptr(), len) };
    Some(usize::try_from(n).ok()?.min(answer.len()))
}

unsafe extern "C" {
    /// resolv.h; in musl's and (since 2.34) glibc's libc, not in the `libc` crate.
    #[link_name = "res_query"]
    fn c_res_query(
        dname: *const libc::c_char,
        class: libc::c_int,
        rtype: libc::c_int,
        answer: *mut u8,
        anslen: libc::c_int,
    ) -> libc::c_int;
}

/// `getaddrinfo(3)` of `host`, for stream sockets of any family: the IPv4 and IPv6
/// addresses it gives, in its order (other families skipped); `None` if it fails. The same
/// call as std's `ToSocketAddrs` makes, without its error texts and port handling.
pub fn host_addrs(host: &CStr) -> Option<Vec<IpAddr>> {
    // SAFETY: addrinfo is plain old data; all-zero is the "no preference" hint.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: `host` is NUL-terminated, no service is asked, and `list` receives the result.
    if unsafe { libc::getaddrinfo(host.as_ptr(), std::ptr::null(), &hints, &mut list) } != 0 {
        return None;
    }
    let mut addrs = Vec::new();
    let mut ai = list;
    // SAFETY: getaddrinfo succeeded, so `list` is a valid, null-terminated chain, read here
    // before freeaddrinfo frees it; each ai_addr is a sockaddr of its ai_family's type.
    unsafe {
        while let Some(a) = ai.as_ref() {
            match a.ai_family {
                libc::AF_INET => {
                    let sin = &*a.ai_addr.cast::<libc::sockaddr_in>();
                    addrs.push(IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()));
                }
                libc::AF_INET6 => {
                    let sin6 = &*a.ai_addr.cast::<libc::sockaddr_in6>();
                    addrs.push(IpAddr::from(sin6.sin6_addr.s6_addr));
                }
                _ => {}
            }
            ai = a.ai_next;
        }
        libc::freeaddrinfo(list);
    }
    Some(addrs)
}

fn sockaddr_of(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr.ip() {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = addr.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(v6) => {
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = addr.port().to_be();
            sin6.sin6_addr.s6_addr = v6.octets();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The TCP port of a service name from the services database (`getservbyname`).
///
/// Only called while a config is loaded, from one thread at a time.
pub fn service_port(name: &str) -> Option<u16> {
    let name = CString::new(name).ok()?;
    let proto = c"tcp";
    // SAFETY: both arguments are valid NUL-terminated strings; the result is either null or
    // points to a static servent that we read at once, before any other lookup.
    let ent = unsafe { libc::getservbyname(name.as_ptr(), proto.as_ptr()) };
    if ent.is_null() {
        return None;
    }
    // SAFETY: `ent` is non-null and points to a valid servent (see above).
    let port = unsafe { (*ent).s_port };
    Some(u16::from_be(port as u16))
}

/// A new socket of `family` and `ty` (`SOCK_CLOEXEC` is always added), protocol 0.
pub fn socket(family: libc::c_int, ty: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket takes no pointers.
    let fd = cvt(unsafe { libc::socket(family, ty | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: socket just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds `socket` to `addr`.
pub fn bind(socket: BorrowedFd<'_>, addr: SocketAddr) -> io::Result<()> {
    let (sa, len) = sockaddr_of(addr);
    // SAFETY: `sa` is a valid sockaddr of `len` bytes for the call.
    cvt(unsafe {
        libc::bind(
            socket.as_raw_fd(),
            (&sa as *const libc::sockaddr_storage).cast(),
            len,
        )
    })?;
    Ok(())
}

/// Connects `socket` to `addr`; a non-blocking socket fails with `EINPROGRESS` and is
/// connected when it polls writable (then [`getsockopt_int`] `SO_ERROR` tells how it went).
pub fn connect(socket: BorrowedFd<'_>, addr: SocketAddr) -> io::Result<()> {
    let (sa, len) = sockaddr_of(addr);
    // SAFETY: `sa` is a valid sockaddr of `len` bytes for the call.
    cvt(unsafe {
        libc::connect(
            socket.as_raw_fd(),
            (&sa as *const libc::sockaddr_storage).cast(),
            len,
        )
    })?;
    Ok(())
}

/// Makes `socket` listen, with room for `backlog` connections not yet accepted.
pub fn listen(socket: BorrowedFd<'_>, backlog: libc::c_int) -> io::Result<()> {
    // SAFETY: listen takes no pointers.
    cvt(unsafe { libc::listen(socket.as_raw_fd(), backlog) })?;
    Ok(())
}

/// `send(2)` from `buf` with `flags` (`MSG_NOSIGNAL` is always added: a closed peer is an
/// `EPIPE`, not a signal); may send less than all of it.
pub fn send(socket: BorrowedFd<'_>, buf: &[u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the whole call.
    let n = cvt(unsafe {
        libc::send(
            socket.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            flags | libc::MSG_NOSIGNAL,
        )
    })?;
    Ok(n as usize)
}

/// Sets an integer socket option.
pub fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `value` is a valid c_int for the whole call and its size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// Reads an integer socket option.
pub fn getsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes for the whole call, `len` gives the size.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

/// Whether descriptor 0 is a connected TCP socket, as inetd hands a server.
pub fn stdin_is_tcp() -> bool {
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `ty` and `len` are valid out-pointers of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            0,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r == -1 || ty != libc::SOCK_STREAM {
        return false;
    }
    // SAFETY: sockaddr_storage is plain old data, large enough for any address.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` and `len` are valid out-pointers of the sizes given.
    let r =
        unsafe { libc::getsockname(0, (&mut ss as *mut libc::sockaddr_storage).cast(), &mut len) };
    r == 0 && matches!(ss.ss_family as libc::c_int, libc::AF_INET | libc::AF_INET6)
}
