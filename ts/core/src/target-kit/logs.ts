import { changeIn } from "./dir-change.js";
import { readFrom } from "./files.js";

/** One output file of a service and the stream its bytes belong to. */
export interface LogFile<S extends string = string> {
  readonly stream: S;
  readonly path: string;
}

export interface FollowOptions {
  /** Keep reading as the files grow until `ended()` (default false: what is there now, then done). */
  readonly follow?: boolean | undefined;
  /** Nothing more will be written (the service has exited): asked before each round of reads. */
  readonly ended: () => boolean | Promise<boolean>;
  /** The directory whose changes (the files growing, an exit file appearing) wake the follower. */
  readonly dir: string;
  /** The longest wait between two rounds of reads when no change wakes it. */
  readonly maxWaitMs: number;
}

/**
 * The contents of `files`, each from its start, as chunks tagged with their stream (a
 * `LogChunk` for `logs()`). Following, it reads each file again from where it stopped
 * whenever `dir` changes, until `ended()`: that is decided before the round of reads, so
 * the last round comes after the end and drains everything written.
 */
export async function* followFiles<S extends string>(
  files: readonly LogFile<S>[],
  options: FollowOptions,
): AsyncGenerator<{ stream: S; data: Uint8Array; time: Date }> {
  const offsets = files.map(() => 0);
  for (;;) {
    const last = !options.follow || (await options.ended());
    for (const [i, file] of files.entries()) {
      for await (const data of readFrom(file.path, offsets[i] ?? 0)) {
        offsets[i] = (offsets[i] ?? 0) + data.byteLength;
        yield { stream: file.stream, data, time: new Date() };
      }
    }
    if (last) return;
    await changeIn(options.dir, options.maxWaitMs);
  }
}
