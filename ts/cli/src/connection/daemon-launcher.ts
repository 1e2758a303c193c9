// Connects to vmctld, starting it in the background first when nothing answers on the
// socket (detached, logging to <state-dir>/vmctld.log), and waits until it answers.
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { VmctlClient } from "@vmctl/client";
import { VmctlError } from "@vmctl/core/contract";
import { spawnDetached, type DetachedProcess } from "@vmctl/core/target-kit";
import { CliError } from "../errors.js";
import { loadHeavy } from "../load-heavy.js";
import type { Globals } from "./globals.js";
import { permissionDenied, probeSocket } from "./socket-probe.js";
import { daemonStarting, startLockHeld, tryStartLock } from "./start-lock.js";

const START_TIMEOUT_MS = 30_000;

/** The vmctld entry point of the installed @vmctl/server. */
export function vmctldBin(): string {
  // createRequire, not import.meta.resolve: this module is also bundled as CommonJS.
  return createRequire(import.meta.url).resolve("@vmctl/server/bin");
}

async function answers(client: VmctlClient): Promise<boolean> {
  try {
    await client.ping(2000);
    return true;
  } catch (err) {
    if (err instanceof VmctlError && (err.code === "UNAVAILABLE" || err.code === "DEADLINE_EXCEEDED")) return false;
    throw err;
  }
}

function lastLine(path: string): string {
  try {
    const lines = readFileSync(path, "utf8").trim().split("\n");
    return lines[lines.length - 1] ?? "";
  } catch {
    return "";
  }
}

/** A client for the daemon on `globals.socket`, started in the background if needed. */
export async function connectOrStart(globals: Globals): Promise<VmctlClient> {
  // A plain connect() first (a fraction of a millisecond), before loading the gRPC client:
  // a daemon may well be running, only not for us: say so rather than start another.
  const probe = await probeSocket(globals.socket);
  if (probe === "denied") throw new CliError(permissionDenied(globals.socket));
  const { connect } = await loadHeavy();
  if (probe === "answers") {
    const client = connect(globals.socket);
    if (await answers(client)) return client;
    client.close();
  }

  mkdirSync(globals.stateDir, { recursive: true, mode: 0o700 });
  const logPath = join(globals.stateDir, "vmctld.log");
  for (let attempt = 0; ; attempt++) {
    let daemon: DetachedProcess | undefined;
    // One start at a time: a daemon already starting, or another CLI starting one, is waited for.
    const release = daemonStarting(globals.stateDir) ? undefined : tryStartLock(globals.stateDir, START_TIMEOUT_MS);
    if (release !== undefined) {
      const args = [vmctldBin(), "--socket", globals.socket, "--state-dir", globals.stateDir];
      if (globals.config !== undefined) args.push("--config", globals.config);
      try {
        daemon = await spawnDetached(process.execPath, args, { logFile: logPath });
      } catch (err) {
        release();
        throw err;
      }
    }
    let exited: { code: number | null; at: number } | undefined;
    const exitOf = (): { code: number | null; at: number } | undefined => {
      const code = daemon?.exitCode();
      if (code !== undefined) exited ??= { code, at: Date.now() };
      return exited;
    };
    // Waiting on someone else's start: if that daemon (or the CLI starting it) dies, start one ourselves, once.
    const abandoned =
      release === undefined && attempt === 0
        ? () => !daemonStarting(globals.stateDir) && !startLockHeld(globals.stateDir, START_TIMEOUT_MS)
        : undefined;
    try {
      return await waitForDaemon(connect, globals, logPath, exitOf, abandoned);
    } catch (err) {
      if (err instanceof StartAbandoned) continue;
      throw err;
    } finally {
      release?.();
    }
  }
}

/** The daemon (or CLI) this one was waiting for went away without serving. */
class StartAbandoned extends Error {}

/** Polls the socket until the daemon answers; a clear error when it does not within START_TIMEOUT_MS. */
async function waitForDaemon(
  connect: (socket: string) => VmctlClient,
  globals: Globals,
  logPath: string,
  exited: () => { code: number | null; at: number } | undefined,
  abandoned?: () => boolean,
): Promise<VmctlClient> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let abandonedSince: number | undefined;
  for (;;) {
    // A fresh channel each time: a failed one waits out its reconnect backoff.
    const attempt = connect(globals.socket);
    if (await answers(attempt)) return attempt;
    attempt.close();
    if (Date.now() > deadline) break;
    // It may have lost a race with another vmctld starting on the same socket: give that one a moment.
    const ended = exited();
    if (ended !== undefined && Date.now() - ended.at > 3000) break;
    if (abandoned?.()) {
      abandonedSince ??= Date.now();
      // Held a moment: between a CLI's lock and its daemon's pid file there is a gap.
      if (Date.now() - abandonedSince > 1000) throw new StartAbandoned();
    } else {
      abandonedSince = undefined;
    }
    await sleep(25);
  }
  const why = lastLine(logPath);
  const ended = exited();
  throw new CliError(`vmctld did not start on ${globals.socket}${ended ? ` (exit ${ended.code})` : ""}: ${why || "no log"} (see ${logPath})`);
}
