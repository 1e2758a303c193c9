// spec → the body of Docker's "create container" call. Pure.
import type { ContainerConfig } from "./engine.js";
import type { DockerSpec } from "./spec.js";

export interface ConfigOptions {
  /** The image id resolved at prepare (what was checked is what runs). */
  readonly image: string;
  readonly labels: Record<string, string>;
}

export function containerConfig(spec: DockerSpec, options: ConfigOptions): ContainerConfig {
  const mounts = (spec.mounts ?? []).map((m) => ({ Type: "bind" as const, Source: m.source, Target: m.destination, ReadOnly: m.readOnly ?? false }));
  return {
    Image: options.image,
    ...(spec.args ? { Cmd: [...spec.args] } : {}),
    // Docker merges these over the image's own environment (PATH included).
    ...(spec.env ? { Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`) } : {}),
    ...(spec.workdir ? { WorkingDir: spec.workdir } : {}),
    Labels: options.labels,
    HostConfig: {
      NetworkMode: spec.network ?? "none",
      ...(mounts.length > 0 ? { Mounts: mounts } : {}),
      ...(spec.resources?.cpus !== undefined ? { NanoCpus: Math.round(spec.resources.cpus * 1e9) } : {}),
      ...(spec.resources?.memoryMiB !== undefined ? { Memory: spec.resources.memoryMiB * 1024 * 1024 } : {}),
      // logs() reads Docker's log API: json-file keeps every line readable whatever the
      // daemon's default driver is (journald, syslog and "none" are not readable back).
      LogConfig: { Type: "json-file", Config: {} },
      // vmctl decides what runs again, never the daemon.
      RestartPolicy: { Name: "no" },
    },
  };
}
