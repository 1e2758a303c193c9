import test from "ava";
import type { ProgressEvent } from "@vmctl/client";
import { humanSize } from "./format.js";
import { progressBar, PullProgress, type ProgressClock } from "./progress-bars.js";

const A = `sha256:3f4a9c1b2d7e${"0".repeat(52)}`;
const B = `sha256:9b1c2d3e4f5a${"1".repeat(52)}`;
const C = `sha256:c0ffee000001${"2".repeat(52)}`;

/** A clock the test moves by hand; timers run when it passes them. */
class FakeClock implements ProgressClock {
  time = 1000;
  timers: { at: number; fn: () => void; id: number }[] = [];
  #ids = 0;
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#ids;
    this.timers.push({ at: this.time + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  advance(ms: number): void {
    this.time += ms;
    for (const due of this.timers.filter((t) => t.at <= this.time)) {
      this.timers = this.timers.filter((t) => t !== due);
      due.fn();
    }
  }
}

const PULL: ProgressEvent[] = [
  { phase: "resolve" },
  { phase: "exists", item: C },
  { phase: "download", item: A, current: 0, total: 50_100_000 },
  { phase: "download", item: B, current: 0, total: 1234 },
  { phase: "download", item: A, current: 12_300_000, total: 50_100_000 },
  { phase: "download", item: B, current: 1234, total: 1234 },
  { phase: "download", item: A, current: 50_100_000, total: 50_100_000 },
  { phase: "verify", item: A },
  { phase: "unpack", item: A, current: 10, total: 100 },
  { phase: "unpack", item: A, current: 100, total: 100 },
  { phase: "unpack", item: B, current: 100, total: 100 },
  { phase: "mkfs" },
  { phase: "done" },
];

function capture(): { out: { write(text: string): void }; text: () => string; writes: string[] } {
  const writes: string[] = [];
  return { out: { write: (text: string) => void writes.push(text) }, text: () => writes.join(""), writes };
}

test("not on a terminal: one plain line per change of a layer's state, no bars, no escape codes", (t) => {
  const { out, text } = capture();
  const progress = new PullProgress(out, { tty: false });
  progress.header("20: Pulling from library/node");
  for (const event of PULL) progress.update(event);
  progress.finish({ digest: `sha256:${"a".repeat(64)}`, reference: "node:20" });
  t.is(
    text(),
    [
      "20: Pulling from library/node",
      "Resolving",
      "c0ffee000001: Already exists",
      "3f4a9c1b2d7e: Downloading",
      "9b1c2d3e4f5a: Downloading",
      "9b1c2d3e4f5a: Download complete",
      "3f4a9c1b2d7e: Download complete",
      "3f4a9c1b2d7e: Verifying Checksum",
      "3f4a9c1b2d7e: Unpacking",
      "3f4a9c1b2d7e: Pull complete",
      "9b1c2d3e4f5a: Pull complete",
      "Creating the image's disk",
      `Digest: sha256:${"a".repeat(64)}`,
      "Status: Downloaded newer image for node:20",
      "",
    ].join("\n"),
  );
  t.false(text().includes("\x1b"));
});

test("on a terminal: one line per layer redrawn in place with docker's bar, then the closing lines", (t) => {
  const clock = new FakeClock();
  const { out, writes } = capture();
  const progress = new PullProgress(out, { tty: true, clock });
  // Each event 200 ms apart: every one is drawn.
  for (const event of PULL.slice(0, 5)) {
    progress.update(event);
    clock.advance(200);
  }
  t.is(
    writes.at(-1),
    "\x1b[4A" +
      "\x1b[2Kc0ffee000001: Already exists\n" +
      "\x1b[2K3f4a9c1b2d7e: Downloading [============>                                     ]   12.3MB/50.1MB\n" +
      "\x1b[2K9b1c2d3e4f5a: Downloading [>                                                 ]       0B/1.234kB\n" +
      "\x1b[2KResolving\n",
  );
  for (const event of PULL.slice(5)) {
    progress.update(event);
    clock.advance(200);
  }
  progress.finish({ digest: `sha256:${"a".repeat(64)}`, reference: "node:20" });
  // The whole-image line went with "done": its line is cleared and the cursor comes back up.
  t.is(
    writes.slice(-3).join(""),
    "\x1b[4A" +
      "\x1b[2Kc0ffee000001: Already exists\n" +
      "\x1b[2K3f4a9c1b2d7e: Pull complete\n" +
      "\x1b[2K9b1c2d3e4f5a: Pull complete\n" +
      "\x1b[2K\n\x1b[1A" +
      `Digest: sha256:${"a".repeat(64)}\n` +
      "Status: Downloaded newer image for node:20\n",
  );
});

test("on a terminal, redraws are at most one per 100 ms; the last state is drawn once the interval is over, and at the end", (t) => {
  const clock = new FakeClock();
  const { out, writes } = capture();
  const progress = new PullProgress(out, { tty: true, clock });
  progress.update({ phase: "download", item: A, current: 0, total: 1000 });
  t.is(writes.length, 1, "the first event draws at once");
  // 50 events within 49 ms: no redraw yet, one pending.
  for (let i = 1; i <= 49; i++) {
    clock.advance(1);
    progress.update({ phase: "download", item: A, current: i * 10, total: 1000 });
  }
  t.is(writes.length, 1);
  t.is(clock.timers.length, 1, "one redraw scheduled, not fifty");
  clock.advance(51);
  t.is(writes.length, 2);
  t.true(writes[1]?.includes("     490B/1kB"), writes[1]);
  // A second of events every 10 ms: ten redraws.
  for (let i = 0; i < 100; i++) {
    progress.update({ phase: "download", item: A, current: 500 + i, total: 1000 });
    clock.advance(10);
  }
  t.true(writes.length - 2 <= 10, `${writes.length - 2} redraws in a second`);
  t.true(writes.length - 2 >= 9, `${writes.length - 2} redraws in a second`);
  // An event right after a draw is not lost: end() draws it.
  progress.update({ phase: "download", item: A, current: 1000, total: 1000 });
  progress.end();
  t.true(writes.at(-1)?.includes("3f4a9c1b2d7e: Download complete"));
  t.is(clock.timers.length, 0);
  const after = writes.length;
  progress.update({ phase: "unpack", item: A });
  clock.advance(1000);
  t.is(writes.length, after, "nothing is drawn once ended");
});

test("a pull with every layer in the store is up to date; narrow terminals get numbers without bars, and no line wraps", (t) => {
  const { out, text } = capture();
  const progress = new PullProgress(out, { tty: false });
  progress.update({ phase: "exists", item: A });
  progress.update({ phase: "done" });
  progress.finish({ digest: "sha256:abc", reference: "node:20" });
  t.is(text(), "3f4a9c1b2d7e: Already exists\nDigest: sha256:abc\nStatus: Image is up to date for node:20\n");

  const clock = new FakeClock();
  const narrow = capture();
  const small = new PullProgress(narrow.out, { tty: true, columns: 80, clock });
  small.update({ phase: "download", item: A, current: 12_300_000, total: 50_100_000 });
  t.is(narrow.text(), "\x1b[2K3f4a9c1b2d7e: Downloading   12.3MB/50.1MB\n");
  const tiny = capture();
  new PullProgress(tiny.out, { tty: true, columns: 20, clock }).update({ phase: "download", item: A, current: 1, total: 2 });
  t.is(tiny.text(), "\x1b[2K3f4a9c1b2d7e: Downl\n");
});

test("bars and sizes as docker draws them", (t) => {
  t.is(progressBar(0, 100), `[>${" ".repeat(49)}]`);
  t.is(progressBar(50, 100), `[${"=".repeat(25)}>${" ".repeat(24)}]`);
  t.is(progressBar(100, 100), `[${"=".repeat(50)}]`);
  t.is(progressBar(200, 100), `[${"=".repeat(50)}]`);
  t.deepEqual(
    [0, 999, 1000, 1234, 12_300_000, 50_100_000, 1_081_000, 28_570_000, 999_999, 1_500_000_000, 2.5e12].map(humanSize),
    ["0B", "999B", "1kB", "1.234kB", "12.3MB", "50.1MB", "1.081MB", "28.57MB", "1000kB", "1.5GB", "2.5TB"],
  );
});
