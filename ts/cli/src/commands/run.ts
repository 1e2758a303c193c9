// vmctl run: create + start + attach to the output; exits with the workload's code.
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { Option, type Command } from "commander";
import { resolve } from "node:path";
import type { CreateServiceInput, ExitInfo, JsonValue, ProgressEvent, VmctlClient } from "@vmctl/client";
import type { BindMount } from "@vmctl/core/contract";
import { VmctlError } from "@vmctl/core/contract";
import { globalsOf } from "../connection/globals.js";
import { withClient } from "../connection/with-client.js";
import { CliError, cliError } from "../errors.js";
import { withProgress } from "../output/progress.js";
import { stderrProgress, type PullProgress } from "../output/progress-bars.js";
import { copyOutTo, parseCopyOut, type CopyOutRequest } from "./copy-out.js";
import { parseDiskSize } from "./disk-size.js";
import { policyFlag, publishFlags } from "./network.js";
import { collect, keyValues } from "./parse.js";
import { readinessFromFlags, type ReadinessFlags } from "./readiness-flags.js";

/** Exit code for a run that failed before the workload ran (docker's convention). */
export const RUN_FAILED = 125;

/** The flags `run` and `create` share: what the service is. */
export interface ServiceFlags extends ReadinessFlags {
  dependsOn: string[];
  name?: string;
  target: string;
  env: string[];
  label: string[];
  spec?: string;
  diskSize?: string;
  volume: string[];
  /** `run` only: `create` does not wait for the command. */
  copyOut?: string[];
  network?: string;
  publish: string[];
  networkPolicy?: string;
}

interface RunOptions extends ServiceFlags {
  rm?: boolean;
  detach?: boolean;
  copyOut: string[];
  await?: string;
}

/** Adds the flags of ServiceFlags (all but --copy-out, which only `run` waits for). */
export function serviceFlags(command: Command): Command {
  return command
    .option("--name <name>", "service name (generated when omitted)")
    .option("--target <target>", "target to run on", "oci")
    .option("-e, --env <K=V>", "environment variable (repeatable)", collect, [])
    .option("--label <k=v>", "label (repeatable)", collect, [])
    .option("--spec <json|@file>", "the target's spec as JSON; explicit fields win over IMAGE and COMMAND")
    .option("-v, --volume <src:dst[:ro]>", "a host path the command sees at dst: bound into containers, copied into a microVM (repeatable)", collect, [])
    .option("--network <name>", "the service's network: none (default), default, or a network's name (vmctl network ls)")
    .option("-p, --publish <[addr:]port:port[/proto]>", "forward a host port to the service, e.g. 8080:80 or 127.0.0.1:5353:53/udp (repeatable; needs --network)", collect, [])
    .option("--network-policy <policy>", "the service's egress: allow-all, deny-all or allow:CIDR[,CIDR...] (default: its network's)")
    .option("--disk-size <size>", "writable disk over the image, e.g. 20G (microvm; default 10G, sparse)")
    .option("--depends-on <service>", "a service that must be ready before this one starts (repeatable; started if need be)", collect, [])
    .option("--ready-tcp <[host:]port>", "ready once this TCP port accepts a connection (host: the service's address, else 127.0.0.1)")
    .option("--ready-http <url>", "ready once this URL answers 2xx")
    .option("--ready-cmd <command>", "ready once this host shell command exits 0")
    .option("--ready-interval <ms>", "time between readiness checks (default 200)")
    .option("--ready-timeout <ms>", "give up being ready after this long (default 60000)");
}

/**
 * The create request the flags describe (with an idempotency key: a create sent again to
 * a daemon that replaced one that went away can only make one service). Usage errors
 * (exit 2) before anything is sent.
 */
