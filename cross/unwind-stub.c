/*
 * A no-op unwinder, installed as libunwind.a for the static musl release builds.
 *
 * Why: rustc links musl targets against -lunwind, and the natural candidate, Debian gcc-12's
 * libgcc_eh.a, is wrong for us three ways: it calls glibc's _dl_find_object (link error
 * against musl on x86_64, aarch64 and MIPS), it refers to pthread_once & co. only weakly (so
 * they are not pulled from libc.a and a backtrace jumps to address 0), and on MIPS it uses FPU
 * instructions (SIGILL on the FPU-less router CPUs modemd is for).
 *
 * The release profile has panic = "abort", so nothing ever unwinds; what is left is std's
 * backtrace capture (RUST_BACKTRACE=1 after a panic) and, on ARM, the EHABI personality
 * routine that the unwind tables name. Here a backtrace is empty and the personality routine
 * refuses: a panic still prints its message, then aborts.
 *
 * Only for release builds: `cargo test` for a target needs a real unwinder.
 */

struct _Unwind_Context;

/* The values of _Unwind_Reason_Code in the Itanium and ARM EHABI ABIs. */
#define URC_END_OF_STACK 5
#define URC_FAILURE 9

typedef int (*_Unwind_Trace_Fn)(struct _Unwind_Context *, void *);

/* A stack walk that finds no frame: std prints an empty backtrace. */
int _Unwind_Backtrace(_Unwind_Trace_Fn trace, void *arg)
{
    (void)trace;
    (void)arg;
    return URC_END_OF_STACK;
}

#if defined(__arm__)
/*
 * ARM EHABI: every function's unwind entry names __aeabi_unwind_cpp_pr0 (or pr1/pr2), and
 * _Unwind_GetIP is a macro over _Unwind_VRS_Get. Neither is ever reached, since
 * _Unwind_Backtrace above reports no frame.
 */
struct _Unwind_Control_Block;

int __aeabi_unwind_cpp_pr0(int state, struct _Unwind_Control_Block *ucbp,
                           struct _Unwind_Context *context)
{
    (void)state;
    (void)ucbp;
    (void)context;
    return URC_FAILURE;
}

int __aeabi_unwind_cpp_pr1(int state, struct _Unwind_Control_Block *ucbp,
                           struct _Unwind_Context *context)
{
    return __aeabi_unwind_cpp_pr0(state, ucbp, context);
}

int __aeabi_unwind_cpp_pr2(int state, struct _Unwind_Control_Block *ucbp,
                           struct _Unwind_Context *context)
{
    return __aeabi_unwind_cpp_pr0(state, ucbp, context);
}

/* _UVRSR_FAILED: no register can be read from a frame that does not exist. */
int _Unwind_VRS_Get(struct _Unwind_Context *context, int regclass, unsigned int regno,
                    int representation, void *valuep)
{
    (void)context;
    (void)regclass;
    (void)regno;
    (void)representation;
    (void)valuep;
    return 2;
}
#else
unsigned long _Unwind_GetIP(struct _Unwind_Context *context)
{
    (void)context;
    return 0;
}
#endif
