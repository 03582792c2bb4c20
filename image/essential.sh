#!/bin/bash
# mmdebstrap essential hook: settings the kernel's postinst must already see when it
# builds the initrd (image/build.sh). gzip: decompresses fastest of what initramfs-tools
# offers without an extra package, and QEMU without KVM feels every second of it.
set -euo pipefail
mkdir -p "$1/etc/initramfs-tools/conf.d"
printf 'COMPRESS=gzip\n' > "$1/etc/initramfs-tools/conf.d/pxed-appliance"
