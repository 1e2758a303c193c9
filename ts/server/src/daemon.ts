// The vmctld command line: options, signals, one-line errors.
import { parseArgs } from "node:util";
import { DEFAULT_STATE_DIR } from "@vmctl/core";
import type { LogLevel } from "@vmctl/core";
import { ConfigError, readConfig } from "./config.js";
import { DEFAULT_SOCKET, startVmctld, type Vmctld, type VmctldOptions } from "./vmctld.js";

const LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

export const DAEMON_USAGE = `usage: vmctld [options]

  --state-dir DIR     where state lives (default $VMCTL_STATE_DIR or ${DEFAULT_STATE_DIR})
  --socket PATH       the API socket (default $VMCTL_SOCKET or ${DEFAULT_SOCKET})
  --plugin NAME|PATH  load a plugin package (repeatable); the built-in targets load too
  --no-builtins       load only the --plugin targets (tests, minimal daemons)
  --config FILE       JSON config: {"targets": {"<target>": {options}}, "plugins": [NAME|PATH...],
                      "images": {"insecureRegistries": ["host:port"...]},
                      "network": {"pool": "10.213.0.0/16", "poolPrefix": 24}}
                      (default $VMCTL_CONFIG)
  --log-level LEVEL   debug, info, warn or error (default info)
  -h, --help          this text
`;

/** A usage problem: the message, and exit code 2. */
export class DaemonUsageError extends Error {
  override readonly name = "DaemonUsageError";
}

/** vmctld's options from its arguments and the environment (VMCTL_SOCKET, VMCTL_STATE_DIR). */
export function parseDaemonArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): VmctldOptions | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        "state-dir": { type: "string" },
        socket: { type: "string" },
        plugin: { type: "string", multiple: true },
        "no-builtins": { type: "boolean" },
        config: { type: "string" },
        "log-level": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new DaemonUsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return "help";
  const level = v["log-level"] ?? "info";
  if (!LEVELS.includes(level as LogLevel)) throw new DaemonUsageError(`--log-level must be one of ${LEVELS.join(", ")}`);
  const configPath = v.config ?? (env.VMCTL_CONFIG || undefined);
  let targetOptions: VmctldOptions["targetOptions"] = {};
  let configPlugins: readonly string[] = [];
  let insecureRegistries: readonly string[] = [];
  let network: VmctldOptions["network"] = {};
  // A bad config file is a ConfigError (one line, no usage text), not a usage error.
  if (configPath !== undefined) ({ targets: targetOptions, plugins: configPlugins, insecureRegistries, network } = readConfig(configPath));
  return {
    targetOptions,
    insecureRegistries,
    network,
    stateDir: v["state-dir"] ?? (env.VMCTL_STATE_DIR || DEFAULT_STATE_DIR),
    socketPath: v.socket ?? (env.VMCTL_SOCKET || DEFAULT_SOCKET),
    plugins: [...configPlugins, ...(v.plugin ?? [])],
    ...(v["no-builtins"] ? { builtins: false } : {}),
    logLevel: level as LogLevel,
  };
}

/**
 * Runs the daemon in the foreground until SIGTERM or SIGINT, then shuts down gracefully
 * (services keep running). Resolves to the process exit code.
 */
export async function runDaemon(options: VmctldOptions): Promise<number> {
  let daemon: Vmctld;
  try {
    daemon = await startVmctld(options);
  } catch (err) {
    process.stderr.write(`vmctld: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        process.stderr.write(`vmctld: ${signal} again, exiting now\n`);
        process.exit(1);
      }
      stopping = true;
      daemon.close().then(
        () => resolve(0),
        (err: unknown) => {
          process.stderr.write(`vmctld: shutdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

/** `vmctld ARGS...` as a process: returns the exit code. */
export async function daemonMain(argv: readonly string[]): Promise<number> {
  let options;
  try {
    options = parseDaemonArgs(argv);
  } catch (err) {
    const usage = err instanceof ConfigError ? "" : DAEMON_USAGE;
    process.stderr.write(`vmctld: ${(err as Error).message}\n${usage}`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(DAEMON_USAGE);
    return 0;
  }
  return runDaemon(options);
}
