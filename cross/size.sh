#!/usr/bin/env bash
# cross/size.sh: the sizes of the cross-built binaries in dist/, as a Markdown table.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=targets.sh source-path=SCRIPTDIR
. "$here/targets.sh"
cd "$(dirname "$here")"

echo "| target | bytes | KiB |"
echo "| --- | ---: | ---: |"
for t in $CROSS_ALL_TARGETS; do
    bin="dist/$t/modemd"
    [ -e "$bin" ] || continue
    bytes=$(stat -c %s "$bin")
    # KiB with one decimal, in integer shell arithmetic (rounded half up).
    tenths=$(((bytes * 10 + 512) / 1024))
    echo "| $t | $bytes | $((tenths / 10)).$((tenths % 10)) |"
done
