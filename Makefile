# pxed: `make demo` (the main job) and `make test`, each doing all set-up on a
# fresh Debian machine as root.  Debian packages are installed once (stamp file).

VENV      ?= .venv
PY        := $(VENV)/bin/python
STAMPS    := $(VENV)/.stamps
DEBIAN_PACKAGES := python3-venv iproute2 nftables tcpdump tshark curl wget debconf tftp-hpa \
	systemd busybox-static isc-dhcp-client dnsmasq-base tftpd-hpa kea-admin atftp xorriso nginx-light wrk kea-dhcp4-server kea-dhcp6-server \
	qemu-system-x86 ipxe-qemu pxelinux syslinux-common syslinux-efi ovmf chromium \
	shim-signed grub-efi-amd64-signed postgresql qemu-system-arm qemu-efi-aarch64 \
	radvd ipxe
# The Hypothesis fuzz tests run this many examples per grammar.
PXED_FUZZ_EXAMPLES ?= 20000
export PXED_FUZZ_EXAMPLES

# `make install-test` only: Debian's netboot installer, and the tools that build its mirror.
INSTALL_TEST_PACKAGES := debian-installer-12-netboot-amd64 dpkg-dev
# Wall-clock budget of `make install-test` (the install runs under TCG), printed up front.
INSTALL_TEST_BUDGET_MIN ?= 120

.PHONY: test lint unit demo debs venv bench fuzz clean install-test install-test-debs \
	image image-test

test: venv debs lint
	$(PY) -bb -m pytest

unit: venv
	$(PY) -bb -m pytest -m "not interop and not netns and not e2e"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

demo: venv debs
	$(PY) -m lab.demo $(if $(UEFI),--uefi)

venv: $(STAMPS)/venv
debs: $(STAMPS)/debs

$(STAMPS)/debs:
	@# policy-rc.d 101 stops the packages' own services (tftpd-hpa, nginx, kea, PostgreSQL's
	@# main cluster) from starting in the root namespace: tests and benchmarks start their
	@# own, by PID (tests/support/postgres.py runs initdb into a temporary folder).
	@if [ "$$(id -u)" = 0 ]; then \
		made_policy=; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1; \
		fi; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(DEBIAN_PACKAGES); \
		status=$$?; [ -n "$$made_policy" ] && rm -f /usr/sbin/policy-rc.d; [ $$status = 0 ] || exit $$status; \
	else \
		echo "not root: skipping Debian packages; tests that need them will skip"; \
	fi
	@mkdir -p $(STAMPS) && touch $@

# Debian's own netboot installer installs a VM from pxed, then the VM boots its disk
# (tests marked `install`, which `make test` deselects). Tens of minutes under TCG.
install-test: venv debs install-test-debs
	@echo "install-test: budget $(INSTALL_TEST_BUDGET_MIN) min (1 vCPU under TCG); started $$(date -u +%H:%M:%S) UTC"
	@start=$$(date +%s); \
	timeout $$(( $(INSTALL_TEST_BUDGET_MIN) * 60 )) $(PY) -bb -m pytest -m install -v tests/e2e/test_debian_installer.py; \
	status=$$?; echo "install-test: $$(( ($$(date +%s) - start) / 60 )) min $$(( ($$(date +%s) - start) % 60 )) s, status $$status"; \
	exit $$status

install-test-debs: $(STAMPS)/install-test-debs

$(STAMPS)/install-test-debs:
	@if [ "$$(id -u)" = 0 ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(INSTALL_TEST_PACKAGES); \
	else \
		echo "not root: skipping $(INSTALL_TEST_PACKAGES); the install test will skip"; \
	fi
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/venv: setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# compat mode puts the checkout on sys.path, so twistd finds twisted/plugins/.
	$(PY) -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	@mkdir -p $(STAMPS) && touch $@

bench: venv debs
	$(PY) benchmarks/codec.py
	$(PY) benchmarks/http_trees.py
	$(PY) benchmarks/dhcp.py
	$(PY) benchmarks/dhcp6.py
	$(PY) benchmarks/tftp_loss.py
	$(PY) benchmarks/storm.py
	$(PY) benchmarks/storm.py --relayed --clients 50

# A million hostile datagrams at each of pxed's UDP ports, with memory and /healthz latency
# recorded (root: DHCP binds lo). tests/interop/test_udp_fuzz.py runs 20,000 a port.
fuzz: venv debs
	$(PY) -m lab.udpfuzz --count 1000000

# The appliance image (image/build.sh): Debian 12 with pxed from this checkout's wheel.
# Its own Debian packages (mmdebstrap, syslinux, mtools, ...) are installed here, not by
# `make debs`; .debs and wheels are kept in IMAGE_CACHE, outside the checkout.
IMAGE       ?= build/image/pxed-appliance.img
IMAGE_CACHE ?= /var/cache/pxed-image
IMAGE_DEBIAN_PACKAGES := mmdebstrap syslinux syslinux-common mtools dosfstools e2fsprogs fdisk

image: venv $(STAMPS)/image-debs
	image/build.sh $(IMAGE) $(IMAGE_CACHE) $(PY)

$(STAMPS)/image-debs:
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(IMAGE_DEBIAN_PACKAGES)
	@mkdir -p $(STAMPS) && touch $@

# Boots $(IMAGE) in QEMU on a lab bridge with a data disk and checks it serves; not part
# of `make test` (it needs the image and minutes of TCG).
image-test: venv debs
	PXED_IMAGE=$(IMAGE) $(PY) -bb -m pytest -s tests/image -m image

clean:
	rm -rf $(VENV) build dist *.egg-info
