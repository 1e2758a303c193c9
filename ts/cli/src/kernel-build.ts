// images/kernel/build, as `vmctl kernel` runs it: found in the checkout this CLI was
// built in, run with bash, its progress passed through to the user as it comes.
import { execFile, spawn } from "node:child_process";
import { statSync } from "node:fs";
import { promisify } from "node:util";
import { CliError } from "./errors.js";
import { kernelBuildScriptPath } from "./kernel-script.js";

const run = promisify(execFile);

export { kernelBuildScriptPath } from "./kernel-script.js";

/** The build script, or a CliError saying where it was looked for. */
export function requireKernelBuildScript(): string {
  const path = kernelBuildScriptPath();
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw new CliError(`cannot read ${path}: ${(err as Error).message}`, 1, { cause: err });
  }
  if (!isFile) throw new CliError(`the kernel build script is not at ${path}: vmctl kernel build runs from a vmctl checkout (npm run build links it)`);
  return path;
}

/** The last non-empty line of `text`, without images/kernel/build's "kernel: " prefix. */
function lastLine(text: string): string | undefined {
  const line = text.split("\n").map((l) => l.trim()).filter(Boolean).at(-1);
  return line?.replace(/^kernel: /, "");
}

/** The cache key this checkout's config, script and source package make (`build --key`). */
export async function currentKernelKey(script: string, env: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout } = await run("bash", [script, "--key"], { env, timeout: 30_000 });
    const key = stdout.trim();
    if (!/^[0-9a-f]{16}$/.test(key)) throw new CliError(`${script} --key printed ${JSON.stringify(key)}, not a key`);
    return key;
  } catch (err) {
    if (err instanceof CliError) throw err;
    const e = err as { stderr?: string; message?: string };
    throw new CliError(`${script} --key failed: ${lastLine(e.stderr ?? "") ?? e.message ?? String(err)}`, 1, { cause: err });
  }
}

/**
 * Runs the build (or finds the kernel built), its stderr passed through to ours as it
 * comes; resolves with the path it printed last on stdout. A failure is a CliError with
 * the script's last word, which names what went wrong.
 */
export function runKernelBuild(script: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    // Its own process group, and our signals passed to the whole group: a signal to bash
    // alone would leave make (or the flock waiting for another build) running on.
    const child = spawn("bash", [script], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const forward = (signal: NodeJS.Signals): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch (err) {
        // ESRCH: the group has just ended; its exit is reported by "close" below.
        if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
      }
    };
    const SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
    for (const signal of SIGNALS) process.on(signal, forward);
    let stdout = "";
    let stderrTail = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      process.stderr.write(d);
      // Enough to hold the last line; the whole log can be long.
      stderrTail = (stderrTail + d).slice(-4096);
    });
    child.once("error", (err) => {
      for (const s of SIGNALS) process.off(s, forward);
      reject(new CliError(`cannot run ${script}: ${err.message}`, 1, { cause: err }));
    });
    child.once("close", (code, signal) => {
      for (const s of SIGNALS) process.off(s, forward);
      if (code === 0) {
        const path = stdout.trim().split("\n").at(-1)?.trim();
        if (path) resolve(path);
        else reject(new CliError(`${script} succeeded but printed no kernel path`));
        return;
      }
      if (signal !== null) reject(new CliError(`kernel build stopped (${signal}); run it again to go on`));
      else reject(new CliError(`kernel build failed (exit ${code}): ${lastLine(stderrTail) ?? "no message"}`));
    });
  });
}
