#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the kernel's binderfs selftest (tools/testing/selftests/filesystems/binderfs/
# binderfs_test.c, from the kernel source the test kernel is built from) as a static binary
# for the test VM, where scripts/vm/binderfs-selftest.sh runs it.
#
#   scripts/build-binderfs-selftest.sh [OUT]     (default: tests/target/binderfs_test)
#
# It is compiled straight from the kernel tree, with its own kselftest_harness.h and the test
# kernel's installed uapi headers (linux/android/binderfs.h), by clang-19 (which setup
# installs; CC= chooses another compiler) against the host's static C library.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/.." && pwd)
. "$here/lib.sh"

out=${1:-$top/tests/target/binderfs_test}
selftests=$KSRC/tools/testing/selftests
src=$selftests/filesystems/binderfs/binderfs_test.c
headers=$(kernel_out debug)/usr/include
cc=${CC:-clang-19}
for f in "$src" "$selftests/kselftest_harness.h" "$headers/linux/android/binderfs.h"; do
    [ -f "$f" ] || { echo "build-binderfs-selftest: missing $f (run make setup)" >&2; exit 1; }
done
mkdir -p "$(dirname "$out")"
# The harness gives each case 30 s of wall-clock time, a limit made for real machines. In the
# test VM (TCG, with KASAN, lockdep and kmemleak) binderfs_stress takes 17-22 s on the C driver
# and 24-28 s on rust_binder, so that limit failed the case at random (it did once in CI on
# rust_binder); the suite asserts no timings, speed is `make bench`'s. So the source is
# compiled after the harness, with the harness's limit raised to 300 s in between (the
# harness's include guard keeps the source's own include from undoing it);
# binderfs-selftest.sh prints the time each case took.
wrapper=$(mktemp --suffix=.c)
trap 'rm -f "$wrapper"' EXIT
cat >"$wrapper" <<EOF
#define _GNU_SOURCE
#include "kselftest_harness.h"
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT 300
#include "$src"
EOF
"$cc" -static -O2 -pthread -w -isystem "$headers" -I "$selftests" -o "$out" "$wrapper"
