import test from "ava";
import { replayOverlap } from "./console-log.js";

const RING = 16;
/** The first n bytes of a stream that never repeats a 4-byte window (for unambiguous overlaps). */
function stream(n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + Math.floor(i / 251) * 13) % 256));
}

function replayOf(total: number): Buffer {
  const all = stream(total);
  return all.subarray(Math.max(0, total - RING));
}

function tailOf(persisted: number): Buffer {
  return stream(persisted).subarray(Math.max(0, persisted - RING));
}

test("nothing persisted: the whole replay is new", (t) => {
  t.deepEqual(replayOverlap({ persisted: 0, tail: Buffer.alloc(0), replay: replayOf(10), totalBefore: 10, totalAfter: 10, ring: RING }), { skip: 0, gap: 0 });
});

test("an unwrapped ring starts at byte 0: skip what the file has", (t) => {
  t.deepEqual(replayOverlap({ persisted: 6, tail: tailOf(6), replay: replayOf(10), totalBefore: 8, totalAfter: 12, ring: RING }), { skip: 6, gap: 0 });
});

test("a wrapped ring: the overlap is found between the metric readings", (t) => {
  for (const total of [20, 25, 40]) {
    for (const persisted of [total - 15, total - 8, total - 1]) {
      const r = replayOverlap({ persisted, tail: tailOf(persisted), replay: replayOf(total), totalBefore: total - 3, totalAfter: total + 5, ring: RING });
      t.deepEqual(r, { skip: persisted - (total - RING), gap: 0 }, `total ${total} persisted ${persisted}`);
    }
  }
});

test("a wrapped ring past the file's end: the bytes between are reported as lost", (t) => {
  const r = replayOverlap({ persisted: 10, tail: tailOf(10), replay: replayOf(40), totalBefore: 40, totalAfter: 40, ring: RING });
  t.deepEqual(r, { skip: 0, gap: 40 - RING - 10 });
});

test("the file already holds the whole replay", (t) => {
  const r = replayOverlap({ persisted: 40, tail: tailOf(40), replay: replayOf(40), totalBefore: 40, totalAfter: 40, ring: RING });
  t.deepEqual(r, { skip: RING, gap: 0 });
});
