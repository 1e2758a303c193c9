// What the Linux tests boot besides the kernel, built on the host in a temp dir: a busybox
// userspace (static busybox, every applet as a link, `outb` for the boot-done and
// exit-code ports), packed as an initramfs (cpio) or as an ext4 image (`mkfs.ext4 -d`,
// the way a rootfs image is made without mounting anything).
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { requireTool } from "./paths.js";

const OUTB_SOURCE = fileURLToPath(new URL("./linux/outb.c", import.meta.url));

/** Files to put into a guest tree: path (relative) → content; `mode` defaults to 0644, scripts 0755. */
export type GuestFiles = Readonly<Record<string, string | { readonly content: string; readonly mode: number }>>;

/** Compiles linux/outb.c (freestanding, static) to `dest`. */
export function buildOutb(dest: string): void {
  execFileSync(requireTool("gcc", "Debian package gcc"), [
    "-O2", "-static", "-nostdlib", "-fno-stack-protector", "-fno-pie", "-no-pie",
    "-o", dest, OUTB_SOURCE,
  ]);
}

/**
 * A busybox tree in `root`: /bin/busybox, a link per applet in /bin (plus /sbin/init,
 * /sbin/reboot, /sbin/poweroff), /bin/outb, the usual empty mount points, and `files`.
 */
export function busyboxTree(root: string, files: GuestFiles): string {
  const busybox = requireTool("busybox", "Debian package busybox-static");
  for (const dir of ["bin", "sbin", "dev", "proc", "sys", "mnt", "tmp", "etc", "data"]) mkdirSync(join(root, dir), { recursive: true });
  copyFileSync(busybox, join(root, "bin/busybox"));
  chmodSync(join(root, "bin/busybox"), 0o755);
  const applets = execFileSync(busybox, ["--list"], { encoding: "utf8" }).split("\n").filter((a) => /^[\w.[-]+$/.test(a));
  for (const applet of applets) {
    if (applet !== "busybox" && !existsSync(join(root, "bin", applet))) symlinkSync("busybox", join(root, "bin", applet));
  }
  for (const name of ["init", "reboot", "poweroff", "halt"]) symlinkSync("../bin/busybox", join(root, "sbin", name));
  buildOutb(join(root, "bin/outb"));
  for (const [path, spec] of Object.entries(files)) {
    const { content, mode } = typeof spec === "string" ? { content: spec, mode: defaultMode(spec) } : spec;
    const dest = join(root, path);
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, content);
    chmodSync(dest, mode);
  }
  return root;
}

/** Scripts (a `#!` first line) are executable, the rest plain files. */
function defaultMode(content: string): number {
  return content.startsWith("#!") ? 0o755 : 0o644;
}

/** Packs `root` into a newc cpio at `out` (an uncompressed initramfs). */
export function packInitramfs(root: string, out: string): string {
  requireTool("cpio", "Debian package cpio");
  execFileSync("sh", ["-c", `cd '${root}' && find . | cpio -o -H newc --quiet > '${out}'`]);
  return out;
}

/** An ext4 image of `sizeMib` at `out` holding `root` (mkfs.ext4 -d: no mount, no root needed). */
export function makeExt4(root: string, out: string, sizeMib: number, label: string): string {
  execFileSync(requireTool("mkfs.ext4", "Debian package e2fsprogs"), ["-q", "-F", "-L", label, "-d", root, out, `${sizeMib}M`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  return out;
}

/** `debugfs -R 'cat PATH' image`: a file's content read from the image without mounting it. */
export function debugfsCat(image: string, path: string): string {
  return execFileSync(requireTool("debugfs", "Debian package e2fsprogs"), ["-R", `cat ${path}`, image], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** `e2fsck -fn image`: exit status 0 and its output (0 means clean, nothing to fix). */
export function fsckReadOnly(image: string): { code: number; output: string } {
  try {
    const output = execFileSync(requireTool("e2fsck", "Debian package e2fsprogs"), ["-fn", image], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    return { code: 0, output };
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string };
    return { code: e.status ?? -1, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}
