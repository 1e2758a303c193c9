// The QEMU command line of L1: TCG with `-cpu max`, the only way to an SVM CPU with
// nested paging on these PVM hosts (see DESIGN.md, "The development and CI machines").

export interface L1Machine {
  /** An ELF vmlinux with a PVH note (or a bzImage, booted the slow way). */
  readonly kernel: string;
  readonly initramfs: string;
  readonly cmdline: string;
  readonly cpus: number;
  readonly memMib: number;
  /** 9p shares: tag → host directory. */
  readonly readOnlyShares: ReadonlyMap<string, string>;
  readonly writableShares: ReadonlyMap<string, string>;
}

/** A host path inside a QEMU option value: commas are QEMU's separators, so doubled. */
const optionValue = (path: string): string => path.replace(/,/g, ",,");

function virtfs(tag: string, path: string, readonly: boolean): string[] {
  // multidevs=remap: the host root spans several filesystems (/proc, /dev, /sys, other
  // mounts); remapping keeps inode numbers unique across them inside L1.
  const ro = readonly ? ",readonly=on" : "";
  return ["-virtfs", `local,path=${optionValue(path)},mount_tag=${tag},security_model=none${ro},multidevs=remap`];
}

export function qemuArgs(machine: L1Machine): string[] {
  return [
    "-accel", "tcg,thread=multi",
    "-cpu", "max",
    "-machine", "q35",
    "-smp", String(machine.cpus),
    "-m", String(machine.memMib),
    // No display, no default devices (VGA, NIC, monitor) and no user config: the
    // console on stdout is all the harness reads, and fewer devices boot faster.
    "-nographic", "-nodefaults", "-no-user-config",
    // A reboot (panic=-1 turns a panic into one) ends QEMU instead of booting again.
    "-no-reboot",
    "-serial", "stdio",
    // qboot (shipped with QEMU) hands over to the kernel sooner than SeaBIOS.
    "-bios", "qboot.rom",
    "-kernel", machine.kernel,
    "-initrd", machine.initramfs,
    "-append", machine.cmdline,
    ...[...machine.readOnlyShares].flatMap(([tag, path]) => virtfs(tag, path, true)),
    ...[...machine.writableShares].flatMap(([tag, path]) => virtfs(tag, path, false)),
  ];
}
