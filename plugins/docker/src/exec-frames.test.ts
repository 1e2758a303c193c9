// The exec output frame parser, fed Docker's framing cut at every possible place.
import test from "ava";
import { VmctlError, type ExecOutput } from "@vmctl/core/contract";
import { FrameDemuxer } from "./exec-frames.js";

function frame(type: number, payload: string): Buffer {
  const body = Buffer.from(payload);
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(body.byteLength, 4);
  return Buffer.concat([header, body]);
}

/** Joins consecutive pieces of the same stream, as a reader would see the text. */
function text(pieces: readonly ExecOutput[]): string[] {
  const out: string[] = [];
  let last: string | undefined;
  for (const p of pieces) {
    const data = Buffer.from(p.data).toString();
    if (p.stream === last) out[out.length - 1] += data;
    else out.push(`${p.stream}:${data}`);
    last = p.stream;
  }
  return out;
}

const WIRE = Buffer.concat([frame(1, "out one\n"), frame(2, "err\n"), frame(1, ""), frame(1, "out two\n"), frame(3, "daemon says no\n")]);
const EXPECTED = ["stdout:out one\n", "stderr:err\n", "stdout:out two\n", "stderr:daemon says no\n"];

test("frames read whole become their payloads on their streams, in order (type 3, the daemon's errors, is stderr)", (t) => {
  const demuxer = new FrameDemuxer();
  t.deepEqual(text(demuxer.push(WIRE)), EXPECTED);
  t.true(demuxer.atFrameBoundary);
});

test("the same bytes cut at any two places give the same output; a cut inside a frame is not a boundary", (t) => {
  for (let i = 0; i <= WIRE.length; i++) {
    for (let j = i; j <= WIRE.length; j++) {
      const demuxer = new FrameDemuxer();
      const pieces = [...demuxer.push(WIRE.subarray(0, i)), ...demuxer.push(WIRE.subarray(i, j)), ...demuxer.push(WIRE.subarray(j))];
      t.deepEqual(text(pieces), EXPECTED, `cut at ${i} and ${j}`);
    }
  }
  const demuxer = new FrameDemuxer();
  demuxer.push(WIRE.subarray(0, 3));
  t.false(demuxer.atFrameBoundary, "inside a header");
  demuxer.push(WIRE.subarray(3, 10));
  t.false(demuxer.atFrameBoundary, "inside a payload");
});

test("a payload is handed on as it arrives, never collected whole: pieces are views of what was pushed", (t) => {
  const demuxer = new FrameDemuxer();
  const big = frame(1, "x".repeat(100_000));
  const first = demuxer.push(big.subarray(0, 1000));
  t.is(first.length, 1);
  t.is(first[0]?.data.byteLength, 992);
  t.is(first[0]?.data.buffer, big.buffer, "no copy");
  t.is(demuxer.push(big.subarray(1000))[0]?.data.byteLength, 99_008);
});

test("a frame of an unknown type is an INTERNAL error (the stream is not what it should be)", (t) => {
  const demuxer = new FrameDemuxer();
  t.throws(() => demuxer.push(Buffer.from("raw text, not frames")), { instanceOf: VmctlError, code: "INTERNAL", message: /unknown type 114/ });
});
