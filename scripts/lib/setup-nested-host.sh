#!/usr/bin/env bash
# Installs what the nested test host (tests/nested) needs, idempotently; run by
# scripts/setup as root with the packages to install from bookworm and from
# bookworm-backports (scripts/setup names them):
#   bash scripts/lib/setup-nested-host.sh --debian kmod --backports qemu-system-x86
# (It runs before setup's own apt-get install, so it installs what it uses itself.)
#
# 1. QEMU from bookworm-backports (QEMU 10): bookworm's QEMU 7.2 hides XSAVE from an L2
#    guest, QEMU 10 exposes it. Backports is added as its own apt source; its Release
#    file is NotAutomatic/ButAutomaticUpgrades, so apt takes from it only what is asked
#    for with `-t bookworm-backports` (and upgrades of that), never anything else.
# 2. L1's kernel: Debian's linux-image-amd64 (the package it depends on), extracted with
#    `apt-get download` + `dpkg-deb -x` into $VMCTL_NESTED_CACHE/kernel/<release>_<version>
#    instead of installed. Installing it would make it a boot kernel of this machine:
#    its hooks would build an initramfs (pulling in initramfs-tools) and write /boot,
#    for a kernel this machine never boots, and its modules would land in /lib/modules
#    where the host's own tools would see them. Extracted, it is inert data keyed by
#    version; `depmod -b` writes its modules.dep as the package's postinst would.
#    `current` is a symlink to the extraction the harness boots.
# 3. The kernel's uncompressed ELF `vmlinux`, taken out of the bzImage (as the kernel's
#    scripts/extract-vmlinux does). QEMU boots it through its PVH entry (Debian builds
#    CONFIG_PVH=y), skipping the decompressor, which under TCG takes ~3 s of every boot.
set -euo pipefail

CACHE=${VMCTL_NESTED_CACHE:-/var/cache/vmctl/nested}
KERNEL_META=linux-image-amd64
BACKPORTS_SOURCES=/etc/apt/sources.list.d/vmctl-bookworm-backports.sources
# Other sessions may hold the dpkg/apt locks; wait for them instead of failing.
APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
export DEBIAN_FRONTEND=noninteractive

debian_packages=()
backports_packages=()
list=
for arg in "$@"; do
  case $arg in
    --debian) list=debian ;;
    --backports) list=backports ;;
    -*) echo "setup-nested-host.sh: unknown option $arg" >&2; exit 2 ;;
    *) [ "$list" = debian ] && debian_packages+=("$arg") || backports_packages+=("$arg") ;;
  esac
done

say() { echo "setup: nested host: $*"; }
die() { echo "setup: nested host: $*" >&2; exit 1; }

has_backports_source() {
  grep -qs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]; }

from_backports() { # PACKAGE: installed, and a backports build (version has ~bpo)
  local status version
  status=$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)
  version=$(dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true)
  [ "$status" = installed ] && [[ "$version" == *~bpo* ]]
}

install_debian() {
  local missing=() pkg
  for pkg in "${debian_packages[@]}"; do
    installed "$pkg" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]}"
  "${APT[@]}" update -qq
  "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "could not install ${missing[*]}"
}

install_backports() {
  local missing=() pkg
  for pkg in "${backports_packages[@]}"; do
    from_backports "$pkg" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "${backports_packages[*]} from bookworm-backports present"
    return
  fi
  if ! has_backports_source; then
    say "adding bookworm-backports as an apt source ($BACKPORTS_SOURCES)"
    cat > "$BACKPORTS_SOURCES" <<'EOF'
# Added by vmctl's scripts/setup for the nested test host (QEMU 10). Backports are
# NotAutomatic: apt installs from here only what `-t bookworm-backports` asks for.
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  say "installing ${missing[*]} from bookworm-backports"
  "${APT[@]}" update -qq
  if ! "${APT[@]}" install -y -qq --no-install-recommends -t bookworm-backports "${missing[@]}" >/dev/null; then
    die "could not install ${missing[*]} from bookworm-backports (see above)"
  fi
}

