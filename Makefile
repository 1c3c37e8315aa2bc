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
#   make clippy       build with Clippy (the build that `make check` also runs)
#   make fmt          format the Rust code (module and tests) with rustfmt
#   make setup        install the toolchain and build the test kernel
#   make clean
#
# KDIR=<dir> builds against your own built Rust-enabled 7.3 kernel tree instead of the
# project's test kernel (and `make check` then boots that kernel). Only the targets that boot
# a kernel (check, demo, bench) and setup itself install packages; `make` and `make clippy`
# with KDIR= just build.

RB_CACHE ?= $(HOME)/.cache/rust_binder
export RB_CACHE

ifeq ($(strip $(KDIR)),)
# No KDIR (or an empty one): the project's debug test kernel, which setup builds. The scripts
# read an exported KDIR as "the user's tree", so this one stays out of their environment.
override KDIR := $(RB_CACHE)/build-debug
unexport KDIR
KERNEL_READY := setup
else
# A user's own tree: the module builds against it as it is. setup (for check, demo, bench)
# installs packages and checks the tree, but builds no kernel.
export KDIR
KERNEL_READY := kdir-check
endif

export PATH := $(HOME)/.cargo/bin:$(PATH)
export LIBCLANG_PATH ?= /usr/lib/llvm-19/lib

KMAKE := $(MAKE) -C $(KDIR) M=$(CURDIR) ARCH=x86_64 LLVM=-19

.PHONY: all module setup kdir-check clippy check bench demo fmt clean

all: module

setup:
	@bash scripts/setup.sh debug

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

check: setup
	@bash scripts/check.sh

# DRIVER=c tells the same story on the C driver. It boots a kernel, so it needs setup's
# packages (QEMU) even with KDIR=.
demo: setup module
	@bash scripts/demo.sh

# Builds its own kernel variant and its own rust_binder.ko for it; see scripts/bench.sh.
bench:
	@bash scripts/bench.sh

fmt:
	rustfmt --edition 2021 rust_binder.rs tests/leak-selftest/rb_leak_selftest.rs
	cd tests && cargo fmt

clean:
	-+$(KMAKE) clean
	rm -rf tests/target
