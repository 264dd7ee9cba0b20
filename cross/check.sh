#!/usr/bin/env bash
# cross/check.sh [TRIPLE...]: check the cross-built binaries in dist/ (those of the TRIPLEs
# given, else every one of the five that exists). Exits non-zero, naming the binary and the
# failed check, unless each one
#   - is static: `file` says "statically linked" (or "static-pie linked": x86_64 musl links
#     static-pie, which is just as self-contained),
#   - has no INTERP program header (no dynamic loader would be asked for),
#   - for MIPS, has no FPU instruction: the router CPUs (24Kc, 74Kc, 1004Kc) have no FPU and
#     the kernel's FPU emulator may be missing; one coprocessor-1 instruction is a SIGILL;
#   - for mipsel, is at most CROSS_MIPSEL_MAX_BYTES (default 294912, 288 KiB): the size budget of the
#     smallest routers' flash. CROSS_SIZE_REPORT_ONLY=1 prints an overrun without failing,
#     for size experiments; CI enforces the budget.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=targets.sh source-path=SCRIPTDIR
. "$here/targets.sh"
cd "$(dirname "$here")"
mipsel_max=${CROSS_MIPSEL_MAX_BYTES:-294912}

explicit=$#
targets=$(cross_targets "$@") || exit 2
failed=0 checked=0

fail() {
    echo "check: $1: FAIL: $2" >&2
    failed=$((failed + 1))
}

# fpu_lines BINARY OBJDUMP: the disassembly lines that use coprocessor 1 (the FPU): its
# loads/stores/moves (lwc1 sdc1 mtc1 cfc1 …), branches on its condition codes (bc1t, and the
# integer movf/movt that read them), any .s/.d/.ps-format operation (add.s, mov.d, cvt.*, c.*),
# and any FPU register operand (objdump names them f0..f31 and fcc0..fcc7, "$" optional).
fpu_lines() {
    "$2" -d --no-show-raw-insn "$1" | awk -F'\t' '
        NF >= 2 {
            op = $2; args = $3
            if (op ~ /^(l|s)(w|d|u)x?c1$|^m[tf]h?c1$|^[ct]c1$|^bc1|^mov[ft]$|\.(s|d|ps)$|^c\.|^cvt\./ ||
                args ~ /(^|[ ,(])[$]?f(cc)?[0-9]+([,)]|$)/)
                print
        }'
}

for t in $targets; do
    bin="dist/$t/modemd"
    if [ ! -e "$bin" ]; then
        [ "$explicit" -gt 0 ] && fail "$t" "no $bin (run cross/build.sh $t)"
        continue
    fi
    checked=$((checked + 1))
    before=$failed
    bytes=$(stat -c %s "$bin")

    kind=$(file -b "$bin")
    case "$kind" in
        *"statically linked"* | *"static-pie linked"*) ;;
        *) fail "$t" "$bin is not statically linked: file says: $kind" ;;
    esac
    if readelf -lW "$bin" | grep -q '^ *INTERP '; then
        fail "$t" "$bin has an INTERP segment (asks for $(readelf -p .interp "$bin" 2>/dev/null |
            sed -n 's/^ *\[ *0\] *//p'))"
    fi

    extra=""
    case "$t" in
        mips*)
            objdump="$(cross_prefix "$t")objdump"
            command -v "$objdump" >/dev/null || fail "$t" "no $objdump to disassemble with"
            fpu=$(fpu_lines "$bin" "$objdump")
            if [ -n "$fpu" ]; then
                fail "$t" "$bin has $(echo "$fpu" | wc -l) FPU instructions, the first:
$(echo "$fpu" | head -5)"
            fi
            extra=", no FPU instruction"
            ;;
    esac
    if [ "$t" = mipsel-unknown-linux-musl ] && [ "$bytes" -gt "$mipsel_max" ]; then
        over="$bin is $bytes bytes, over the budget of $mipsel_max by $((bytes - mipsel_max))"
        if [ "${CROSS_SIZE_REPORT_ONLY:-0}" = 1 ]; then
            echo "check: $t: OVER BUDGET (reported only): $over" >&2
        else
            fail "$t" "$over"
        fi
    fi
    [ "$failed" -eq "$before" ] && echo "check: $t: ok ($bytes bytes, static, no INTERP$extra)"
done

if [ "$checked" -eq 0 ] && [ "$failed" -eq 0 ]; then
    echo "check: no binary in dist/ to check (run make cross)" >&2
    exit 1
fi
if [ "$failed" -gt 0 ]; then
    echo "check: $failed failed" >&2
    exit 1
fi