export function requestFromFlags(image: string | undefined, cmd: readonly string[], options: ServiceFlags, start: boolean): CreateServiceInput {
  const spec = withDiskSize(options.spec === undefined ? undefined : parseSpec(options.spec), options.diskSize);
  const readiness = readinessFromFlags(options);
  const env = keyValues(options.env, "-e");
  const labels = keyValues(options.label, "--label");
  const mounts = options.volume.map((text) => parseVolume(text));
  const copyOuts = (options.copyOut ?? []).map((text) => parseCopyOut(text));
  const ports = publishFlags(options.publish);
  const networkPolicy = policyFlag(options.networkPolicy);
  const shorthand = image !== undefined || cmd.length > 0 || Object.keys(env).length > 0 || mounts.length > 0 || copyOuts.length > 0;
  return {
    target: options.target,
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(spec === undefined ? {} : { spec }),
    labels,
    dependsOn: options.dependsOn,
    ...(readiness === undefined ? {} : { readiness }),
    ...(options.network === undefined ? {} : { network: options.network }),
    ...(ports.length === 0 ? {} : { ports }),
    ...(networkPolicy === undefined ? {} : { networkPolicy }),
    start,
    // Web Crypto's: node:crypto would load with the bundle (a real import() cannot run in it, see import-esm.ts).
    requestId: globalThis.crypto.randomUUID(),
    ...(shorthand ? { run: { ...(image === undefined ? {} : { image }), command: [...cmd], env, mounts, copyOut: copyOuts.map((c) => c.path) } } : {}),
  };
}

