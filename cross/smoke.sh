#!/usr/bin/env bash
# cross/smoke.sh [TRIPLE...]: run each cross-built modemd in dist/ (of the TRIPLEs given, else
# every one of the five that exists) under its qemu-user with -V, and expect the version line
# "modemd VERSION" of Cargo.toml. The MIPS binaries run a second time on a 24Kc, a MIPS32r2
# core without FPU like the routers': any FPU instruction left in them is a SIGILL there.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=targets.sh source-path=SCRIPTDIR
. "$here/targets.sh"
cd "$(dirname "$here")"

explicit=$#
targets=$(cross_targets "$@") || exit 2
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
expected="modemd $version"
failed=0 ran=0

# smoke TRIPLE QEMU [ARGS...]: one run; prints the verdict.
smoke() {
    local t=$1 out rc=0
    shift
    out=$("$@" "dist/$t/modemd" -V 2>&1) || rc=$?
    if [ "$rc" -eq 0 ] && [ "$out" = "$expected" ]; then
        echo "smoke: $t: ok: $* -> $out"
    else
        echo "smoke: $t: FAIL: $* dist/$t/modemd -V: exit $rc, printed '$out' (expected '$expected')" >&2
        failed=$((failed + 1))
    fi
}

for t in $targets; do
    if [ ! -e "dist/$t/modemd" ]; then
        if [ "$explicit" -gt 0 ]; then
            echo "smoke: $t: FAIL: no dist/$t/modemd (run cross/build.sh $t)" >&2
            failed=$((failed + 1))
        fi
        continue
    fi
    qemu=$(cross_qemu "$t")
    if ! command -v "$qemu" >/dev/null; then
        echo "smoke: $t: FAIL: no $qemu (run cross/setup.sh)" >&2
        failed=$((failed + 1))
        continue
    fi
    ran=$((ran + 1))
    smoke "$t" "$qemu"
    case "$t" in
        mips*) smoke "$t" "$qemu" -cpu 24Kc ;;
    esac
done

if [ "$ran" -eq 0 ] && [ "$failed" -eq 0 ]; then
    echo "smoke: no binary in dist/ to run (run make cross)" >&2
    exit 1
fi
[ "$failed" -eq 0 ] || {
    echo "smoke: $failed failed" >&2
    exit 1
}
