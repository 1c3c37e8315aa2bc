# SPDX-License-Identifier: GPL-2.0
#
# rust_binder: build the module, test it in a VM against the C driver.
#
#   make              build rust_binder.ko (sets up the toolchain and test kernel first;
#                     with KDIR=, only builds: no package installed, no root needed)
#   make check        the test suite: both drivers, in QEMU, plus the kernel log checks
#   make demo         the demo in QEMU on rust_binder: service manager, service, client
#                     (DRIVER=c: on the C driver)
#   make bench        rust_binder against the C driver, on a non-debug kernel (not a test)
#   make stress       binder-stress on both drivers in QEMU: processes and threads, kills,
#                     every reply checked, a watchdog on every call (STRESS_SECONDS=180,
#                     DRIVER=c|rust|both, STRESS_SEED=)
#   make clippy       build with Clippy (the build that `make check` also runs)
#   make fmt          format the Rust code (module and tests) with rustfmt
#   make setup        install the toolchain and build the test kernel
#   make clean
#
#   make install         (as root) build for the running kernel, or KDIR's, install it into
#                        that kernel's module tree (updates/), run depmod, and install the udev
#                        rule that opens the binder devices to all users
#   make install-compat  (as root, optional) make `modprobe binder_linux` load rust_binder
#   make uninstall       (as root) undo both
#
# KDIR=<dir> builds against your own built Rust-enabled 7.3 kernel tree instead of the
# project's test kernel (and `make check` then boots that kernel). Only the targets that boot
# a kernel (check, demo, bench) and setup itself install packages; `make` and `make clippy`
# with KDIR= just build. The install targets never install packages; DESTDIR=<dir> stages
# what they install under <dir> (INSTALL_MOD_PATH, for the module alone, defaults to it).

RB_CACHE ?= $(HOME)/.cache/rust_binder
export RB_CACHE

ifeq ($(strip $(KDIR)),)
# No KDIR (or an empty one): the project's debug test kernel, which setup builds. The scripts
# read an exported KDIR as "the user's tree", so this one stays out of their environment.
override KDIR := $(RB_CACHE)/build-debug
unexport KDIR
KERNEL_READY := setup
# `make install` is for the machine it runs on: the running kernel's build tree.
INSTALL_RELEASE := $(shell uname -r)
INSTALL_KDIR := /lib/modules/$(INSTALL_RELEASE)/build
else
# A user's own tree: the module builds against it as it is. setup (for check, demo, bench)
# installs packages and checks the tree, but builds no kernel.
export KDIR
KERNEL_READY := kdir-check
INSTALL_KDIR := $(KDIR)
INSTALL_RELEASE = $(shell cat "$(KDIR)/include/config/kernel.release" 2>/dev/null)
endif

export PATH := $(HOME)/.cargo/bin:$(PATH)
export LIBCLANG_PATH ?= /usr/lib/llvm-19/lib

KMAKE := $(MAKE) -C $(KDIR) M=$(CURDIR) ARCH=x86_64 LLVM=-19

# Where the install targets put things; DESTDIR stages them elsewhere (the tests do).
INSTALL_MOD_PATH ?= $(DESTDIR)
UDEV_RULES := $(DESTDIR)/etc/udev/rules.d/60-rust-binder.rules
MODPROBE_COMPAT := $(DESTDIR)/etc/modprobe.d/rust_binder-binder_linux.conf
# depmod and udevadm live in sbin, which a user's PATH may lack.
SBIN_PATH := PATH="$$PATH:/usr/sbin:/sbin"

.PHONY: all module setup setup-check kdir-check clippy check bench demo stress fmt clean
.PHONY: install install-kdir-check install-compat uninstall dkms-build

all: module

setup:
	@bash scripts/setup.sh debug

# make check also needs dkms and kmod, for its install and DKMS tests.
setup-check:
	@bash scripts/setup.sh debug check

# A user's tree must be built with Rust: the module links against its Module.symvers and its
# Rust crates, with its rustc and clang. Without them kbuild fails obscurely, so
# scripts/kdir-check.sh says plainly what is missing.
kdir-check:
	@bash scripts/kdir-check.sh "$(KDIR)"

