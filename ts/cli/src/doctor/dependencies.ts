import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { findBinary } from "@vmctl/core/target-kit";
import { findVmmBinary } from "@vmctl/vmm-client";

const run = promisify(execFile);

/** One host dependency of a target, and whether this host has it. */
export interface DependencyStatus {
  /** The target (or tooling area) that needs it. */
  readonly target: string;
  readonly name: string;
  readonly present: boolean;
  /** Where it was found. */
  readonly path?: string;
  /** First line of its version output, when it has one. */
  readonly version?: string;
  /** What it is for, and what to do when it is missing. */
  readonly purpose: string;
}

interface DependencySpec {
  readonly target: string;
  readonly name: string;
  readonly purpose: string;
  /** Finds the dependency; undefined when absent. */
  readonly locate: () => string | undefined;
  /** Arguments that print a version; omitted for files that are not programs. */
  readonly versionArgs?: readonly string[];
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

const fileAt = (path: string) => () => (existsSync(path) ? path : undefined);
const program = (name: string) => () => findBinary(name);
/** Where scripts/setup installs the moto server (same default, same variable). */
const motoServer = () => {
  const path = join(process.env.VMCTL_MOTO_VENV || "/var/cache/vmctl/moto", "bin/moto_server");
  return isExecutable(path) ? path : undefined;
};

const DEPENDENCIES: readonly DependencySpec[] = [
  { target: "microvm", name: "vmctl-vmm", purpose: "the VMM (build with `npm run build`)", locate: () => findVmmBinary(), versionArgs: ["--version"] },
  { target: "oci", name: "runc", purpose: "OCI runtime (default)", locate: program("runc"), versionArgs: ["--version"] },
  { target: "oci", name: "crun", purpose: "OCI runtime (optional)", locate: program("crun"), versionArgs: ["--version"] },
  { target: "lxc", name: "lxc-start", purpose: "LXC containers", locate: program("lxc-start"), versionArgs: ["--version"] },
  { target: "lxc", name: "lxc-execute", purpose: "LXC application containers", locate: program("lxc-execute"), versionArgs: ["--version"] },
  { target: "lxc", name: "ip", purpose: "the lxc target's bridge (iproute2)", locate: program("ip"), versionArgs: ["-V"] },
  { target: "docker", name: "dockerd", purpose: "Docker Engine", locate: program("dockerd"), versionArgs: ["--version"] },
  { target: "docker", name: "docker.sock", purpose: "a running Docker Engine", locate: fileAt("/var/run/docker.sock") },
  { target: "aws-ec2", name: "moto_server", purpose: "local AWS API the aws-ec2 tests run against (scripts/setup)", locate: motoServer },
  { target: "images", name: "mkfs.ext4", purpose: "rootfs images (e2fsprogs)", locate: program("mkfs.ext4"), versionArgs: ["-V"] },
  { target: "images", name: "skopeo", purpose: "pulling OCI images from registries", locate: program("skopeo"), versionArgs: ["--version"] },
  { target: "images", name: "busybox", purpose: "static busybox for test rootfs", locate: program("busybox") },
  { target: "images", name: "linux-source", purpose: "guest kernel source", locate: fileAt("/usr/src/linux-source-6.1.tar.xz") },
];

async function versionOf(path: string, args: readonly string[]): Promise<string | undefined> {
  try {
    const { stdout, stderr } = await run(path, [...args], { timeout: 3000 });
    // mkfs.ext4 -V prints to stderr; most others to stdout.
    const first = `${stdout}\n${stderr}`.split("\n").find((l) => l.trim() !== "");
    return first?.trim();
  } catch {
    return undefined;
  }
}

/** Checks every known target dependency on this host, in parallel. */
export async function checkDependencies(): Promise<DependencyStatus[]> {
  return Promise.all(
    DEPENDENCIES.map(async (spec): Promise<DependencyStatus> => {
      const path = spec.locate();
      const base = { target: spec.target, name: spec.name, purpose: spec.purpose };
      if (path === undefined) return { ...base, present: false };
      const version = spec.versionArgs ? await versionOf(path, spec.versionArgs) : undefined;
      return version === undefined ? { ...base, present: true, path } : { ...base, present: true, path, version };
    }),
  );
}
