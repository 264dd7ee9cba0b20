#!/usr/bin/env bash
# cross/build.sh TRIPLE: a static, size-tuned modemd for TRIPLE in dist/TRIPLE/modemd.
#
# Needs cross/setup.sh run once (for the toolchain and cross/build/TRIPLE/). Builds with
# Debian's rustc 1.96 (not rustup's: see setup.sh for why), std rebuilt for the target from
# rust-web-src (`-Zbuild-std`, hence RUSTC_BOOTSTRAP=1), the release profile of Cargo.toml
# (opt-level z, lto, one codegen unit, panic abort, strip), and the size flags and std
# features of targets.sh. The first build of a target also builds std (about 30 s); later
# ones only modemd.
#
# Environment: CROSS_TARGET_DIR (default target/cross) is cargo's target dir, apart from the
# native target/ so the two never rebuild each other's artifacts. CROSS_RUSTFLAGS is added to
# the rustc flags, CROSS_STD_FEATURES replaces std's features, and CROSS_DIST_DIR (default
# dist) receives the binary: for size experiments that must not overwrite dist/ (changing
# the flags or features rebuilds std).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=targets.sh source-path=SCRIPTDIR
. "$here/targets.sh"
top=$(dirname "$here")

die() {
    echo "build: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: cross/build.sh TRIPLE (one of: $CROSS_ALL_TARGETS)"
triple=$1
cross_known "$triple" || die "unknown target '$triple' (expected one of: $CROSS_ALL_TARGETS)"

sysroot="$here/build/$triple"
[ -e "$sysroot/.stamp" ] || die "$triple: no cross/build/$triple; run cross/setup.sh first"
for tool in /usr/bin/cargo /usr/bin/rustc; do
    [ -x "$tool" ] || die "no $tool (Debian's cargo-web/rustc-web); run cross/setup.sh first"
done
linker="$(cross_prefix "$triple")gcc"
command -v "$linker" >/dev/null || die "$triple: no linker $linker; run cross/setup.sh first"

# Cargo reads per-target settings from CARGO_TARGET_<TRIPLE>_*.
var=$(echo "$triple" | tr 'a-z-' 'A-Z_')
export "CARGO_TARGET_${var}_LINKER=$linker"
# +crt-static: the MIPS musl targets default to dynamic linking. -L native: rustc's
# self-contained musl link finds crt*.o, libc.a and libunwind.a there. Then the target's size
# flags (targets.sh), then the caller's CROSS_RUSTFLAGS. RUSTFLAGS would override all of
# these, so it must not leak in from the caller.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
flags="-C target-feature=+crt-static -L native=$sysroot $(cross_rustflags "$triple")"
export "CARGO_TARGET_${var}_RUSTFLAGS=$flags ${CROSS_RUSTFLAGS:-}"

# rustup's proxies usually come first in PATH: name Debian's tools outright.
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CROSS_TARGET_DIR:-$top/target/cross}

cd "$top"
/usr/bin/cargo build --locked --release --bin modemd --target "$triple" \
    -Zbuild-std=std,panic_abort "-Zbuild-std-features=${CROSS_STD_FEATURES-$(cross_std_features)}"

dist=${CROSS_DIST_DIR:-dist}
mkdir -p "$dist/$triple"
cp "$CARGO_TARGET_DIR/$triple/release/modemd" "$dist/$triple/modemd.tmp"
mv "$dist/$triple/modemd.tmp" "$dist/$triple/modemd"
echo "build: $dist/$triple/modemd: $(stat -c %s "$dist/$triple/modemd") bytes"