# Which kernel package linux-image-amd64 stands for, and its candidate version.
kernel_package() {
  apt-cache depends "$KERNEL_META" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

# extract_vmlinux BZIMAGE OUT: Debian compresses x86 kernels with xz (CONFIG_KERNEL_XZ);
# the payload is the first xz stream in the bzImage.
extract_vmlinux() {
  local offset
  offset=$(LC_ALL=C grep -obUaF $'\xfd7zXZ' "$1" | head -n 1 | cut -d: -f1)
  [ -n "$offset" ] || die "no xz-compressed payload in $1"
  # Not a pipe: xz stops at the stream's end, and tail's SIGPIPE would fail pipefail.
  xz -dc --single-stream < <(tail -c +$((offset + 1)) "$1") > "$2.partial" || die "cannot decompress the kernel in $1"
  [ "$(head -c 4 "$2.partial" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || die "the payload of $1 is not an ELF vmlinux"
  mv "$2.partial" "$2"
}

install_kernel() {
  local pkg version release dir tmp deb
  pkg=$(kernel_package)
  if [ -z "$pkg" ]; then
    "${APT[@]}" update -qq
    pkg=$(kernel_package)
  fi
  [ -n "$pkg" ] || die "apt knows no $KERNEL_META (is Debian's main archive an apt source?)"
  version=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2; exit }')
  release=${pkg#linux-image-}
  dir="$CACHE/kernel/${release}_${version}"
  if [ -e "$dir/.complete" ]; then
    say "L1 kernel $release ($version) present ($dir)"
  else
    say "fetching L1 kernel $pkg $version into $dir"
    mkdir -p "$CACHE/kernel"
    tmp=$(mktemp -d "$CACHE/kernel/.partial.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # apt's download sandbox user cannot write into a root-only temp dir.
    if ! (cd "$tmp" && "${APT[@]}" -qq -o APT::Sandbox::User=root download "$pkg=$version"); then
      # Stale package lists can name a version the archive no longer serves: refresh
      # them and take the (possibly newer) candidate.
      say "download failed; refreshing package lists"
      "${APT[@]}" update -qq
      pkg=$(kernel_package)
      version=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2; exit }')
      release=${pkg#linux-image-}
      dir="$CACHE/kernel/${release}_${version}"
      (cd "$tmp" && "${APT[@]}" -qq -o APT::Sandbox::User=root download "$pkg=$version") ||
        die "could not download $pkg $version"
    fi
    deb=$(ls "$tmp"/*.deb)
    dpkg-deb -x "$deb" "$tmp/root"
    rm -f "$deb"
    [ -f "$tmp/root/boot/vmlinuz-$release" ] || die "$pkg has no /boot/vmlinuz-$release"
    command -v depmod >/dev/null || die "depmod (package kmod) is missing"
    depmod -b "$tmp/root" "$release"
    [ -s "$tmp/root/lib/modules/$release/modules.dep" ] || die "depmod wrote no modules.dep for $release"
    rm -rf "$dir"
    mv "$tmp/root" "$dir"
    rmdir "$tmp"
    trap - EXIT
    touch "$dir/.complete"
  fi
  [ -s "$dir/vmlinux" ] || extract_vmlinux "$dir/boot/vmlinuz-$release" "$dir/vmlinux"
  # Point `current` at it atomically, then drop older extractions (~400 MB each).
  ln -sfn "$(basename "$dir")" "$CACHE/kernel/.current.new"
  mv -T "$CACHE/kernel/.current.new" "$CACHE/kernel/current"
  local other
  for other in "$CACHE"/kernel/*_*; do
    [ "$other" = "$dir" ] || rm -rf "$other"
  done
}

install_debian
install_backports
install_kernel
