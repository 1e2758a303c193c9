// The CLI as a user vmctld's socket refuses (root's daemon, socket 0600): one line saying
// so, and no attempt to start a daemon of its own (which once failed with "EACCES …
// vmctld.log", pointing at the wrong problem).
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import test from "ava";
import { CLI_BIN, Daemon, processesMentioning, sandbox, teardown, type CliResult } from "./helpers/sandbox.js";

/**
 * The CLI where nobody can read it: the checkout may sit under a directory closed to
 * other users (/root...). The command is self-contained bundles (bin.cjs, cli.cjs, client.cjs for the gRPC verbs).
 */
function cliForEveryone(): { bin: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-cli-"));
  chmodSync(dir, 0o755);
  for (const file of ["bin.cjs", "cli.cjs", "client.cjs"]) copyFileSync(join(dirname(CLI_BIN), file), join(dir, file));
  return { bin: join(dir, "bin.cjs"), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `vmctl ARGS` as nobody:nogroup with no supplementary groups, and a clean environment. */
function vmctlAsNobody(bin: string, env: NodeJS.ProcessEnv, args: readonly string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "setpriv",
      ["--reuid=nobody", "--regid=nogroup", "--clear-groups", process.execPath, bin, ...args],
      { env: { PATH: "/usr/bin:/bin", HOME: "/nonexistent", VMCTL_SOCKET: env.VMCTL_SOCKET, VMCTL_STATE_DIR: env.VMCTL_STATE_DIR }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test("as nobody, a root vmctld's socket: 'permission denied on SOCKET', exit 1, and no daemon started", async (t) => {
  t.timeout(60_000);
  const sb = sandbox("vmctl-nonroot-");
  const daemon = await Daemon.start(sb);
  const cli = cliForEveryone();
  try {
    const expected = `vmctl: permission denied on ${sb.socket}: run as root (or as the user vmctld runs as), or point --socket at a daemon of your own\n`;
    // The socket's directory is 0700 (as /run/vmctl is): the path itself is closed to us.
    const closedDir = await vmctlAsNobody(cli.bin, sb.env, ["ps"]);
    t.is(closedDir.stderr, expected);
    t.is(closedDir.code, 1);
    // The directories open to all, the socket 0600: connect() itself is refused.
    chmodSync(sb.dir, 0o711);
    chmodSync(dirname(sb.socket), 0o711);
    const closedSocket = await vmctlAsNobody(cli.bin, sb.env, ["inspect", "x"]);
    t.is(closedSocket.stderr, expected);
    t.is(closedSocket.code, 1);
    // Nothing was started, nothing written where the daemon would log.
    t.false(existsSync(join(sb.stateDir, "vmctld.log")));
    t.deepEqual(processesMentioning(sb.socket).filter((pid) => pid !== daemon.pid), []);
    await daemon.client.ping(5000);
  } finally {
    cli.remove();
    await teardown(sb, [daemon]);
  }
});
