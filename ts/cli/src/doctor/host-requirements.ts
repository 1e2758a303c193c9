// What vmctl itself needs on the host whatever the target (the image store, the built-in
// image, the guest kernel build), declared as the targets declare theirs and checked by
// the same evaluator. Per-target needs are never listed here: each target declares them
// on its registration (`requires`), and target-requirements.ts reads them.
import type { HostRequirement } from "@vmctl/core/contract";

/** A host-wide requirement and the part of vmctl that has it. */
export interface HostWideRequirement {
  /** `images` (vmctld's image store), `networks` (services' networks), `kernel` (`vmctl kernel build`). */
  readonly area: string;
  readonly requirement: HostRequirement;
}

export const HOST_REQUIREMENTS: readonly HostWideRequirement[] = [
  {
    area: "images",
    requirement: { kind: "binary", name: "mkfs.ext4", package: "e2fsprogs", why: "makes the images' ext4 disks (vmctld's image store)", versionArgs: ["-V"] },
  },
  {
    area: "images",
    // crates/image reads exactly this file (DEFAULT_BUSYBOX in builtin.rs).
    requirement: { kind: "file", path: "/bin/busybox", package: "busybox-static", optional: true, why: "the built-in `default` image" },
  },
  {
    area: "networks",
    // crates/native loads it by this name when a network is first set up (net/nft.rs): Debian's multiarch path.
    requirement: {
      kind: "file",
      path: "/usr/lib/x86_64-linux-gnu/libnftables.so.1",
      package: "libnftables1",
      optional: true,
      why: "networks (`vmctl network`, `--network`): the host's nftables rules, set in-process",
    },
  },
  {
    area: "kernel",
    requirement: { kind: "file", path: "/usr/src/linux-source-6.1.tar.xz", package: "linux-source-6.1", optional: true, why: "`vmctl kernel build` (the default guest kernel)" },
  },
];
