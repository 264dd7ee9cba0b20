# shellcheck shell=bash
# The router targets and what each needs: sourced by setup.sh, build.sh, check.sh and smoke.sh
# so that a new target is one line in each table below.

# The five targets `make cross` builds, in the order the size table prints them.
CROSS_ALL_TARGETS="x86_64-unknown-linux-musl armv7-unknown-linux-musleabihf aarch64-unknown-linux-musl mipsel-unknown-linux-musl mips-unknown-linux-musl"

# cross_known TRIPLE: true when the tables below know TRIPLE.
cross_known() {
    case " $CROSS_ALL_TARGETS " in *" $1 "*) return 0 ;; *) return 1 ;; esac
}

# cross_prefix TRIPLE: the Debian cross-toolchain prefix ("" for the host's own gcc).
cross_prefix() {
    case "$1" in
        x86_64-unknown-linux-musl) echo "" ;;
        armv7-unknown-linux-musleabihf) echo "arm-linux-gnueabihf-" ;;
        aarch64-unknown-linux-musl) echo "aarch64-linux-gnu-" ;;
        mipsel-unknown-linux-musl) echo "mipsel-linux-gnu-" ;;
        mips-unknown-linux-musl) echo "mips-linux-gnu-" ;;
        *) return 1 ;;
    esac
}

# cross_apt TRIPLE: the Debian packages holding that prefix's gcc and binutils.
cross_apt() {
    case "$1" in
        x86_64-unknown-linux-musl) echo "gcc binutils" ;;
        armv7-unknown-linux-musleabihf) echo "gcc-arm-linux-gnueabihf binutils-arm-linux-gnueabihf" ;;
        aarch64-unknown-linux-musl) echo "gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu" ;;
        mipsel-unknown-linux-musl) echo "gcc-mipsel-linux-gnu binutils-mipsel-linux-gnu" ;;
        mips-unknown-linux-musl) echo "gcc-mips-linux-gnu binutils-mips-linux-gnu" ;;
        *) return 1 ;;
    esac
}

# cross_musl TRIPLE: where the target's musl comes from.
#   deb:ARCH:DIR  Debian's musl-dev for ARCH, its files under /usr/lib/DIR
#   src:TARGET    musl rebuilt from Debian's source for TARGET (see cross_musl_cflags)
# Debian's MIPS musl is hard-float, while Rust's MIPS musl targets are soft-float: linking them
# only warns, and the binary dies with SIGILL on an FPU-less router CPU.
cross_musl() {
    case "$1" in
        x86_64-unknown-linux-musl) echo "deb:amd64:x86_64-linux-musl" ;;
        armv7-unknown-linux-musleabihf) echo "deb:armhf:arm-linux-musleabihf" ;;
        aarch64-unknown-linux-musl) echo "deb:arm64:aarch64-linux-musl" ;;
        mipsel-unknown-linux-musl) echo "src:mipsel-linux-musl" ;;
        mips-unknown-linux-musl) echo "src:mips-linux-musl" ;;
        *) return 1 ;;
    esac
}

# cross_cflags TRIPLE: C flags matching rustc's idea of the target, for musl and the stub
# unwinder (rustc's mips*-unknown-linux-musl: cpu mips32r2, +soft-float).
cross_cflags() {
    case "$1" in
        mips*-unknown-linux-musl) echo "-march=mips32r2 -msoft-float" ;;
        *) echo "" ;;
    esac
}

