// The CLI's daemon auto-start is single-flight (issue 13): CLIs that find no daemon at
// once start one between them; a daemon that is still starting is waited for, not
// doubled; the caller's --config reaches the daemon it starts.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { processesMentioning, sandbox, teardown, until, vmctl, VMCTLD_BIN } from "./helpers/sandbox.js";

function stopDaemons(socket: string): void {
  for (const pid of processesMentioning(socket)) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // gone
    }
  }
}

test("four CLIs at once with no daemon start exactly one", async (t) => {
  t.timeout(60_000);
  const sb = sandbox();
  try {
    const results = await Promise.all(Array.from({ length: 4 }, () => vmctl(sb, ["ps", "--json"])));
    for (const r of results) t.is(r.code, 0, r.stderr);
    t.is(processesMentioning(sb.socket).length, 1, "one vmctld for the four of them");
  } finally {
    stopDaemons(sb.socket);
    await until("vmctld to stop", () => processesMentioning(sb.socket).length === 0).catch(() => undefined);
    await teardown(sb);
  }
});

test("a daemon that is still starting is waited for, not doubled", async (t) => {
  t.timeout(60_000);
  const sb = sandbox();
  const daemon = spawn(process.execPath, [VMCTLD_BIN, "--socket", sb.socket, "--state-dir", sb.stateDir], { stdio: "ignore" });
  try {
    // As soon as it has begun (its pid file is there), while it loads its plugins and
    // recovers its state, with no socket yet.
    await until("vmctld to begin", () => existsSync(join(sb.stateDir, "vmctld.pid")), 10_000);
    t.log(existsSync(sb.socket) ? "the daemon was already serving (slow poll)" : "the daemon was still starting, no socket yet");
    const r = await vmctl(sb, ["ps", "--json"]);
    t.is(r.code, 0, r.stderr);
    t.deepEqual(processesMentioning(sb.socket), [daemon.pid], "the CLI used the daemon being started, and started none");
  } finally {
    daemon.kill("SIGTERM");
    await until("vmctld to stop", () => processesMentioning(sb.socket).length === 0).catch(() => undefined);
    await teardown(sb);
  }
});

test("the caller's --config reaches the daemon the CLI starts; a bad one is one line and no daemon", async (t) => {
  t.timeout(60_000);
  const sb = sandbox();
  try {
    const bad = join(sb.dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ targets: { nope: {} } }));
    const refused = await vmctl(sb, ["--config", bad, "ps"]);
    t.not(refused.code, 0);
    t.regex(refused.stderr, /targets\.nope: no such target/);
    t.is(refused.stderr.trim().split("\n").length, 1, refused.stderr);
    t.deepEqual(processesMentioning(sb.socket), []);

    const good = join(sb.dir, "good.json");
    writeFileSync(good, JSON.stringify({ targets: {} }));
    const withConfig = await vmctl(sb, ["--config", good, "ps"]);
    t.is(withConfig.code, 0, withConfig.stderr);
    const [pid] = processesMentioning(sb.socket);
    t.true(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes(good), "started with the caller's config");
  } finally {
    stopDaemons(sb.socket);
    await until("vmctld to stop", () => processesMentioning(sb.socket).length === 0).catch(() => undefined);
    await teardown(sb);
  }
});
