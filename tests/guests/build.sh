#!/usr/bin/env bash
# Builds the vmctl test guests (see ABI.md):
#   $VMCTL_GUEST_OUT/vmctl-test-guest.elf  every tests/*.c in one ELF; vmctl.test=NAME picks
#   $VMCTL_GUEST_OUT/vmctl-test-guest.bzImage  the same guest as a bzImage (boot protocol 2.12)
#   $VMCTL_GUEST_OUT/not-elf.bin           a non-kernel file for bad-input tests
# VMCTL_GUEST_OUT defaults to <repo>/target/guests. Incremental (make): a second run
# with nothing changed does no work.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${VMCTL_GUEST_OUT:-$repo/target/guests}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
command -v "${CC:-gcc}" >/dev/null || { echo "build.sh: ${CC:-gcc} not found (apt-get install build-essential)" >&2; exit 1; }
command -v make >/dev/null || { echo "build.sh: make not found (apt-get install build-essential)" >&2; exit 1; }
command -v "${OBJCOPY:-objcopy}" >/dev/null || { echo "build.sh: ${OBJCOPY:-objcopy} not found (apt-get install binutils)" >&2; exit 1; }
command -v "${PYTHON:-python3}" >/dev/null || { echo "build.sh: ${PYTHON:-python3} not found (apt-get install python3)" >&2; exit 1; }
exec make -s -C "$here" OUT="$out" -j2