# Warnings are errors: the module must build clean.
module: $(KERNEL_READY)
	+$(KMAKE) W=e modules

clippy: $(KERNEL_READY)
	+$(KMAKE) clean >/dev/null
	+$(KMAKE) W=e CLIPPY=1 modules
	+$(KMAKE) clean >/dev/null

check: setup-check
	@bash scripts/check.sh

# DRIVER=c tells the same story on the C driver. It boots a kernel, so it needs setup's
# packages (QEMU) even with KDIR=.
demo: setup module
	@bash scripts/demo.sh

# Boots the debug kernel once per driver (DRIVER=c|rust|both); scripts/stress.sh builds the
# module and binder-stress itself.
stress: setup
	@bash scripts/stress.sh

# Builds its own kernel variant and its own rust_binder.ko for it; see scripts/bench.sh.
bench:
	@bash scripts/bench.sh

# make install: builds for INSTALL_KDIR's kernel (without -Werror: a new warning must not stop
# an install), then kbuild's modules_install puts rust_binder.ko in that kernel's
# /lib/modules/RELEASE/updates/. kbuild runs depmod only when the tree has a System.map (and
# finds depmod), so this runs it again, always.
install: install-kdir-check
	+$(MAKE) -C "$(INSTALL_KDIR)" M=$(CURDIR) ARCH=x86_64 LLVM=-19 modules
	+$(MAKE) -C "$(INSTALL_KDIR)" M=$(CURDIR) ARCH=x86_64 LLVM=-19 \
		INSTALL_MOD_PATH="$(INSTALL_MOD_PATH)" modules_install
	$(SBIN_PATH) depmod $(if $(INSTALL_MOD_PATH),-b "$(INSTALL_MOD_PATH)") -a "$(INSTALL_RELEASE)"
	install -D -m 0644 install/60-rust-binder.rules "$(UDEV_RULES)"
	@if [ -z "$(DESTDIR)" ]; then $(SBIN_PATH) udevadm control --reload 2>/dev/null || true; fi

install-kdir-check:
	@bash scripts/kdir-check.sh "$(INSTALL_KDIR)"

# Optional: `modprobe binder_linux ...` (what Waydroid and others run) loads rust_binder.
install-compat:
	install -D -m 0644 install/rust_binder-binder_linux.conf "$(MODPROBE_COMPAT)"

# Undoes install and install-compat for INSTALL_KDIR's kernel. A loaded module stays loaded,
# and a copy DKMS installed is DKMS's to remove (dkms remove).
uninstall:
	@[ -n "$(INSTALL_RELEASE)" ] || \
		{ echo "make: no kernel release in $(KDIR)/include/config/kernel.release" >&2; exit 1; }
	rm -f "$(INSTALL_MOD_PATH)/lib/modules/$(INSTALL_RELEASE)/updates/rust_binder.ko"*
	-rmdir --ignore-fail-on-non-empty "$(INSTALL_MOD_PATH)/lib/modules/$(INSTALL_RELEASE)/updates"
	if [ -d "$(INSTALL_MOD_PATH)/lib/modules/$(INSTALL_RELEASE)" ]; then \
		$(SBIN_PATH) depmod $(if $(INSTALL_MOD_PATH),-b "$(INSTALL_MOD_PATH)") -a "$(INSTALL_RELEASE)"; fi
	rm -f "$(UDEV_RULES)" "$(MODPROBE_COMPAT)"
	@if [ -z "$(DESTDIR)" ]; then $(SBIN_PATH) udevadm control --reload 2>/dev/null || true; fi

# DKMS's build command (dkms.conf): KDIR is the kernel dkms builds for. For a kernel built
# with clang and lld, dkms appends CC=clang LD=ld.lld to this command; the kernel's tools are
# clang-19 and ld.lld-19, which are restated here, since an explicit sub-make argument wins.
dkms-build: kdir-check
	+$(KMAKE) CC=clang-19 LD=ld.lld-19 modules

fmt:
	rustfmt --edition 2021 binder.rs tests/leak-selftest/rb_leak_selftest.rs
	cd tests && cargo fmt

clean:
	-+$(KMAKE) clean
	rm -rf tests/target
