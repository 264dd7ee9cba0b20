#!/usr/bin/env bash
# cross/setup.sh [TRIPLE...]: prepare this Debian 12 machine to build static modemd binaries
# for the router targets (all five when no TRIPLE is given). Run as root; re-running skips
# what is already done.
#
# Toolchain: Debian's rustc-web/cargo-web 1.96 with its std source rust-web-src 1.96, used
# through `RUSTC_BOOTSTRAP=1 cargo -Zbuild-std` (see build.sh). Chosen over the rustup nightly
# with its rust-src because:
#   - it needs nothing but Debian's archive and crates.io, the only two places CI's fresh
#     machines reach; rustup's servers may not be reachable there, and no prebuilt std exists
#     for armv7, aarch64 or MIPS musl anyway;
#   - compiler and std source come from one Debian source package at one version, so they
#     cannot drift apart, and `apt-get install` gives the same toolchain on every machine; a
#     nightly must be pinned by hand and needs its own rust-src from rustup's servers (it
#     cannot build Debian's 1.96 std);
#   - with rustc 1.96 the release build's unwinder is two or three no-op functions
#     (unwind-stub.c) on every target; the 1.97 nightly also wants gcc's libgcc_eh on armv7.
# The cost: RUSTC_BOOTSTRAP=1 unlocks unstable flags (-Zbuild-std) on a stable compiler, and a
# Debian point release of rustc-web rebuilds std once (about 30 s per target).
#
# What it does:
#   1. apt-get installs the cross gccs and binutils, musl-dev, qemu-user-static, file, and the
#      Rust toolchain above (only the packages that are missing).
#   2. Fetches what the host's apt does not carry, through a private apt state in
#      cross/build/apt (the system's sources and architectures stay untouched): Debian's
#      musl-dev for armhf and arm64, and Debian's musl source for the MIPS targets, which is
#      rebuilt soft-float for mips32r2 (Debian's MIPS musl is hard-float; Rust's MIPS musl
#      targets are soft-float).
#   3. Fills one flat folder per target, cross/build/TRIPLE/, with what rustc's self-contained
#      musl link looks for through `-L native=`: crt1.o rcrt1.o crti.o crtn.o libc.a, gcc's
#      crtbegin*.o/crtend*.o, and libunwind.a (unwind-stub.c: the release build aborts on
#      panic, so nothing unwinds; see that file for why not gcc's libgcc_eh.a).
#
# Environment: CROSS_DEBIAN_MIRROR (default http://deb.debian.org/debian) for step 2.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=targets.sh source-path=SCRIPTDIR
. "$here/targets.sh"
build="$here/build"
aptdir="$build/apt"
mirror=${CROSS_DEBIAN_MIRROR:-http://deb.debian.org/debian}

targets=$(cross_targets "$@") || exit 2

say() { echo "setup: $*" >&2; }
die() {
    echo "setup: $*" >&2
    exit 1
}

# --- 1. Debian packages -----------------------------------------------------------------

# The toolchain (build.sh calls /usr/bin/cargo and /usr/bin/rustc), qemu for the smoke test,
# file/binutils for check.sh, dpkg-dev for `apt-get source`.
packages="rustc-web cargo-web rust-web-src musl-dev qemu-user-static file binutils dpkg-dev make"
for t in $targets; do
    packages="$packages $(cross_apt "$t")"
done

missing=()
for p in $packages; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "must run as root to install: ${missing[*]}"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The musl-dev that every target's libc matches (the host's, Debian's only one per release).
musl_version=$(dpkg-query -W -f='${Version}' musl-dev)

# --- 2. What the host's apt does not carry ----------------------------------------------

# papt ARGS...: apt-get over the private state in $aptdir: Debian's source index and the
# armhf/arm64 package indexes, downloaded once, beside the system's own apt.
papt() {
    apt-get -q \
        -o Dir::Etc::SourceList="$aptdir/sources.list" \
        -o Dir::Etc::SourceParts="$aptdir/sources.list.d" \
        -o Dir::State::Lists="$aptdir/lists" \
        -o Dir::Cache="$aptdir/cache" \
        -o APT::Architectures::=armhf -o APT::Architectures::=arm64 \
        -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false \
        -o APT::Sandbox::User=root \
        "$@"
}

papt_updated=no
papt_update() {
    [ "$papt_updated" = yes ] && return 0
    local codename
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    mkdir -p "$aptdir/sources.list.d" "$aptdir/lists/partial" "$aptdir/cache/archives/partial"
    cat >"$aptdir/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $codename main
deb [arch=armhf,arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $codename main
EOF
    say "updating the private apt indexes in cross/build/apt ($mirror $codename)"
    papt update -qq >/dev/null
    papt_updated=yes
}

# musl_deb ARCH: Debian's musl-dev for ARCH, unpacked under $build/deb/ARCH unless ARCH is
# the host's; sets $musl_root to the folder holding its usr/.
musl_deb() {
    local arch=$1
    musl_root="$build/deb/$1"
    if [ "$arch" = "$(dpkg --print-architecture)" ]; then
        musl_root=""
        return 0
    fi
    if [ ! -e "$musl_root/.musl-$musl_version" ]; then
        papt_update
        say "downloading musl-dev:$arch $musl_version"
        rm -rf "$musl_root"
        mkdir -p "$musl_root"
        (cd "$musl_root" && papt download -qq "musl-dev:$arch=$musl_version" >/dev/null)
        dpkg -x "$musl_root"/musl-dev_*.deb "$musl_root"
        touch "$musl_root/.musl-$musl_version"
    fi
}

# musl_source: Debian's musl source, unpacked once; sets $musl_src to its directory.
musl_source() {
    local tmp
    musl_src="$build/src/musl-$musl_version"
    if [ ! -x "$musl_src/configure" ]; then
        papt_update
        say "fetching Debian's musl source $musl_version"
        tmp="$build/src/tmp.$$"
        rm -rf "$tmp" "$musl_src"
        mkdir -p "$tmp"
        (cd "$tmp" && papt source -qq "musl=$musl_version" >/dev/null)
        mv "$tmp"/musl-*/ "$musl_src"
        rm -rf "$tmp"
    fi
}

# musl_build TRIPLE MUSL_TARGET: musl built for MUSL_TARGET with the target's flags, out of
# tree; sets $musl_obj to the directory holding lib/.
musl_build() {
    local triple=$1 mt=$2 cflags prefix stamp
    cflags=$(cross_cflags "$triple")
    prefix=$(cross_prefix "$triple")
    musl_obj="$build/musl/$mt"
    stamp="musl $musl_version $mt ${prefix}gcc $cflags"
    if [ "$(cat "$musl_obj/.stamp" 2>/dev/null)" != "$stamp" ]; then
        musl_source
        say "building musl $musl_version for $mt ($cflags)"
        rm -rf "$musl_obj"
        mkdir -p "$musl_obj"
        (
            cd "$musl_obj"
            # CROSS_COMPILE names gcc, ar and ranlib (else musl looks for $mt-ar).
            CROSS_COMPILE=$prefix CFLAGS=$cflags "$musl_src/configure" --target="$mt" \
                --disable-shared --prefix=/nonexistent >configure.log 2>&1 ||
                { cat configure.log >&2; exit 1; }
            make -j"$(nproc)" >make.log 2>&1 || { tail -30 make.log >&2; exit 1; }
        )
        echo "$stamp" >"$musl_obj/.stamp"
    fi
}

# --- 3. One flat folder per target ------------------------------------------------------

# Everything the folder is made from: when any of it changes, the folder is made again.
recipe=$(cat "$here/setup.sh" "$here/targets.sh" "$here/unwind-stub.c" | sha256sum | cut -c1-16)

for t in $targets; do
    dir="$build/$t"
    prefix=$(cross_prefix "$t")
    cc="${prefix}gcc"
    stamp="$recipe musl $musl_version $($cc -dumpfullversion)"
    if [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
        say "$t: ready"
        continue
    fi

    musl=$(cross_musl "$t")
    case "$musl" in
        deb:*)
            IFS=: read -r _ arch libdir <<<"$musl"
            musl_deb "$arch"
            lib="$musl_root/usr/lib/$libdir"
            ;;
        src:*)
            musl_build "$t" "${musl#src:}"
            lib="$musl_obj/lib"
            ;;
        *) die "$t: bad musl source '$musl' in targets.sh" ;;
    esac

    say "$t: filling cross/build/$t"
    rm -rf "$dir.tmp"
    mkdir -p "$dir.tmp"
    for f in crt1.o rcrt1.o Scrt1.o crti.o crtn.o libc.a; do
        [ -e "$lib/$f" ] || die "$t: no $f in $lib"
        cp "$lib/$f" "$dir.tmp/"
    done
    # gcc's own start and end files; rustc names them in its link line.
    for f in crtbegin.o crtbeginS.o crtbeginT.o crtend.o crtendS.o; do
        path=$($cc -print-file-name="$f")
        [ -e "$path" ] || die "$t: $cc has no $f"
        cp "$path" "$dir.tmp/"
    done
    # shellcheck disable=SC2046 # cross_cflags is a word list
    "$cc" $(cross_cflags "$t") -Os -fPIC -ffunction-sections -Wall -Werror \
        -c "$here/unwind-stub.c" -o "$dir.tmp/unwind-stub.o"
    "${prefix}ar" rcs "$dir.tmp/libunwind.a" "$dir.tmp/unwind-stub.o"
    rm "$dir.tmp/unwind-stub.o"
    echo "$stamp" >"$dir.tmp/.stamp"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
done
say "done; now: cross/build.sh TRIPLE (or make cross)"
