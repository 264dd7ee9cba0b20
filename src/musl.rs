//! Replacements for musl functions whose own definition would bloat the static binary. A
//! static link takes a symbol defined here and never pulls musl's object for it; nothing
//! here may change what the replaced function does for the calls std makes.
//!
//! Compiled for musl targets only (see `lib.rs`); glibc builds link dynamically and keep
//! glibc's definitions. Being compiled into this crate is all a definition needs: it is
//! `#[unsafe(no_mangle)] pub extern "C"`, so it is kept in the link whether or not Rust code
//! calls it. Like `sys/`, this is a place where raw `libc` is called: a C function is
//! being defined.

/// Names the calling thread, in place of musl's pthread_setname_np. Why: for a thread other
/// than the caller, musl's formats a /proc path with snprintf, and that alone links all of
/// printf into the static binary (13 KiB of the mipsel image). std only ever names the
/// calling thread, which prctl does alone; a static link takes this definition and never
/// pulls musl's.
///
/// # Safety
/// `name` must be a NUL-terminated string, as for pthread_setname_np(3).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_setname_np(
    thread: libc::pthread_t,
    name: *const libc::c_char,
) -> libc::c_int {
    // SAFETY: pthread_self has no preconditions.
    if thread != unsafe { libc::pthread_self() } {
        return libc::ENOTSUP;
    }
    // SAFETY: `name` is a C string (the caller's contract); the kernel copies at most 16
    // bytes of it.
    if unsafe { libc::prctl(libc::PR_SET_NAME, name) } == 0 {
        0
    } else {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    }
}
