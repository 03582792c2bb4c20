#!/bin/bash
# image/assemble.sh ROOTFS DISK: the mmdebstrap tree as a bootable raw disk (image/build.sh).
# SYSLINUX goes onto a FAT partition with mtools, the root tree into ext4 with
# `mkfs.ext4 -d`: no mount, no loop device, so it builds in a container as well.
set -euo pipefail
rootfs=$1
disk=$2
here=$(cd "$(dirname "$0")" && pwd)
boot=$disk.boot
root=$disk.root
boot_mib=64

mkfs.vfat -C -n PXEDBOOT "$boot" $((boot_mib * 1024)) > /dev/null
mmd -i "$boot" ::/syslinux
syslinux --install --directory /syslinux "$boot"
mcopy -i "$boot" "$here/syslinux.cfg" ::/syslinux/syslinux.cfg
mcopy -i "$boot" "$(ls "$rootfs"/boot/vmlinuz-*)" ::/vmlinuz
mcopy -i "$boot" "$(ls "$rootfs"/boot/initrd.img-*)" ::/initrd.img
rm -f "$rootfs"/boot/vmlinuz-* "$rootfs"/boot/initrd.img-*  # the boot partition has them

# The tree in whole blocks plus a tenth for ext4's own structures. No reserved blocks:
# nobody writes a read-only root.
used=$(du -s --block-size=1M "$rootfs" | cut -f1)
root_mib=$((used + used / 10 + 32))
mkfs.ext4 -q -F -L pxed-root -m 0 -J size=8 -d "$rootfs" "$root" "${root_mib}M"

truncate -s $((1 + boot_mib + root_mib))M "$disk"
sfdisk --quiet "$disk" <<PARTITIONS
label: dos
start=1MiB, size=${boot_mib}MiB, type=c, bootable
start=$((1 + boot_mib))MiB, type=83
PARTITIONS
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$boot" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$root" of="$disk" bs=1M seek=$((1 + boot_mib)) conv=notrunc,sparse status=none
rm -f "$boot" "$root"
