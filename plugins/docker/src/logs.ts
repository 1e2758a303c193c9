// Docker's multiplexed output (8-byte frame headers naming stdout or stderr; containers
// without a TTY) as an async iterable of LogChunks. The frame parsing itself is
// dockerode's `modem.demuxStream`; this turns its two write targets into one ordered
// queue, so the relative order of stdout and stderr frames is kept.
import { Writable } from "node:stream";
import type { LogChunk, LogStream } from "@vmctl/core/contract";

/** `modem.demuxStream`'s shape: reads `stream`, writes each frame's payload to one of two sinks. */
export type Demux = (stream: NodeJS.ReadableStream, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream) => void;

/** Pause the socket when this many chunks wait for a slow consumer. */
const HIGH_WATER_CHUNKS = 256;

/**
 * A write target that hands each payload on synchronously: ordering across the two
 * sinks is the order of the frames (a buffering Writable could reorder them).
 */
class FrameSink extends Writable {
  readonly #onFrame: (data: Uint8Array) => void;

  constructor(onFrame: (data: Uint8Array) => void) {
    super();
    this.#onFrame = onFrame;
  }

  override write(chunk: unknown): boolean {
    this.#onFrame(chunk instanceof Uint8Array ? chunk : Buffer.from(String(chunk)));
    return true;
  }
}

/**
 * Splits Docker's `timestamps=true` prefix ("2024-05-01T12:34:56.123456789Z ") off a
 * payload; the time is when the daemon received the line.
 */
export function splitTimestamp(data: Uint8Array): { time: Date; data: Uint8Array } | undefined {
  const space = data.indexOf(0x20);
  if (space < 20 || space > 40) return undefined;
  const time = new Date(Buffer.from(data.subarray(0, space)).toString("latin1"));
  if (Number.isNaN(time.getTime())) return undefined;
  return { time, data: data.subarray(space + 1) };
}

/**
 * Yields the frames of a multiplexed Docker stream in order, until it ends. Breaking out
 * of the loop destroys the stream (closing a followed log's HTTP connection).
 */
export async function* demuxed(stream: NodeJS.ReadableStream, demux: Demux, options: { timestamps: boolean }): AsyncGenerator<LogChunk> {
  const queue: LogChunk[] = [];
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  const sink = (name: LogStream): FrameSink =>
    new FrameSink((raw) => {
      const stamped = options.timestamps ? splitTimestamp(raw) : undefined;
      queue.push({ stream: name, data: stamped?.data ?? raw, time: stamped?.time ?? new Date() });
      if (queue.length >= HIGH_WATER_CHUNKS) stream.pause();
      notify();
    });
  const finish = (): void => {
    ended = true;
    notify();
  };
  stream.on("end", finish);
  stream.on("close", finish);
  stream.on("error", (err: unknown) => {
    failure = err;
    finish();
  });
  demux(stream, sink("stdout"), sink("stderr"));
  try {
    for (;;) {
      while (queue.length > 0) yield queue.shift() as LogChunk;
      if (failure !== undefined) throw failure;
      if (ended) return;
      if (stream.isPaused()) stream.resume();
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    if (!ended) (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
  }
}
