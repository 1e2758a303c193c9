// spec → LXC container config (the `config` file lxc-execute reads). Pure, so it is tested
// without LXC. Split in two: the base, which an LXC template may extend or override when
// lxc-create writes the config, and the service block, appended last so the spec wins.
import { decodeLabels, encodeLabel, type NetworkAttachment } from "@vmctl/core/contract";
import { networkLines, RESOLV_CONF } from "./network.js";
import type { LxcSpec } from "./spec.js";

export type CgroupVersion = "v1" | "v2";

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** The CFS period that resources.cpus is a fraction of. */
const CPU_PERIOD_US = 100_000;
/** Marks the end of what vmctl wrote: a config without it is half-made and is written again. */
export const CONFIG_END_MARKER = "# vmctl: end of service config";
/** How a label is written in a config: a comment LXC ignores, `# label KEY=VALUE` (the contract's encodeLabel). */
const LABEL_COMMENT = "# label ";

export interface ConfigOptions {
  readonly serviceId: string;
  readonly hostname: string;
  /** LXC's shared defaults (`/usr/share/lxc/config/common.conf`: caps, devices, seccomp), included when present. */
  readonly commonConf?: string | undefined;
  /** Which cgroup keys limits go to: v1 controllers (`lxc.cgroup.*`) or the unified hierarchy (`lxc.cgroup2.*`). */
  readonly cgroup: CgroupVersion;
  /** Written by the start-host hook with the container init's host pid. */
  readonly initPidFile: string;
  /** Owner labels, written as comments so a reaper can tell whose a container is. */
  readonly labels: Readonly<Record<string, string>>;
  /** The service's place on its network (TargetContext.network). Absent: an empty network namespace. */
  readonly network?: NetworkAttachment | undefined;
  /** A host file of the network's resolvers, bind-mounted read-only over the container's /etc/resolv.conf. */
  readonly resolvConf?: string | undefined;
}

/** Settings a template may override (it writes its own lines after these). */
export function baseConfig(opts: ConfigOptions): string {
  const lines = [
    `# Written by vmctl (target "lxc") for service ${oneLine(opts.serviceId)}.`,
    ...Object.entries(opts.labels).map(([key, value]) => `${LABEL_COMMENT}${encodeLabel(oneLine(key), value)}`),
  ];
  if (opts.commonConf) lines.push(`lxc.include = ${opts.commonConf}`);
  lines.push(
    ...networkLines(opts.network),
    "lxc.autodev = 1",
    "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed",
  );
  return `${lines.join("\n")}\n`;
}

/** The service's own settings, appended after the base (and after a template's lines). */
export function serviceBlock(spec: LxcSpec, opts: ConfigOptions): string {
  const lines = [`# vmctl: service config`, `lxc.uts.name = ${opts.hostname}`];
  const readonly = spec.readonlyRootfs ?? spec.template === undefined;
  if (readonly) lines.push("lxc.rootfs.options = ro");
  if (spec.workdir !== undefined) lines.push(`lxc.init.cwd = ${spec.workdir}`);

  const env = { PATH: DEFAULT_PATH, ...spec.env };
  for (const [key, value] of Object.entries(env)) lines.push(`lxc.environment = ${key}=${value}`);

  // A read-only rootfs gets a writable /tmp, unless a mount takes its place.
  const mounts = spec.mounts ?? [];
  if (readonly && !mounts.some((m) => m.destination === "/tmp")) {
    lines.push("lxc.mount.entry = tmpfs tmp tmpfs rw,nosuid,nodev,mode=1777,create=dir 0 0");
  }
  // Before the spec's mounts: one of theirs on /etc is never combined with it (network.ts).
  if (opts.resolvConf !== undefined) lines.push(`lxc.mount.entry = ${opts.resolvConf} ${RESOLV_CONF} none bind,ro,create=file 0 0`);
  for (const m of mounts) {
    const options = ["bind", ...(m.readOnly ? ["ro"] : []), "create=dir"].join(",");
    lines.push(`lxc.mount.entry = ${m.source} ${m.destination.slice(1)} none ${options} 0 0`);
  }

  const r = spec.resources ?? {};
  const prefix = opts.cgroup === "v2" ? "lxc.cgroup2" : "lxc.cgroup";
  if (r.memoryMiB !== undefined) {
    const bytes = r.memoryMiB * 1024 * 1024;
    lines.push(opts.cgroup === "v2" ? `${prefix}.memory.max = ${bytes}` : `${prefix}.memory.limit_in_bytes = ${bytes}`);
  }
  if (r.cpus !== undefined) {
    const quota = Math.max(1000, Math.round(r.cpus * CPU_PERIOD_US));
    if (opts.cgroup === "v2") lines.push(`${prefix}.cpu.max = ${quota} ${CPU_PERIOD_US}`);
    else lines.push(`${prefix}.cpu.cfs_period_us = ${CPU_PERIOD_US}`, `${prefix}.cpu.cfs_quota_us = ${quota}`);
  }
  if (r.pids !== undefined) lines.push(`${prefix}.pids.max = ${r.pids}`);

  // Runs on the host once the container exists, just before its init starts: the pid file
  // is how the controller learns "the workload is running" (and whose children to signal).
  // LXC runs `exec HOOK NAME lxc start-host` through sh, so the hook is one command: a
  // further sh, given the file as $0 (LXC's own arguments land in $1... and are ignored).
  const script = 'echo "$LXC_PID" > "$0.tmp" && mv -f "$0.tmp" "$0"';
  lines.push(`lxc.hook.start-host = /bin/sh -c ${shellQuote(script)} ${shellQuote(opts.initPidFile)}`);
  lines.push(CONFIG_END_MARKER);
  return `${lines.join("\n")}\n`;
}

/** The whole config for a container over a user's rootfs directory. */
export function rootfsConfig(spec: LxcSpec & { rootfs: string }, opts: ConfigOptions): string {
  return `${baseConfig(opts)}lxc.rootfs.path = dir:${spec.rootfs}\n${serviceBlock(spec, opts)}`;
}

/** The labels a config carries (its label comments, as baseConfig writes them). */
export function configLabels(config: string): Record<string, string> {
  const lines = config.split("\n").filter((line) => line.startsWith(LABEL_COMMENT));
  return decodeLabels(lines.map((line) => line.slice(LABEL_COMMENT.length)));
}

/** The directory a config's `lxc.rootfs.path = dir:PATH` names (the last one, as LXC reads it). */
export function configRootfs(config: string): string | undefined {
  let rootfs: string | undefined;
  for (const line of config.split("\n")) {
    const m = /^\s*lxc\.rootfs\.path\s*=\s*(?:dir:)?(\S.*?)\s*$/.exec(line);
    if (m?.[1]) rootfs = m[1];
  }
  return rootfs;
}

export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ");
}
