#!/bin/bash
# `make image`: a bootable Debian 12 disk image running pxed, built with mmdebstrap.
#
#   image/build.sh OUTPUT CACHE PYTHON
#
# OUTPUT is the raw disk image; CACHE (outside the checkout) keeps the .debs and wheels
# between builds; PYTHON runs pip (the project's venv, which knows the package index).
# Layout of the disk (MBR, BIOS boot): partition 1 is a small FAT filesystem with
# SYSLINUX, the kernel and the initrd (SYSLINUX installs into FAT with mtools, so nothing
# is mounted and no loop device is needed); partition 2 is the root filesystem, ext4
# labelled pxed-root, made from the mmdebstrap tree with `mkfs.ext4 -d`, mounted
# read-only. Configuration and state live on a separate disk labelled pxed-data.
set -euo pipefail

out=$(realpath -m "$1")
cache=$(realpath -m "$2")
python=$3
here=$(cd "$(dirname "$0")" && pwd)
checkout=$(dirname "$here")
work=$(mktemp -d "${TMPDIR:-/var/tmp}/pxed-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

mkdir -p "$cache/debs" "$cache/wheels" "$(dirname "$out")"

# pxed's wheel from this checkout and every dependency as a wheel: installed into a venv
# inside the image without an index. A stale pxed wheel of an older checkout goes first.
rm -f "$cache"/wheels/pxed-*.whl
"$python" -m pip wheel --quiet --wheel-dir "$cache/wheels" "$checkout"

export PXED_IMAGE_FILES="$here/rootfs" PXED_IMAGE_WHEELS="$cache/wheels"
mmdebstrap --variant=minbase --mode=root \
	--include="$(grep -v '^#' "$here/packages" | xargs | tr ' ' ,)" \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--aptopt='APT::Install-Recommends "false"' \
	--skip=essential/unlink \
	--setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
	--setup-hook="sync-in $cache/debs /var/cache/apt/archives" \
	--essential-hook="$here/essential.sh" \
	--customize-hook="sync-out /var/cache/apt/archives $cache/debs" \
	--customize-hook="$here/customize.sh" \
	bookworm "$work/rootfs" \
	"deb http://deb.debian.org/debian bookworm main" \
	"deb http://deb.debian.org/debian bookworm-updates main" \
	"deb http://deb.debian.org/debian-security bookworm-security main"

"$here/assemble.sh" "$work/rootfs" "$work/disk.img"
mv "$work/disk.img" "$out"
echo "$out: $(du -m --apparent-size "$out" | cut -f1) MiB"
