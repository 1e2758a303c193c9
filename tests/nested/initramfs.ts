// Builds L1's initramfs: static busybox, /init (l1/init.sh) and the kernel modules L1
// needs before it can mount the host's root, packed with the host's cpio. Cached under
// the nested cache by a hash of every input, so it is rebuilt only when one changes.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NestedHostMissingError } from "./errors.js";
import { resolveModules, type ModuleLoad } from "./modules.js";
import { nestedCacheDir, requireTool, type L1Kernel } from "./paths.js";

/**
 * What L1 loads at boot, by module name → insmod parameters; modules.dep adds their
 * dependencies (kvm_amd brings kvm, irqbypass and ccp; 9p brings netfs and fscache).
 * npt=1 is kvm_amd's default on a CPU with nested paging; it is spelled out because
 * the whole point of L1 is an SVM KVM with nested paging (insmod fails without it).
 */
export const L1_MODULES: ReadonlyMap<string, string> = new Map([
  ["virtio_pci", ""],
  ["9pnet_virtio", ""],
  ["9p", ""],
  ["overlay", ""],
  ["kvm_amd", "npt=1"],
]);

/** Bump when the layout below changes in a way the inputs' hash cannot see. */
const LAYOUT_VERSION = "1";
const INIT_SCRIPT = fileURLToPath(new URL("./l1/init.sh", import.meta.url));

export interface L1Initramfs {
  readonly path: string;
  /** Hash of the inputs (also in the file name). */
  readonly key: string;
  /** False when the cached image was reused. */
  readonly built: boolean;
  readonly modules: readonly ModuleLoad[];
}

/** True when the ELF file has no program interpreter, i.e. needs no shared libraries. */
function isStaticElf(path: string): boolean {
  const elf = readFileSync(path);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false; // 64-bit ELF only
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === 3 /* PT_INTERP */) return false;
  }
  return true;
}

function requireStaticBusybox(): string {
  const busybox = requireTool("busybox", "Debian package busybox-static");
  if (!isStaticElf(busybox)) {
    throw new NestedHostMissingError(
      `nested host: ${busybox} is dynamically linked and cannot run in an initramfs; install busybox-static (npm run setup)`,
    );
  }
  return busybox;
}

function inputsKey(parts: readonly (string | Buffer)[]): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    // Length-prefixed so that no two different input lists hash alike.
    hash.update(`${Buffer.byteLength(part)}:`);
    hash.update(part);
  }
  return hash.digest("hex").slice(0, 16);
}

function listTree(root: string, dir = ""): string[] {
  const entries: string[] = [];
  for (const name of readdirSync(join(root, dir)).sort()) {
    const rel = dir ? `${dir}/${name}` : name;
    entries.push(rel);
    if (statSync(join(root, rel)).isDirectory()) entries.push(...listTree(root, rel));
  }
  return entries;
}

/** Old images (other kernels, other inputs) are dropped after a week unused. */
function pruneOld(dir: string, keep: string): void {
  const weekAgo = Date.now() - 7 * 24 * 3600 * 1000;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (path !== keep && name.endsWith(".cpio") && statSync(path).mtimeMs < weekAgo) rmSync(path, { force: true });
  }
}

/** The initramfs for `kernel`, built now if no image with the same inputs is cached. */
export function ensureInitramfs(kernel: L1Kernel, cache: string = nestedCacheDir()): L1Initramfs {
  const busybox = requireStaticBusybox();
  const cpio = requireTool("cpio", "Debian package cpio");
  const modules = resolveModules(kernel.modulesDir, L1_MODULES);
  const init = readFileSync(INIT_SCRIPT);
  const busyboxBytes = readFileSync(busybox);
  const moduleBytes = modules.map((m) => readFileSync(join(kernel.modulesDir, m.path)));
  const moduleList = modules.map((m) => `${m.name}.ko ${m.params}`.trimEnd()).join("\n") + "\n";
  const key = inputsKey([LAYOUT_VERSION, kernel.release, init, busyboxBytes, moduleList, ...moduleBytes]);

  const dir = join(cache, "initramfs");
  const path = join(dir, `${kernel.release}-${key}.cpio`);
  mkdirSync(dir, { recursive: true });
  if (existsSync(path)) return { path, key, built: false, modules };

  const staging = mkdtempSync(join(dir, ".staging-"));
  try {
    for (const sub of ["bin", "etc", "modules"]) mkdirSync(join(staging, sub));
    writeFileSync(join(staging, "init"), init);
    chmodSync(join(staging, "init"), 0o755);
    copyFileSync(busybox, join(staging, "bin/busybox"));
    chmodSync(join(staging, "bin/busybox"), 0o755);
    modules.forEach((m, i) => writeFileSync(join(staging, "modules", `${m.name}.ko`), moduleBytes[i] as Buffer));
    writeFileSync(join(staging, "etc/l1-modules"), moduleList);
    const image = execFileSync(cpio, ["-o", "-H", "newc", "--quiet", "-R", "0:0"], {
      cwd: staging,
      input: listTree(staging).join("\n") + "\n",
      maxBuffer: 512 * 1024 * 1024,
    });
    // Write then rename: a concurrent test process sees either no image or a whole one.
    const partial = `${path}.${process.pid}.tmp`;
    writeFileSync(partial, image);
    renameSync(partial, path);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  pruneOld(dir, path);
  return { path, key, built: true, modules };
}
