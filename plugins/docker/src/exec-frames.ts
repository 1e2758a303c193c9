// Docker's multiplexed stream of an exec without a TTY: frames of an 8-byte header
// (stream type, 3 zero bytes, payload length as uint32 big-endian) and the payload.
// A pure, incremental parser: the caller feeds it what it read off the socket, when it
// wants more, and gets that read's payloads back. A payload is handed on in the pieces it
// arrived in (never collected whole), so memory stays at one socket read however large
// Docker's frames are. (dockerode's modem.demuxStream reads in flowing mode and would
// ignore a slow reader.)
import type { ExecOutput } from "@vmctl/core/contract";
import { VmctlError } from "@vmctl/core/contract";

const HEADER_BYTES = 8;

/** Docker's stream types (stdcopy): stdin (echoed), stdout, stderr, and the daemon's own errors. */
const STREAMS: Readonly<Record<number, ExecOutput["stream"]>> = { 0: "stdout", 1: "stdout", 2: "stderr", 3: "stderr" };

export class FrameDemuxer {
  /** The header read so far (a header may be split across reads). */
  readonly #header = Buffer.alloc(HEADER_BYTES);
  #headerFilled = 0;
  /** Payload bytes of the current frame still to come; 0 when a header comes next. */
  #payloadLeft = 0;
  #stream: ExecOutput["stream"] = "stdout";

  /** The payload pieces in `data`, in order (views into it: no copy). */
  push(data: Uint8Array): ExecOutput[] {
    const out: ExecOutput[] = [];
    let at = 0;
    while (at < data.byteLength) {
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, data.byteLength - at);
        out.push({ stream: this.#stream, data: data.subarray(at, at + take) });
        this.#payloadLeft -= take;
        at += take;
        continue;
      }
      const take = Math.min(HEADER_BYTES - this.#headerFilled, data.byteLength - at);
      this.#header.set(data.subarray(at, at + take), this.#headerFilled);
      this.#headerFilled += take;
      at += take;
      if (this.#headerFilled === HEADER_BYTES) this.#startFrame();
    }
    return out;
  }

  /** True when the stream may end here: not inside a header or a payload. */
  get atFrameBoundary(): boolean {
    return this.#headerFilled === 0 && this.#payloadLeft === 0;
  }

  #startFrame(): void {
    this.#headerFilled = 0;
    const type = this.#header[0] ?? -1;
    const stream = STREAMS[type];
    if (stream === undefined) {
      throw new VmctlError("INTERNAL", `the Docker daemon sent an exec output frame of unknown type ${type}`, { details: { target: "docker" } });
    }
    this.#stream = stream;
    this.#payloadLeft = this.#header.readUInt32BE(4);
  }
}
