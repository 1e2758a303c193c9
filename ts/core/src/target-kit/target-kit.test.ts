import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import {
  findBinary,
  isAlive,
  isDirectory,
  mtimeOf,
  processGroupGone,
  processGroupMembers,
  readFrom,
  readIntFile,
  readJsonFile,
  startTimeOf,
  writeAtomic,
} from "./index.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-target-kit-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of chunks) text += Buffer.from(chunk).toString("utf8");
  return text;
}

test("readFrom yields the bytes after the offset, across chunk boundaries, and nothing for a missing file", async (t) => {
  const file = join(dir, "log");
  const big = "x".repeat(100_000) + "tail";
  writeFileSync(file, big);
  t.is(await collect(readFrom(file, 0)), big);
  t.is(await collect(readFrom(file, 100_000)), "tail");
  t.is(await collect(readFrom(file, big.length)), "");
  t.is(await collect(readFrom(join(dir, "missing"), 0)), "");
});

test("writeAtomic replaces the file whole and leaves no temp file", (t) => {
  const file = join(dir, "state.json");
  writeAtomic(file, "first");
  writeAtomic(file, "second");
  t.is(readFileSync(file, "utf8"), "second");
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith("state.json.tmp")), []);
});

test("readIntFile, readJsonFile, mtimeOf and isDirectory read state files, undefined (false) when missing or malformed", (t) => {
  const pid = join(dir, "shim.pid");
  writeFileSync(pid, "4242\n");
  t.is(readIntFile(pid), 4242);
  writeFileSync(pid, "42x\n");
  t.is(readIntFile(pid), undefined);
  writeFileSync(pid, "-1");
  t.is(readIntFile(pid), undefined);
  t.is(readIntFile(join(dir, "no.pid")), undefined);

  const json = join(dir, "stop.json");
  writeFileSync(json, '{"signals":["SIGTERM"]}');
  t.deepEqual(readJsonFile<{ signals: string[] }>(json), { signals: ["SIGTERM"] });
  writeFileSync(json, '{"signals":');
  t.is(readJsonFile(json), undefined, "half a file reads as none");
  t.is(readJsonFile(join(dir, "no.json")), undefined);

  const before = Date.now();
  const stamp = join(dir, "stamp");
  writeFileSync(stamp, "");
  const mtime = mtimeOf(stamp);
  t.true(mtime instanceof Date && Math.abs(mtime.getTime() - before) < 60_000);
  t.is(mtimeOf(join(dir, "no-stamp")), undefined);

  t.true(isDirectory(dir));
  t.false(isDirectory(stamp));
  t.false(isDirectory(join(dir, "nowhere")));
});

test("findBinary searches the given directories in order and needs the execute bit", (t) => {
  const a = join(dir, "bin-a");
  const b = join(dir, "bin-b");
  mkdirSync(a);
  mkdirSync(b);
  writeFileSync(join(a, "tool"), "not executable");
  writeFileSync(join(b, "tool"), "#!/bin/sh\n");
  chmodSync(join(b, "tool"), 0o755);
  t.is(findBinary("tool", [a, b]), join(b, "tool"));
  t.is(findBinary("absent", [a, b]), undefined);
  t.truthy(findBinary("sh"));
  // A directory with the execute bit is not a program; a relative PATH entry is skipped.
  mkdirSync(join(a, "dir-tool"));
  t.is(findBinary("dir-tool", [a]), undefined);
  t.is(findBinary("tool", ["relative/bin", b]), join(b, "tool"));
});

test("a process is alive by pid and start time; once reaped (or with another start time) it is not", async (t) => {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  await new Promise((resolve) => child.once("spawn", resolve));
  const pid = child.pid as number;
  const startTime = startTimeOf(pid);
  t.regex(startTime ?? "", /^\d+$/);
  t.true(isAlive({ pid, startTime: startTime as string }));
  t.false(isAlive({ pid, startTime: `${startTime}1` }), "a reused pid has another start time");
  child.kill("SIGKILL");
  await new Promise((resolve) => child.once("exit", resolve));
  t.false(isAlive({ pid, startTime: startTime as string }));
  t.is(startTimeOf(pid), undefined);
});

test("processGroupGone waits for the live members of a process group, not for its zombies", async (t) => {
  // The leader (exec'd sleep) never reaps the inner sh: a zombie stays in the group while it lives.
  const child = spawn("sh", ["-c", 'sh -c "exit 0" & exec sleep 30'], { stdio: "ignore", detached: true });
  await new Promise((resolve) => child.once("spawn", resolve));
  const pgid = child.pid as number;
  t.teardown(() => {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // gone
    }
  });
  const zombie = async (): Promise<number | undefined> => {
    for (let i = 0; i < 200; i++) {
      for (const entry of readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        try {
          const fields = readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
          if (fields[0] === "Z" && Number(fields[2]) === pgid) return Number(entry);
        } catch {
          // gone
        }
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return undefined;
  };
  const z = await zombie();
  t.truthy(z, "the group holds a zombie");
  t.deepEqual(processGroupMembers(pgid), [pgid], "the zombie is not a member that runs");
  t.false(await processGroupGone(pgid, { timeoutMs: 100 }), "a live member: not gone within the timeout");
  process.kill(pgid, "SIGKILL");
  const started = Date.now();
  t.true(await processGroupGone(pgid, { timeoutMs: 5000 }));
  t.true(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  t.deepEqual(processGroupMembers(pgid), []);
});

test("pidRunning: a live process runs, a zombie does not, a reaped one does not", async (t) => {
  const { pidRunning } = await import("./process.js");
  // sh starts a child and execs sleep without waiting for it: the child, once killed,
  // stays a zombie of the sleeping process.
  const parent = spawn("sh", ["-c", "sleep 300 & echo $!; exec sleep 300"], { stdio: ["ignore", "pipe", "ignore"] });
  t.teardown(() => parent.kill("SIGKILL"));
  const child = Number(await new Promise<string>((resolve) => parent.stdout.once("data", (d: Buffer) => resolve(d.toString().trim()))));
  t.true(pidRunning(child));
  process.kill(child, "SIGKILL");
  for (let i = 0; i < 200 && !/\) Z /.test(readFileSync(`/proc/${child}/stat`, "utf8")); i++) await new Promise((r) => setTimeout(r, 10));
  t.notThrows(() => process.kill(child, 0), "the zombie still has its pid");
  t.false(pidRunning(child));
  parent.kill("SIGKILL");
  await new Promise((r) => parent.once("exit", r));
  t.false(pidRunning(parent.pid as number));
});
