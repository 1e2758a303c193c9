import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { followFiles, signalName, signalOfStatus } from "./index.js";

const root = mkdtempSync(join(tmpdir(), "vmctl-follow-"));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

function service(name: string): { dir: string; files: { stream: "stdout" | "stderr"; path: string }[] } {
  const dir = mkdtempSync(join(root, `${name}-`));
  return { dir, files: [{ stream: "stdout", path: join(dir, "stdout.log") }, { stream: "stderr", path: join(dir, "stderr.log") }] };
}

async function text(chunks: AsyncIterable<{ stream: string; data: Uint8Array }>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const c of chunks) out[c.stream] = (out[c.stream] ?? "") + Buffer.from(c.data).toString("utf8");
  return out;
}

test("without follow: what each file holds now, tagged with its stream; a missing file gives nothing", async (t) => {
  const s = service("once");
  writeFileSync(s.files[0]!.path, "out\n");
  let asked = 0;
  const got = await text(followFiles(s.files, { ended: () => (asked++, false), dir: s.dir, maxWaitMs: 50 }));
  t.deepEqual(got, { stdout: "out\n" });
  t.is(asked, 0, "not following: ended() is never asked");
});

test("following: reads what is appended, wakes on the change, and drains after the end", async (t) => {
  const s = service("follow");
  writeFileSync(s.files[0]!.path, "a");
  let ended = false;
  const chunks: { stream: string; text: string; time: Date }[] = [];
  const started = Date.now();
  const reading = (async () => {
    for await (const c of followFiles(s.files, { follow: true, ended: async () => ended, dir: s.dir, maxWaitMs: 30_000 })) {
      chunks.push({ stream: c.stream, text: Buffer.from(c.data).toString("utf8"), time: c.time });
    }
  })();
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(chunks.map((c) => c.text), ["a"]);
  appendFileSync(s.files[1]!.path, "err");
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(chunks.map((c) => `${c.stream}:${c.text}`), ["stdout:a", "stderr:err"], "a change in the directory wakes the follower");
  // Written together with the end: the round after ended() turns true still reads it.
  appendFileSync(s.files[0]!.path, "b");
  ended = true;
  writeFileSync(join(s.dir, "exit"), "0");
  await reading;
  t.deepEqual(chunks.map((c) => `${c.stream}:${c.text}`), ["stdout:a", "stderr:err", "stdout:b"]);
  t.true(Date.now() - started < 10_000, "woken by inotify, not by the 30 s fallback");
  t.true(chunks.every((c) => c.time instanceof Date));
});

test("following stops as soon as the service has ended, after one full read", async (t) => {
  const s = service("ended");
  writeFileSync(s.files[1]!.path, "last words");
  const got = await text(followFiles(s.files, { follow: true, ended: () => true, dir: s.dir, maxWaitMs: 30_000 }));
  t.deepEqual(got, { stderr: "last words" });
});

test("signalName and signalOfStatus read the host's signal numbers", (t) => {
  t.is(signalName(9), "SIGKILL");
  t.is(signalName(15), "SIGTERM");
  t.is(signalName(0), undefined);
  t.is(signalOfStatus(137), "SIGKILL");
  t.is(signalOfStatus(143), "SIGTERM");
  t.is(signalOfStatus(128), undefined);
  t.is(signalOfStatus(7), undefined, "a plain exit code");
  t.is(signalOfStatus(255), undefined, "128+127 is no signal");
});
