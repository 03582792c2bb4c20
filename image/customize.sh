#!/bin/bash
# mmdebstrap customize hook (image/build.sh): pxed into a venv, the unit enabled, Debian's
# loaders into /srv/tftp, the image's own files, and what a read-only root needs.
set -euo pipefail
root=$1
# A clean environment: the build machine's PIP_* and friends mean nothing inside the image.
in_root() { env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 chroot "$root" "$@"; }

# Kernel modules an appliance serving PXE never loads (sound, graphics, video capture,
# radios): about half of Debian's 400 MB kernel package, and the image has to fit 600 MiB.
modules=$(echo "$root"/usr/lib/modules/*)
for unused in sound drivers/gpu drivers/media drivers/staging drivers/infiniband \
	drivers/net/wireless drivers/bluetooth drivers/iio drivers/isdn drivers/input/touchscreen \
	net/wireless net/mac80211 net/bluetooth; do
	rm -rf "$modules/kernel/$unused"
done
# Filesystems a PXE server never mounts (ext4, vfat, isofs, udf, fuse, overlay stay).
for unused in btrfs xfs gfs2 ocfs2 nfs nfsd smb ceph f2fs jfs reiserfs nilfs2 ubifs dlm; do
	rm -rf "$modules/kernel/fs/$unused"
done
# xz-compressed modules (kmod reads them): a quarter of the size.
find "$modules" -name '*.ko' -print0 | xargs -0 -n 64 -P "$(nproc)" xz --check=crc32
in_root depmod -a "$(basename "$modules")"
in_root update-initramfs -u -k all

# pxed and its dependencies from the wheels of this checkout, no index.
cp -r "$PXED_IMAGE_WHEELS" "$root/tmp/wheels"
in_root python3 -m venv /opt/pxed
in_root /opt/pxed/bin/pip install --quiet --no-cache-dir --no-index --find-links /tmp/wheels pxed
rm -rf "$root/tmp/wheels"
# Nothing installs into a read-only venv: pip and setuptools would only take room.
in_root /opt/pxed/bin/pip uninstall --quiet --yes pip setuptools
in_root /opt/pxed/bin/twistd --help > /dev/null  # writes twisted/plugins/dropin.cache now: / is read-only later
ln -s /opt/pxed/bin/twistd "$root/usr/bin/twistd"
ln -s /opt/pxed/bin/pxed "$root/usr/bin/pxed"
install -m 644 "$root/opt/pxed/share/pxed/systemd/pxed.service" "$root/usr/lib/systemd/system/"
in_root useradd --system --home-dir /var/lib/pxed --no-create-home --shell /usr/sbin/nologin pxed
# StateDirectory= and ConfigurationDirectory= exist already with their owners, so systemd
# has nothing to create or chown on the read-only root when no data disk is mounted.
install -d -o 0 -g 0 "$root/etc/pxed"
in_root install -d -o pxed -g pxed /var/lib/pxed

# The boot loaders pxed's defaults name (dhcp.boot), and the rest a site may choose.
tftp=$root/srv/tftp
install -d "$tftp/pxelinux.cfg"
cp "$root"/usr/lib/PXELINUX/{pxelinux.0,lpxelinux.0} "$tftp/"
cp "$root"/usr/lib/syslinux/modules/bios/{ldlinux.c32,libcom32.c32,libutil.c32,menu.c32,chain.c32} "$tftp/"
cp "$root/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi" "$root/usr/lib/syslinux/modules/efi64/ldlinux.e64" "$tftp/"
cp "$root"/usr/lib/ipxe/{undionly.kpxe,snponly.efi} "$root/boot/ipxe.efi" "$tftp/"
# shim loads grubx64.efi from its own directory: the signed netboot GRUB under that name.
cp "$root/usr/lib/shim/shimx64.efi.signed" "$tftp/shimx64.efi"
cp "$root/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed" "$tftp/grubx64.efi"

cp -r --no-preserve=ownership "$PXED_IMAGE_FILES"/. "$root"/
in_root systemctl enable systemd-networkd systemd-networkd-wait-online pxed pxed-data
# Jobs with nothing to do on a read-only root (scrubbing, trimming, apt's daily runs), and
# the gettys on tty2-6: under QEMU without KVM they cost pxed 10-20 s of its one CPU at boot.
in_root systemctl mask e2scrub_reap.service e2scrub_all.timer fstrim.timer \
	apt-daily.timer apt-daily-upgrade.timer getty-static.service
# Maintenance: root logs in on the console without a password; there is no SSH server.
in_root passwd --quiet --delete root
echo pxed > "$root/etc/hostname"
# Empty: systemd makes a machine ID at each boot and keeps it in memory (read-only root).
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
