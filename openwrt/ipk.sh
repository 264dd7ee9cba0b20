#!/bin/sh
# Builds an installable modemd .ipk for an OpenWrt package architecture without the
# OpenWrt SDK: an ar archive of debian-binary, control.tar.gz and data.tar.gz, as
# opkg reads it, from a static cross-built binary plus the procd init script and
# the UCI file.
#
#   openwrt/ipk.sh --triple ARCH          print the Rust target for ARCH
#   openwrt/ipk.sh ARCH BINARY OUTDIR     write OUTDIR/modemd_VERSION_ARCH.ipk
set -eu

version=0.1.0-1

triple_of() {
	case "$1" in
		mipsel_*) echo mipsel-unknown-linux-musl ;;
		mips_*) echo mips-unknown-linux-musl ;;
		arm_*) echo armv7-unknown-linux-musleabihf ;;
		aarch64_*) echo aarch64-unknown-linux-musl ;;
		x86_64) echo x86_64-unknown-linux-musl ;;
		*)
			echo "ipk.sh: no Rust target known for OpenWrt architecture '$1'" >&2
			echo "ipk.sh: known: mipsel_*, mips_*, arm_* (ARMv7 hard-float), aarch64_*, x86_64" >&2
			return 1
			;;
	esac
}

if [ "${1:-}" = --triple ]; then
	triple_of "${2:?usage: ipk.sh --triple ARCH}"
	exit
fi
[ $# -eq 3 ] || { echo "usage: ipk.sh ARCH BINARY OUTDIR" >&2; exit 2; }
arch=$1 binary=$2
out=$(mkdir -p "$3" && cd "$3" && pwd)
triple_of "$arch" >/dev/null
[ -x "$binary" ] || { echo "ipk.sh: $binary: no such executable (make cross first)" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 022

mkdir -p "$work/data/usr/sbin" "$work/data/etc/init.d" "$work/data/etc/config" "$work/control"
install -m 0755 "$binary" "$work/data/usr/sbin/modemd"
install -m 0755 "$here/files/modemd.init" "$work/data/etc/init.d/modemd"
install -m 0644 "$here/files/modemd.config" "$work/data/etc/config/modemd"
size=$(find "$work/data" -type f -exec cat {} + | wc -c)

cat > "$work/control/control" <<CONTROL
Package: modemd
Version: $version
Source: modemd
SourceName: modemd
License: MIT
Section: net
Architecture: $arch
Installed-Size: $size
Maintainer: modemd developers
Description: Share serial modems over TCP. modemd lets hosts on the network use
 the router's serial modems over TCP, with UUCP locks shared with cu, minicom
 and pppd, host lists, pools of modems on one port and a hang-up after every
 session. Static binary: no library dependencies.
CONTROL
echo /etc/config/modemd > "$work/control/conffiles"
# OpenWrt's own package scripts: enable and start the service on install, stop and
# disable it on removal.
cat > "$work/control/postinst" <<'SCRIPT'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_postinst "$0" "$@"
SCRIPT
cat > "$work/control/prerm" <<'SCRIPT'
#!/bin/sh
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_prerm "$0" "$@"
SCRIPT
chmod 0755 "$work/control/postinst" "$work/control/prerm"
printf '2.0\n' > "$work/debian-binary"

# Owned by root, and the same bytes for the same inputs.
stamp=${SOURCE_DATE_EPOCH:-0}
pack() {
	tar --numeric-owner --owner=0 --group=0 --sort=name --mtime="@$stamp" \
		-C "$1" -cf - . | gzip -n9 > "$2"
}
pack "$work/control" "$work/control.tar.gz"
pack "$work/data" "$work/data.tar.gz"

ipk="$out/modemd_${version}_${arch}.ipk"
rm -f "$ipk"
(cd "$work" && ar rcD "$ipk" debian-binary control.tar.gz data.tar.gz)
echo "$ipk"
