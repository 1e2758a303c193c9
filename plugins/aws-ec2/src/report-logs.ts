// A service's output as logs() gives it: what the guest has uploaded to S3 so far and,
// following, what it uploads next, polled until the service has exited. The same shape
// as the target kit's followFiles, over S3 objects instead of files.
import { setTimeout as sleep } from "node:timers/promises";
import type { LogChunk } from "@vmctl/core/contract";
import type { ReportStream, Reports } from "./reports.js";

export interface ReportFollowOptions {
  readonly follow: boolean;
  /** The service has exited: asked before each round of reads. */
  readonly ended: () => Promise<boolean>;
  readonly pollMs: number;
}

export async function* reportChunks(reports: Reports, options: ReportFollowOptions): AsyncGenerator<LogChunk> {
  const sources: { stream: ReportStream; offset: number }[] = [
    { stream: "stdout", offset: 0 },
    { stream: "stderr", offset: 0 },
  ];
  for (;;) {
    // Decide before reading: the guest uploads its output before its exit status, so
    // the read after the exit is seen holds everything.
    const done = !options.follow || (await options.ended());
    for (const source of sources) {
      const data = await reports.readFrom(source.stream, source.offset);
      if (data.byteLength === 0) continue;
      source.offset += data.byteLength;
      yield { stream: source.stream, data, time: new Date() };
    }
    if (done) return;
    await sleep(options.pollMs);
  }
}
