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
"$cc" -static -O2 -pthread -w -isystem "$headers" -I "$selftests" -o "$out" "$src"
