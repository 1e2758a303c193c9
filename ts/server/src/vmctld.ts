// vmctld: the engine behind a gRPC server on a unix socket.
import { existsSync, realpathSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { createHostNetwork, DEFAULT_SOCKET, DEFAULT_STATE_DIR, jsonLogger, nativeImageEngine, Orchestrator, VmctlError } from "@vmctl/core";
import type { Logger, LogLevel } from "@vmctl/core";
import { OrchestratorService } from "@vmctl/proto";
import { ConfigError } from "./config.js";
import { CallTracker, orchestratorHandlers } from "./orchestrator-service.js";
import { addReflection } from "./reflection.js";
import { removePidFile, writePidFile } from "./pid-file.js";
import { bindUnixSocket, prepareSocketPath } from "./unix-socket.js";

export { DEFAULT_SOCKET } from "@vmctl/core/contract";
/** Targets loaded unless told otherwise (each only when its package is installed). */
export const BUILTIN_PLUGINS = [
  "vmctl-plugin-oci",
  "vmctl-plugin-microvm",
  "vmctl-plugin-lxc",
  "vmctl-plugin-docker",
  "vmctl-plugin-aws-ec2",
] as const;

export interface VmctldOptions {
  /** Default /var/lib/vmctl. */
  readonly stateDir?: string;
  /** Default /run/vmctl/vmctld.sock. */
  readonly socketPath?: string;
  /** More plugins: package names (looked up in `nodeModules`) or paths. */
  readonly plugins?: readonly string[];
  /** Load the built-in targets (default true). */
  readonly builtins?: boolean;
  /** Where named plugins are looked up; default: the node_modules folders above this package. */
  readonly nodeModules?: readonly string[];
  readonly logLevel?: LogLevel;
  readonly log?: Logger;
  /** Per-target options (`targets.<name>` of the config file), handed to each target's init. */
  readonly targetOptions?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Registries (`host:port`) pulled from over plain HTTP besides loopback ones (`images.insecureRegistries`). */
  readonly insecureRegistries?: readonly string[];
  /** Start without the native image engine (image calls answer FAILED_PRECONDITION). */
  readonly noImageEngine?: boolean;
  /** Where networks get subnets (config `network`); the host side is createHostNetwork() of @vmctl/core. */
  readonly network?: { readonly pool?: string; readonly poolPrefix?: number };
}

/** A running daemon. */
export class Vmctld {
  #closing: Promise<void> | undefined;

  constructor(
    readonly socketPath: string,
    readonly engine: Orchestrator,
    private readonly server: grpc.Server,
    private readonly calls: CallTracker,
    private readonly log: Logger,
    private readonly pidFile?: string,
  ) {}

  /** Stops serving (open streams end), detaches from the services (they keep running), removes the socket. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.calls.abortAll();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          this.server.forceShutdown();
          resolve();
        }, 3000);
        this.server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await this.engine.close();
      try {
        unlinkSync(this.socketPath);
      } catch {
        // already gone
      }
      removePidFile(this.pidFile);
      this.log.info("vmctld stopped", { socket: this.socketPath });
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** node_modules folders from this package up to the root, as Node would search them. */
export function defaultNodeModules(): string[] {
  const dirs: string[] = [];
  for (let dir = realpathSync(dirname(fileURLToPath(import.meta.url))); ; dir = dirname(dir)) {
    if (!dir.endsWith("/node_modules")) {
      const candidate = join(dir, "node_modules");
      if (existsSync(candidate)) dirs.push(candidate);
    }
    if (dirname(dir) === dir) return dirs;
  }
}

/** The plugin list: built-ins (those installed), then the ones asked for, without repeats. */
export function pluginList(options: Pick<VmctldOptions, "plugins" | "builtins">, nodeModules: readonly string[]): string[] {
  const list: string[] = [];
  if (options.builtins !== false) {
    for (const name of BUILTIN_PLUGINS) {
      if (nodeModules.some((dir) => existsSync(join(dir, name, "package.json")))) list.push(name);
    }
  }
  for (const plugin of options.plugins ?? []) if (!list.includes(plugin)) list.push(plugin);
  return list;
}

export async function startVmctld(options: VmctldOptions = {}): Promise<Vmctld> {
  const socketPath = options.socketPath ?? DEFAULT_SOCKET;
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
  const log = options.log ?? jsonLogger({ level: options.logLevel ?? "info", fields: { component: "vmctld" } });
  const nodeModules = options.nodeModules ?? defaultNodeModules();
  const plugins = pluginList(options, nodeModules);

  // Before the slow part (plugins, recovery): a CLI finding no answer yet waits for us.
  const pidFile = writePidFile(stateDir);
  try {
    await prepareSocketPath(socketPath);
    const engine = await Orchestrator.open({
      stateDir,
      plugins,
      nodeModules,
      log,
      targetOptions: options.targetOptions ?? {},
      network: { ...options.network, host: createHostNetwork() },
      ...(options.noImageEngine ? {} : { images: { native: nativeImageEngine(), insecureRegistries: options.insecureRegistries ?? [] } }),
    });
    // Options for a target no plugin registered are a typo, not something to ignore.
    const known = new Set(engine.targets().map((t) => t.name));
    const unknown = Object.keys(options.targetOptions ?? {}).filter((name) => !known.has(name));
    if (unknown.length > 0) {
      await engine.close();
      throw new ConfigError(`targets.${unknown[0]}: no such target (known: ${[...known].sort().join(", ")})`);
    }
    const calls = new CallTracker();
    const server = new grpc.Server();
    try {
      server.addService(OrchestratorService, orchestratorHandlers(engine, log, calls));
      addReflection(server);
      await bindUnixSocket(server, socketPath);
    } catch (err) {
      server.forceShutdown();
      await engine.close();
      throw VmctlError.from(err);
    }
    log.info("vmctld serving", { socket: socketPath, stateDir, plugins, targets: engine.targets().map((t) => `${t.name}: ${t.status}`) });
    return new Vmctld(socketPath, engine, server, calls, log, pidFile);
  } catch (err) {
    removePidFile(pidFile);
    throw err;
  }
}
