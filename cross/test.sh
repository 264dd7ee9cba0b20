#!/usr/bin/env bash
# cross/test.sh [TRIPLE...]: the integration tests (tests/*.rs) against each cross-built
# dist/TRIPLE/modemd, run under its qemu-user (the MIPS ones on an FPU-less 24Kc), through
# the MODEMD_BIN and MODEMD_LAUNCHER variables the tests read. Without arguments: every
# target that has a binary in dist/. The tests themselves are built for the host.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=targets.sh source-path=SCRIPTDIR
. "$here/targets.sh"
top=$(dirname "$here")

if [ $# -gt 0 ]; then
    targets="$*"
else
    targets=""
    for t in $CROSS_ALL_TARGETS; do
        [ -x "$top/dist/$t/modemd" ] && targets="$targets $t"
    done
fi
[ -n "$targets" ] || { echo "test: no cross binary in dist/ (make cross first)" >&2; exit 1; }

for t in $targets; do
    cross_known "$t" || { echo "test: unknown target '$t'" >&2; exit 2; }
    bin="$top/dist/$t/modemd"
    [ -x "$bin" ] || { echo "test: $t: no $bin (make cross first)" >&2; exit 1; }
    launcher=$(cross_qemu "$t")
    case "$t" in
        mips*) launcher="$launcher -cpu 24Kc" ;;
    esac
    echo "test: $t under $launcher"
    (cd "$top" && MODEMD_BIN="$bin" MODEMD_LAUNCHER="$launcher" cargo test --tests)
done
