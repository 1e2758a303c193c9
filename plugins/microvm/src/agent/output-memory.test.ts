// 64 MiB of output streamed through an exec session with bounded memory in this process:
// its own file (its own process under ava), so no other test's allocations blur the figure.
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import anyTest, { type TestFn } from "ava";
import { startAgent, type RunningAgent } from "./testing.js";

const test = anyTest as TestFn<{ agent: RunningAgent }>;

const OUTPUT_BYTES = 64 * 1024 * 1024;
/**
 * How much more memory this process may hold while reading it than before: well under the
 * output's size (an output buffered whole would be 64 MiB more). Measured after a
 * collection (JS heap and buffers), not as RSS: the chunks read are garbage at once, but
 * a lazy collector lets tens of MiB of them wait. Measured here: 1-15 MiB (buffers whose
 * sweep had not finished yet), not growing with the output.
 */
const GROWTH_LIMIT_BYTES = 24 * 1024 * 1024;

// A collector to call, so what is measured is what is still held.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function liveBytes(): number {
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

test.before(async (t) => {
  t.context.agent = await startAgent();
});
test.after.always(async (t) => {
  await t.context.agent?.stop();
});

test("64 MiB of output is streamed at the reader's pace, never buffered whole", async (t) => {
  const session = await t.context.agent.connection.exec({ args: ["head", "-c", String(OUTPUT_BYTES), "/dev/zero"] });
  const pid = session.pid!;
  const baseline = liveBytes();
  const rssBefore = process.memoryUsage().rss;
  let peak = baseline;
  let bytes = 0;
  let chunks = 0;
  let paused = false;
  for await (const chunk of session) {
    t.is(chunk.stream, "stdout");
    bytes += chunk.data.byteLength;
    if (++chunks % 256 === 0) peak = Math.max(peak, liveBytes());
    if (!paused && bytes >= 1024 * 1024) {
      // Backpressure: while nobody reads, the command is held up in its write (without
      // flow control, `head` would have written all 64 MiB and been reaped by now).
      paused = true;
      await sleep(1000);
      t.true(existsSync(`/proc/${pid}`), "the command ran to its end while nobody read its output");
      peak = Math.max(peak, liveBytes());
    }
  }
  t.is(bytes, OUTPUT_BYTES);
  t.is((await session.exited).code, 0);
  const growth = peak - baseline;
  const mib = (n: number): string => (n / 2 ** 20).toFixed(1);
  t.log(`${OUTPUT_BYTES / 2 ** 20} MiB in ${chunks} chunks: live memory up ${mib(growth)} MiB at most (RSS up ${mib(process.memoryUsage().rss - rssBefore)} MiB)`);
  t.true(growth < GROWTH_LIMIT_BYTES, `live memory grew by ${growth} bytes`);
});
