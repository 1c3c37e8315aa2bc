# SPDX-License-Identifier: GPL-2.0
#
# rust_binder: build the module, test it in a VM against the C driver.
#
#   make              build rust_binder.ko (sets up the toolchain and test kernel first)
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
# project's test kernel (and `make check` then boots that kernel).

RB_CACHE ?= $(HOME)/.cache/rust_binder
export RB_CACHE

ifeq ($(origin KDIR),undefined)
KDIR := $(RB_CACHE)/build-debug
else
# A user's own tree: setup installs packages and checks the tree, but builds no kernel.
export KDIR
endif

export PATH := $(HOME)/.cargo/bin:$(PATH)
export LIBCLANG_PATH ?= /usr/lib/llvm-19/lib

KMAKE := $(MAKE) -C $(KDIR) M=$(CURDIR) ARCH=x86_64 LLVM=-19

.PHONY: all module setup clippy check bench demo fmt clean

all: module

setup:
	@bash scripts/setup.sh debug

# Warnings are errors: the module must build clean.
module: setup
	+$(KMAKE) W=e modules

clippy: setup
	+$(KMAKE) clean >/dev/null
	+$(KMAKE) W=e CLIPPY=1 modules
	+$(KMAKE) clean >/dev/null

check: setup
	@bash scripts/check.sh

# DRIVER=c tells the same story on the C driver.
demo: module
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
