// The guest script, run with the host's sh against a stand-in `curl` (copies the uploaded
// file to a directory named by the URL) and `poweroff` (leaves a mark): quoting of args
// and env round-trips, the upload protocol, the exit status, the TERM path.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import test from "ava";
import { commandLines, guestScript, MAX_USER_DATA_BYTES, shellQuote } from "./user-data.js";

const root = mkdtempSync(join(tmpdir(), "vmctl-ec2-userdata-"));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

const NASTY = ["with space", "it's", "\"double\"", "$HOME", "`id`", "$(id)", "back\\slash", "new\nline", "", "*", "tab\there", "-n", "'", "''"];

let seq = 0;

/** A guest dir with fake curl/poweroff on PATH; uploads land in `<dir>/s3/<name>`. */
function guest(): { dir: string; bin: string; s3: string; urls: { stdout: string; stderr: string; exit: string } } {
  const dir = join(root, `g${++seq}`);
  const bin = join(dir, "bin");
  const s3 = join(dir, "s3");
  mkdirSync(bin, { recursive: true });
  mkdirSync(s3);
  // Takes the last two words (--upload-file FILE URL) like the real call; copies atomically.
  writeFileSync(
    join(bin, "curl"),
    `#!/bin/sh\nfor a; do prev=$file; file=$url; url=$a; done\nname=\${url##*/}\ncp "$file" "${s3}/.$name.tmp" && mv "${s3}/.$name.tmp" "${s3}/$name"\n`,
  );
  writeFileSync(join(bin, "poweroff"), `#!/bin/sh\n: > "${dir}/powered-off"\n`);
  chmodSync(join(bin, "curl"), 0o755);
  chmodSync(join(bin, "poweroff"), 0o755);
  return { dir, bin, s3, urls: { stdout: "http://s3.test/b/stdout", stderr: "http://s3.test/b/stderr", exit: "http://s3.test/b/exit" } };
}

function runScript(g: ReturnType<typeof guest>, script: string): { status: number | null; stderr: string } {
  const file = join(g.dir, "user-data");
  writeFileSync(file, script);
  const r = spawnSync("sh", [file], {
    cwd: g.dir,
    env: { PATH: `${g.bin}:/usr/bin:/bin`, TMPDIR: g.dir },
    encoding: "utf8",
    timeout: 20_000,
  });
  return { status: r.status, stderr: r.stderr };
}

test("shellQuote survives sh for every awkward byte", (t) => {
  for (const s of NASTY) {
    const r = spawnSync("sh", ["-c", `printf '%s' ${shellQuote(s)}`], { encoding: "utf8" });
    t.is(r.stdout, s, JSON.stringify(s));
  }
});

test("commandLines: args and env round-trip through sh exactly", (t) => {
  const env = { PLAIN: "x", TRICKY: "a 'b' \"c\" $d `e`\nline2", EMPTY: "" };
  const args = ["sh", "-c", 'for a; do printf "<%s>" "$a"; done; printf "|%s|%s|%s|" "$PLAIN" "$TRICKY" "$EMPTY"', "argv0", ...NASTY];
  const script = ["(", ...commandLines(args, env), ")"].join("\n");
  const r = spawnSync("sh", ["-c", script], { encoding: "utf8", env: { PATH: "/usr/bin:/bin" } });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, NASTY.map((a) => `<${a}>`).join("") + `|x|${env.TRICKY}||`);
});

test("the script uploads stdout and stderr apart, then the exit status, then powers off", (t) => {
  const g = guest();
  const script = guestScript({
    serviceId: "svc-1",
    args: ["sh", "-c", 'echo "out $GREETING"; echo "err line" >&2; exit 7'],
    env: { GREETING: "hello 'world'" },
    urls: g.urls,
    flushSeconds: 0.1,
  });
  t.true(script.length < MAX_USER_DATA_BYTES);
  const r = runScript(g, script);
  t.is(r.status, 0, r.stderr);
  t.is(readFileSync(join(g.s3, "stdout"), "utf8"), "out hello 'world'\n");
  t.is(readFileSync(join(g.s3, "stderr"), "utf8"), "err line\n");
  t.is(readFileSync(join(g.s3, "exit"), "utf8"), "7\n");
  t.true(existsSync(join(g.dir, "powered-off")));
});

test("output is uploaded while the command still runs", async (t) => {
  const g = guest();
  const file = join(g.dir, "user-data");
  writeFileSync(
    file,
    guestScript({ serviceId: "svc-2", args: ["sh", "-c", "echo early; while [ ! -e release ]; do sleep 0.05; done; echo late"], urls: g.urls, flushSeconds: 0.1 }),
  );
  const child = spawn("sh", [file], { cwd: g.dir, env: { PATH: `${g.bin}:/usr/bin:/bin`, TMPDIR: g.dir }, stdio: "ignore" });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  const deadline = Date.now() + 10_000;
  while (!existsSync(join(g.s3, "stdout")) || readFileSync(join(g.s3, "stdout"), "utf8") !== "early\n") {
    if (Date.now() > deadline) t.fail("no upload of the early output while running");
    await sleep(20);
  }
  t.false(existsSync(join(g.s3, "exit")), "no exit status while the command runs");
  writeFileSync(join(g.dir, "release"), "");
  // the command's cwd is the script's: the guest dir
  t.is(await exited, 0);
  t.is(readFileSync(join(g.s3, "stdout"), "utf8"), "early\nlate\n");
  t.is(readFileSync(join(g.s3, "exit"), "utf8"), "0\n");
});

test("SIGTERM to the script's process group (an OS shutdown) still reports the command's exit", async (t) => {
  const g = guest();
  const file = join(g.dir, "user-data");
  writeFileSync(
    file,
    guestScript({ serviceId: "svc-3", args: ["sh", "-c", "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.05; done"], urls: g.urls, flushSeconds: 0.1 }),
  );
  const child = spawn("sh", [file], { cwd: g.dir, env: { PATH: `${g.bin}:/usr/bin:/bin`, TMPDIR: g.dir }, stdio: "ignore", detached: true });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  const deadline = Date.now() + 10_000;
  while (!existsSync(join(g.s3, "stdout"))) {
    if (Date.now() > deadline) t.fail("never uploaded ready");
    await sleep(20);
  }
  process.kill(-child.pid!, "SIGTERM");
  t.is(await exited, 0);
  t.is(readFileSync(join(g.s3, "exit"), "utf8"), "42\n");
  t.is(readFileSync(join(g.s3, "stdout"), "utf8"), "ready\ngot-term\n");
});

test("a command that cannot be run reports 127 with the shell's reason on stderr", (t) => {
  const g = guest();
  const r = runScript(g, guestScript({ serviceId: "svc-4", args: ["/no/such/command", "x"], urls: g.urls, flushSeconds: 0.1 }));
  t.is(r.status, 0, r.stderr);
  t.is(readFileSync(join(g.s3, "exit"), "utf8"), "127\n");
  t.regex(readFileSync(join(g.s3, "stderr"), "utf8"), /no\/such\/command/);
});