/** `--spec '{...}'` or `--spec @file.json`: a JSON object. */
export function parseSpec(text: string): { [key: string]: JsonValue } {
  let source = text;
  if (text.startsWith("@")) {
    try {
      source = readFileSync(text.slice(1), "utf8");
    } catch (err) {
      throw new CliError(`--spec ${text}: ${(err as Error).message}`, 2);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (err) {
    throw new CliError(`--spec is not valid JSON: ${(err as Error).message}`, 2);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new CliError("--spec must be a JSON object", 2);
  return value as { [key: string]: JsonValue };
}

/** `--disk-size` folded into the spec (as microvm's diskSizeMib); given twice is a usage error. */
function withDiskSize(spec: { [key: string]: JsonValue } | undefined, diskSize: string | undefined): { [key: string]: JsonValue } | undefined {
  if (diskSize === undefined) return spec;
  if (spec?.diskSizeMib !== undefined) throw new CliError("--disk-size and --spec's diskSizeMib both set the disk size: give one", 2);
  return { ...spec, diskSizeMib: parseDiskSize(diskSize) };
}

/** The workload's exit as a process exit code: its code, or 128 + signal number (like a shell and docker). */
export function exitCodeOf(exit: ExitInfo): number {
  if (exit.code !== null) return exit.code;
  const signal = exit.signal ? constants.signals[exit.signal as keyof typeof constants.signals] : undefined;
  if (signal !== undefined) return 128 + signal;
  return RUN_FAILED;
}

async function attach(client: VmctlClient, id: string): Promise<void> {
  for await (const chunk of client.logs(id, { follow: true })) {
    const out = chunk.stream === "stderr" ? process.stderr : process.stdout;
    if (!out.write(chunk.data)) await new Promise((resolve) => out.once("drain", resolve));
  }
}

/** `-v SRC:DST[:ro|rw]`: SRC resolved here (vmctld checks that it exists). */
export function parseVolume(text: string): BindMount {
  const parts = text.split(":");
  const mode = parts.length === 3 ? parts[2] : undefined;
  const [source = "", destination = ""] = parts;
  if (parts.length < 2 || parts.length > 3 || source === "" || !destination.startsWith("/") || (mode !== undefined && mode !== "ro" && mode !== "rw")) {
    throw new CliError(`-v ${JSON.stringify(text)}: expected SRC:/DST[:ro]`, 2);
  }
  return { source: resolve(source), destination, ...(mode === "ro" ? { readOnly: true } : {}) };
}

/** Each --copy-out in turn, a line for each that fails; true when all were copied. */
async function copyResultsOut(client: VmctlClient, id: string, copyOuts: readonly CopyOutRequest[]): Promise<boolean> {
  let ok = true;
  for (const { path, dest } of copyOuts) {
    try {
      await copyOutTo(client, id, path, dest);
    } catch (err) {
      ok = false;
      process.stderr.write(`vmctl: --copy-out ${path}: ${cliError(err).message}\n`);
    }
  }
  return ok;
}

/** `vmctl create`: the service made (prepared, not started); its id on stdout, as docker's. */
export function registerCreate(program: Command, trailing: () => readonly string[]): void {
  serviceFlags(
    program
      .command("create")
      .description("create a service without starting it (vmctl start... later); prints its id")
      .argument("[image]", "what to run from (oci: a rootfs directory)")
      .argument("[command...]", "the command (after --)"),
  ).action(async (image: string | undefined, positional: string[], options: ServiceFlags, command: Command) => {
    const request = requestFromFlags(image, [...positional, ...trailing()], options, false);
    const service = await withClient(command, (client) => client.create(request));
    process.stdout.write(`${service.id}\n`);
  });
}

export function registerRun(program: Command, trailing: () => readonly string[], setExit: (code: number) => void): void {
  serviceFlags(
    program
      .command("run")
      .description("create and start a service, stream its output, exit with its exit code")
      .argument("[image]", "what to run from (oci: a rootfs directory)")
      .argument("[command...]", "the command (after --)")
      .option("--rm", "delete the service once it has exited")
      .option("-d, --detach", "print the service id and return once it runs"),
  )
    .option("--copy-out <path:dest>", "after the command ends, copy path (in the service) to dest here (repeatable)", collect, [])
    // The native front's handover (crates/cli): it made the service and streamed its
    // output, then lost vmctld; from here on, this run's own way (a daemon started again).
    .addOption(new Option("--await <service>", "wait for a running service's exit, then as run (internal)").hideHelp())
    .action(async (image: string | undefined, positional: string[], options: RunOptions, command: Command) => {
      const cmd = [...positional, ...trailing()];
      const copyOuts = options.copyOut.map((text) => parseCopyOut(text));
      if (options.detach && copyOuts.length > 0) throw new CliError("--copy-out needs vmctl to wait for the command: not with -d (use vmctl cp later)", 2);
      if (options.await !== undefined && (image !== undefined || cmd.length > 0 || options.detach)) throw new CliError("--await takes a service and no image, command or -d", 2);
      const request = requestFromFlags(image, cmd, options, true);
      // Loaded on demand (see README.md, "Start-up time").
      const { connectOrStart } = await import("../connection/daemon-launcher.js");
      let client: VmctlClient;
      try {
        client = await connectOrStart(globalsOf(command));
      } catch (err) {
        throw cliError(err, RUN_FAILED);
      }
      /** `call`, and once more on a fresh connection (the daemon restarted if need be) when the daemon went away. */
      const again = async <T>(call: (c: VmctlClient) => Promise<T>): Promise<T> => {
        try {
          return await call(client);
        } catch (err) {
          if (!(err instanceof VmctlError) || err.code !== "UNAVAILABLE") throw err;
          client.close();
          client = await connectOrStart(globalsOf(command));
          return call(client);
        }
      };
      // What the target's prepare reports (an image pull, say), drawn as `vmctl pull` does
      // from its first event on; the spinner gives way to it.
      let progress: PullProgress | undefined;
      const spinnerOff = new AbortController();
      const onProgress = (event: ProgressEvent): void => {
        if (progress === undefined) {
          spinnerOff.abort();
          progress = stderrProgress();
        }
        progress.update(event);
      };
      try {
        const awaited = options.await;
        const service = await (awaited === undefined
          ? withProgress(`creating ${options.name ?? "service"} on ${options.target}`, again((c) => c.create(request, { onProgress })), 300, spinnerOff.signal)
          : again((c) => c.get(awaited))
        )
          .catch((err: unknown) => {
            throw cliError(err, RUN_FAILED);
          })
          .finally(() => progress?.end());
        if (options.detach) {
          process.stdout.write(`${service.id}\n`);
          return;
        }
        // Ctrl-C / SIGTERM stop the service (like docker's signal proxy); output and exit follow as usual.
        let stopping = false;
        const onSignal = (): void => {
          if (stopping) return;
          stopping = true;
          client.stop(service.id).catch(() => {});
        };
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
        try {
          try {
            // Awaited: its output was streamed by the front already.
            if (awaited === undefined) await attach(client, service.id);
          } catch (err) {
            if (!(err instanceof VmctlError) || err.code !== "UNAVAILABLE") throw err;
            // The daemon went away; the service lives on. Its exit is asked of the next daemon.
            process.stderr.write(`vmctl: lost vmctld while following ${service.name}'s output; waiting for its exit\n`);
          }
          const exit = await again((c) => c.wait(service.id));
          const copied = await copyResultsOut(client, service.id, copyOuts);
          if (options.rm) await client.delete(service.id, { force: true });
          if (exit.code === null && exit.signal === undefined) {
            process.stderr.write(`vmctl: ${service.name} ${exit.reason}${exit.detail ? `: ${exit.detail}` : ""}\n`);
          }
          // A copy that failed fails a command that succeeded; a failed command keeps its own code.
          setExit(copied || exitCodeOf(exit) !== 0 ? exitCodeOf(exit) : RUN_FAILED);
        } catch (err) {
          throw cliError(err, RUN_FAILED);
        } finally {
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
        }
      } finally {
        client.close();
      }
    });
}
