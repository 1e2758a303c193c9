// vmctl run --depends-on and the --ready-* flags, end to end on oci: the dependent waits
// until its dependency's readiness check passes, then starts; bad flags are one line.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { processesMentioning, sandbox, teardown, until, vmctl, vmctlLive } from "./helpers/sandbox.js";

test("a dependent waits for its dependency's --ready-cmd, then runs", async (t) => {
  t.timeout(60_000);
  const sb = sandbox();
  try {
    const marker = join(sb.dir, "db-ready");
    const db = await vmctl(sb, ["run", "-d", "--name", "db", "--ready-cmd", `test -e ${marker}`, "--ready-interval", "50", sb.rootfs, "--", "sleep", "300"]);
    t.is(db.code, 0, db.stderr);
    const app = vmctlLive(sb, ["run", "-d", "--name", "app", "--depends-on", "db", sb.rootfs, "--", "sleep", "300"]);
    const phaseOf = async (name: string): Promise<string | undefined> => {
      const ps = await vmctl(sb, ["ps", "-a", "--json"]);
      return (JSON.parse(ps.stdout) as { name: string; phase: string }[]).find((s) => s.name === name)?.phase;
    };
    await until("app to wait for db", async () => (await phaseOf("app")) === "waiting");
    // Still waiting a while later: the check has not passed.
    await new Promise((r) => setTimeout(r, 500));
    t.is(await phaseOf("app"), "waiting");
    writeFileSync(marker, "");
    const started = await app.done;
    t.is(started.code, 0, started.stderr);
    t.is(await phaseOf("app"), "running");
    const [inspect] = JSON.parse((await vmctl(sb, ["inspect", "app"])).stdout) as { dependsOn: string[] }[];
    t.is(inspect?.dependsOn.length, 1);
    // sleep as a container's PID 1 ignores SIGTERM: no grace to wait out.
    t.is((await vmctl(sb, ["stop", "-t", "0", "app", "db"])).code, 0);
    t.is((await vmctl(sb, ["rm", "app", "db"])).code, 0);
  } finally {
    for (const pid of processesMentioning(sb.socket)) process.kill(pid, "SIGTERM");
    await teardown(sb);
  }
});

test("readiness and dependency flags that cannot work are one line and exit 2, and start nothing", async (t) => {
  const sb = sandbox();
  try {
    for (const args of [
      ["--ready-tcp", "70000"],
      ["--ready-tcp", "1", "--ready-http", "http://127.0.0.1/"],
      ["--ready-interval", "100"],
      ["--ready-cmd", "true", "--ready-timeout", "soon"],
    ]) {
      const r = await vmctl(sb, ["run", "-d", ...args, sb.rootfs, "--", "true"]);
      t.is(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      t.regex(r.stderr, /^vmctl: .*--ready-[a-z]+.*\n$/);
    }
    t.deepEqual(processesMentioning(sb.socket), [], "no daemon was started for a command that failed its own checks");
  } finally {
    await teardown(sb);
  }
});
