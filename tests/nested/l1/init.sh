#!/bin/busybox sh
# /init of the nested test host's L1 (packed into its initramfs by initramfs.ts).
#
# Loads the modules listed in /etc/l1-modules (already in dependency order), mounts the
# host's root read-only over 9p with a tmpfs overlay on top, mounts the writable "io"
# share at /run/vmctl-l1 inside that root, chroots in to run /run/vmctl-l1/command.sh
# with stdout/stderr into files on the io share, writes the exit status next to them
# and powers off. Lines starting "vmctl-l1:" on the console are read by the harness
# (run-in-l1.ts): keep their wording in step with it.
#
# Kernel command-line words without a dot reach init as environment variables:
#   vmctl_moddir  host path of the L1 kernel's lib/modules (bound over /lib/modules in
#                 the chroot so `modprobe` works there too)
#   vmctl_shares  extra writable shares, "TAG:PATH,TAG:PATH", mounted at PATH

/bin/busybox mkdir -p /proc /sys /dev /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t devtmpfs devtmpfs /dev
# The initramfs has no /dev/console node, so the kernel gave init no stdio; take the
# console now that devtmpfs provides it.
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

say() { echo "vmctl-l1: $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
fatal() {
  say "FATAL: $*"
  poweroff -f
  sleep 5
  exit 1
}

say "init start uptime=$(uptime_s)"

while read -r module params; do
  [ -n "$module" ] || continue
  # shellcheck disable=SC2086 # params are word-split on purpose (name=value ...)
  insmod "/modules/$module" $params || fatal "insmod $module $params failed"
done < /etc/l1-modules

mkdir -p /lower /upper /newroot
# cache=loose lets L1 keep the host's files in its page cache: Node reads hundreds of
# small module files, each a 9p round trip otherwise (an L1 lives seconds; the host's
# tree does not change under it in a way a test relies on). The writable shares below
# stay uncached, so what L1 writes is on the host at once.
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144,cache=loose hostroot /lower ||
  fatal "cannot mount the host's root (9p tag hostroot)"
# The share is read-only (QEMU enforces it): writes land in a tmpfs overlay and vanish
# at poweroff.
mount -t tmpfs -o mode=0755 l1-upper /upper
mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot ||
  fatal "cannot mount the overlay over the host's root"

r=/newroot
mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t cgroup2 cgroup2 $r/sys/fs/cgroup 2>/dev/null || true
mount -t devtmpfs devtmpfs $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts $r/dev/pts
mount -t tmpfs -o mode=1777 shm $r/dev/shm
mount -t tmpfs -o mode=0755 run $r/run
mkdir -p $r/run/vmctl-l1 $r/run/lock
mount -t 9p -o rw,trans=virtio,version=9p2000.L,msize=262144 io $r/run/vmctl-l1 ||
  fatal "cannot mount the io share (9p tag io)"
io=$r/run/vmctl-l1

if [ -n "$vmctl_moddir" ] && [ -d "$r$vmctl_moddir" ]; then
  mkdir -p $r/lib/modules
  mount --bind "$r$vmctl_moddir" $r/lib/modules
fi

if [ -n "$vmctl_shares" ]; then
  for share in $(echo "$vmctl_shares" | tr ',' ' '); do
    tag=${share%%:*}
    path=${share#*:}
    mkdir -p "$r$path"
    mount -t 9p -o rw,trans=virtio,version=9p2000.L,msize=262144 "$tag" "$r$path" ||
      fatal "cannot mount share $tag at $path"
  done
fi

ip link set lo up 2>/dev/null || true
hostname l1

say "run uptime=$(uptime_s)"
chroot $r /usr/bin/env -i \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root TERM=dumb LANG=C.UTF-8 VMCTL_L1=1 \
  /bin/sh /run/vmctl-l1/command.sh </dev/null >$io/stdout 2>$io/stderr
code=$?
echo "$code" > $io/status
say "exit=$code uptime=$(uptime_s)"
sync
poweroff -f