# cross_rustflags TRIPLE: rustc flags for the target beyond +crt-static and -L (build.sh), all
# for size. Measured on modemd, release profile, Debian rustc 1.96 (mipsel bytes, 2026-11-25):
#   -Cpanic=immediate-abort          a panic is a trap instruction: no message formatting, no
#                                    hook, no Location table (mipsel -41 KB). A release build
#                                    never runs a destructor on panic anyway (panic=abort); a
#                                    crash leaves its UUCP locks naming a dead PID, which cu,
#                                    minicom, pppd and modemd itself treat as stale. Unstable
#                                    (-Zunstable-options), as -Zbuild-std already is.
#   -C force-unwind-tables=no        no .eh_frame: with panic=abort and the no-op unwinder
#                                    nothing reads it (x86_64 -49 KB, aarch64 -65 KB, mipsel
#                                    -33 KB, armv7 -4 KB).
#   -C relocation-model=static       for the targets that link a non-PIE static executable
#                                    anyway (armv7, MIPS), so no ASLR is lost: MIPS code then
#                                    calls directly instead of through the GOT (mipsel -45 KB,
#                                    armv7 -8 KB). x86_64 stays static-pie; aarch64 gains 0.
#   -Wl,-z,max-page-size=4096        MIPS only: ld pads segments to 64 KiB by default (mipsel
#                                    -53 KB). Router MIPS kernels use 4 KiB pages; a kernel
#                                    built for 16/64 KiB pages would refuse the binary.
#   -Wl,-z,common-page-size=64       MIPS: the data segment follows the code in the file
#                                    instead of starting on the next 4 KiB boundary (its
#                                    address still moves to a page of its own, so nothing is
#                                    both writable and executable): 0-4 KiB of padding gone,
#                                    mipsel 285,032 -> 283,176 bytes (2026-11-30).
#   -Wl,-z,norelro                   no RELRO segment. Nothing would enforce it: musl applies
#                                    RELRO in its dynamic linker only, never in a static
#                                    binary. Its page alignment cost up to 4 KiB of file, in
#                                    steps: mipsel 260,364 -> 256,668 bytes.
# Tried and not kept: -Zlocation-detail=none and -Zfmt-debug=none (0 bytes once panics are
# traps), opt-level "s" (+53 KB), lld with --icf=all (gcc's MIPS crtbegin.o is -mfpxx, which
# lld refuses to link with soft-float code).
cross_rustflags() {
    local size="-Zunstable-options -Cpanic=immediate-abort -C force-unwind-tables=no"
    size="$size -C link-arg=-Wl,-z,norelro"
    case "$1" in
        mips*-unknown-linux-musl)
            echo "$size -C relocation-model=static -C link-arg=-Wl,-z,max-page-size=4096" \
                "-C link-arg=-Wl,-z,common-page-size=64"
            ;;
        armv7-unknown-linux-musleabihf)
            echo "$size -C relocation-model=static"
            ;;
        *) echo "$size" ;;
    esac
}

# cross_std_features: the features std is rebuilt with. None of the default ones (the
# backtrace symbolizer is about 40% of a binary that aborts on panic anyway), and
# optimize_for_size: smaller variants of std's sort and formatting code (mipsel -4 KB).
cross_std_features() {
    echo "optimize_for_size"
}

# cross_qemu TRIPLE: the qemu-user binary that runs the target's programs.
cross_qemu() {
    case "$1" in
        x86_64-unknown-linux-musl) echo "qemu-x86_64-static" ;;
        armv7-unknown-linux-musleabihf) echo "qemu-arm-static" ;;
        aarch64-unknown-linux-musl) echo "qemu-aarch64-static" ;;
        mipsel-unknown-linux-musl) echo "qemu-mipsel-static" ;;
        mips-unknown-linux-musl) echo "qemu-mips-static" ;;
        *) return 1 ;;
    esac
}

# cross_targets [TRIPLE...]: the arguments, or all five when there are none; dies on an
# unknown triple.
cross_targets() {
    local t
    if [ $# -eq 0 ]; then
        # shellcheck disable=SC2086 # a word list on purpose
        set -- $CROSS_ALL_TARGETS
    fi
    for t in "$@"; do
        if ! cross_known "$t"; then
            echo "cross: unknown target '$t' (expected one of: $CROSS_ALL_TARGETS)" >&2
            return 1
        fi
        echo "$t"
    done
}
