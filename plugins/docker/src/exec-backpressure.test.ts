// A slow reader of a large exec output holds the command back instead of filling this
// process's memory. A file of its own: ava runs it in its own process, so the memory
// measured is this test's alone. Were the output buffered (a flowing socket, dockerode's
// demuxStream), the pause below would pull all 64 MiB in and the command would finish.
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import test from "ava";
import type { ExecOutput } from "@vmctl/core/contract";
import { untilStdout } from "@vmctl/plugin-conformance";
import { client, scratch } from "./testing/context.js";
import { sh } from "./testing/helpers.js";

const OUTPUT_BYTES = 64 * 1024 * 1024;
/** What the plugin may hold of the output at any time: a few socket reads, far below the output. */
const HELD_BYTES_MAX = 8 * 1024 * 1024;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/** Buffer memory still referenced (garbage collected first). */
function liveBufferBytes(): number {
  gc();
  return process.memoryUsage().arrayBuffers;
}

const s = await scratch("vmctl-docker-backpressure-");
const docker = client(s.socket);
const factory = s.factory();

test.after.always("no container of this file is left on the daemon", async (t) => {
  const left = await s.leftovers();
  await factory.close();
  await s.cleanup();
  t.deepEqual(left, []);
});

test("64 MiB of output to a slow reader: the command waits for the reader, memory stays bounded, every byte arrives", async (t) => {
  const c = await factory.create("big", factory.validate({ image: s.image, args: sh("echo ready; exec sleep 1000") }), s.context("big"));
  t.teardown(() => c.destroy());
  await c.start();
  await untilStdout(c, "ready");
  const ddRunning = async (): Promise<boolean> => {
    const top = await docker.getContainer(c.containerName).top({ ps_args: "-o pid,args" });
    // busybox dd rewrites its own arguments ("if=/dev/zero" reads "if /dev/zero" in ps).
    return top.Processes.some((p: string[]) => p.join(" ").includes("busybox dd if"));
  };

  const baseline = liveBufferBytes();
  const command = await c.exec({ args: ["busybox", "dd", "if=/dev/zero", "bs=65536", `count=${OUTPUT_BYTES / 65536}`] });
  const chunks = command[Symbol.asyncIterator]();
  const first = await chunks.next();
  t.false(first.done);
  let stdout = first.done ? 0 : first.value.data.byteLength;
  let stderr = "";
  const take = (chunk: ExecOutput): void => {
    if (chunk.stream === "stdout") stdout += chunk.data.byteLength;
    else stderr += Buffer.from(chunk.data).toString();
  };

  // The reader stalls: dd writes GiB/s, so unread output would all be here within this.
  await sleep(1500);
  const heldWhileStalled = liveBufferBytes() - baseline;
  t.true(heldWhileStalled < HELD_BYTES_MAX, `held ${heldWhileStalled} bytes while the reader stalled`);
  t.true(await ddRunning(), "dd is held back, not finished");

  // Then it reads slowly, pausing now and then; what is held stays bounded throughout.
  let peak = heldWhileStalled;
  for (let n = 1; ; n++) {
    const next = await chunks.next();
    if (next.done) break;
    take(next.value);
    if (n % 64 === 0) {
      await sleep(5);
      peak = Math.max(peak, liveBufferBytes() - baseline);
    }
  }
  t.true(peak < HELD_BYTES_MAX, `held at most ${peak} bytes while reading`);
  t.is(stdout, OUTPUT_BYTES);
  t.regex(stderr, /1024\+0 records out/);
  t.deepEqual(await command.exited, { code: 0 });
});
