// A slow reader of a large copyOut holds Docker back instead of filling this process's
// memory. A file of its own: ava runs it in its own process, so the memory measured is
// this file's alone (and its tests run one at a time). Were the archive buffered (read in
// flowing mode, collected before it is handed on), the stall below would pull all 64 MiB in.
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { untilStdout } from "@vmctl/plugin-conformance";
import { scratch } from "./testing/context.js";
import { sh } from "./testing/helpers.js";

const FILE_BYTES = 64 * 1024 * 1024;
/** What the plugin may hold of the archive at any time: a few socket reads, far below the file. */
const HELD_BYTES_MAX = 8 * 1024 * 1024;
/** A call about the container while a copy is stalled must not wait for the copy. */
const CALL_MS_MAX = 5_000;

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/**
 * Buffer memory still referenced: garbage collected first, twice with a pause between,
 * because V8 frees dead buffers' memory concurrently and one reading may still count it.
 * The reader does not read meanwhile, so what the stream holds cannot shrink by waiting.
 */
async function liveBufferBytes(): Promise<number> {
  gc();
  await sleep(20);
  gc();
  return process.memoryUsage().arrayBuffers;
}

const s = await scratch("vmctl-docker-copy-backpressure-");
const factory = s.factory();

test.after.always("no container of this file is left on the daemon", async (t) => {
  const left = await s.leftovers();
  await factory.close();
  await s.cleanup();
  t.deepEqual(left, []);
});

test.serial("a 64 MiB copyOut to a slow reader: memory stays bounded, every byte arrives", async (t) => {
  const make = `busybox dd if=/dev/zero of=/big bs=65536 count=${FILE_BYTES / 65536} 2>/dev/null; echo ready; exec sleep 1000`;
  const c = await factory.create("big", factory.validate({ image: s.image, args: sh(make) }), s.context("big"));
  t.teardown(() => c.destroy());
  await c.start();
  await untilStdout(c, "ready");

  const baseline = await liveBufferBytes();
  const chunks = c.copyOut("/big")[Symbol.asyncIterator]();
  const first = await chunks.next();
  t.false(first.done);
  let bytes = first.done ? 0 : first.value.byteLength;

  // The reader stalls: Docker sends at GB/s, so an unread archive would all be here within this.
  await sleep(1500);
  const heldWhileStalled = (await liveBufferBytes()) - baseline;
  t.true(heldWhileStalled < HELD_BYTES_MAX, `held ${heldWhileStalled} bytes while the reader stalled`);

  // Then it reads slowly, pausing now and then; what is held stays bounded throughout.
  let peak = heldWhileStalled;
  for (let n = 1; ; n++) {
    const next = await chunks.next();
    if (next.done) break;
    bytes += next.value.byteLength;
    if (n % 64 === 0) {
      await sleep(5);
      peak = Math.max(peak, (await liveBufferBytes()) - baseline);
    }
  }
  t.true(peak < HELD_BYTES_MAX, `held at most ${peak} bytes while reading`);
  // The tar: one 512-byte header, the file, and Docker's end-of-archive padding.
  t.true(bytes >= FILE_BYTES + 512 && bytes <= FILE_BYTES + 512 + 10_240, `${bytes} bytes`);
});

// Docker holds the container while an archive is read (moby/moby#29058): a stalled copy
// would hold up even a kill. stop() and destroy() cut open copies first.
test.serial("a copy left stalled does not hold up stop or destroy: they cut it, its reader gets CANCELLED saying why", async (t) => {
  const make = `busybox dd if=/dev/zero of=/big bs=65536 count=${FILE_BYTES / 65536} 2>/dev/null; echo ready; exec sleep 1000`;
  const c = await factory.create("stalled", factory.validate({ image: s.image, args: sh(make) }), s.context("stalled"));
  t.teardown(() => c.destroy());
  await c.start();
  await untilStdout(c, "ready");
  const stalled = c.copyOut("/big")[Symbol.asyncIterator]();
  t.false((await stalled.next()).done);
  await sleep(500);

  let before = Date.now();
  await c.stop({ timeoutMs: 500 });
  t.is((await c.state()).phase, "exited");
  t.true(Date.now() - before < CALL_MS_MAX, `stop took ${Date.now() - before} ms`);
  const cut = await t.throwsAsync(drain(stalled), { instanceOf: VmctlError });
  t.is(cut?.code, "CANCELLED");
  t.regex(cut?.message ?? "", /cut off: the service is being stopped/);

  // After the exit a copy works again, and a stop then leaves it be (the exit is known: nothing
  // to ask Docker); one left stalled is cut by destroy, which then refuses new ones.
  const again = c.copyOut("/big")[Symbol.asyncIterator]();
  t.false((await again.next()).done);
  await c.stop({ timeoutMs: 500 });
  t.false((await again.next()).done, "the copy goes on after a stop of the exited service");
  await sleep(500);
  before = Date.now();
  await c.destroy();
  t.true(Date.now() - before < CALL_MS_MAX, `destroy took ${Date.now() - before} ms`);
  t.false((await s.leftovers()).includes(c.containerName));
  const destroyed = await t.throwsAsync(drain(again), { instanceOf: VmctlError });
  t.is(destroyed?.code, "CANCELLED");
  t.regex(destroyed?.message ?? "", /being destroyed/);
  t.is((await t.throwsAsync(drain(c.copyOut("/big")[Symbol.asyncIterator]()), { instanceOf: VmctlError }))?.code, "FAILED_PRECONDITION");
});

/** Reads to the end; the byte count. */
async function drain(chunks: AsyncIterator<Uint8Array>): Promise<number> {
  let bytes = 0;
  for (;;) {
    const next = await chunks.next();
    if (next.done) return bytes;
    bytes += next.value.byteLength;
  }
}
