// The demultiplexer over dockerode's frame parser: order across streams, frames split
// across reads, timestamps, early exit.
import { PassThrough, Readable } from "node:stream";
import test from "ava";
import Docker from "dockerode";
import type { LogChunk } from "@vmctl/core/contract";
import { demuxed, splitTimestamp } from "./logs.js";

const modem = new Docker({ socketPath: "/nonexistent" }).modem;
const demux = modem.demuxStream.bind(modem);

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header.writeUInt8(stream, 0);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

async function all(iterable: AsyncIterable<LogChunk>): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const c of iterable) out.push([c.stream, Buffer.from(c.data).toString()]);
  return out;
}

test("frames come out in order with their stream, even split at odd places", async (t) => {
  const bytes = Buffer.concat([frame(1, "a\n"), frame(2, "b\n"), frame(1, "c\n"), frame(2, "")]);
  // Every split point: headers and payloads cut across reads.
  for (const cut of [1, 3, 8, 9, 11, 17, bytes.length - 1]) {
    const stream = Readable.from([bytes.subarray(0, cut), bytes.subarray(cut)]);
    t.deepEqual(await all(demuxed(stream, demux, { timestamps: false })), [["stdout", "a\n"], ["stderr", "b\n"], ["stdout", "c\n"], ["stderr", ""]], `cut at ${cut}`);
  }
});

test("timestamps are split off into LogChunk.time", async (t) => {
  const stream = Readable.from([frame(1, "2024-05-01T12:34:56.123456789Z hello\n")]);
  const [chunk] = await (async () => {
    const out: LogChunk[] = [];
    for await (const c of demuxed(stream, demux, { timestamps: true })) out.push(c);
    return out;
  })();
  t.is(Buffer.from(chunk!.data).toString(), "hello\n");
  t.is(chunk!.time.toISOString(), "2024-05-01T12:34:56.123Z");
  t.is(splitTimestamp(Buffer.from("no timestamp here")), undefined);
});

test("a stream error is thrown to the reader; breaking out destroys the stream", async (t) => {
  const failing = new PassThrough();
  const reading = all(demuxed(failing, demux, { timestamps: false }));
  failing.write(frame(1, "x"));
  failing.destroy(new Error("socket reset"));
  await t.throwsAsync(reading, { message: "socket reset" });

  const open = new PassThrough();
  open.write(frame(1, "first"));
  for await (const c of demuxed(open, demux, { timestamps: false })) {
    t.is(Buffer.from(c.data).toString(), "first");
    break;
  }
  t.true(open.destroyed);
});
