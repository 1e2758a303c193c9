import test from "ava";
import { progressStream, type ProgressOrResult } from "./progress-stream.js";
import type { ItemProgressSink } from "./image-store-api.js";

async function collect<T>(stream: AsyncIterable<ProgressOrResult<T>>): Promise<ProgressOrResult<T>[]> {
  const out: ProgressOrResult<T>[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

test("progress in order of arrival, a newer event for the same phase and item replacing one not yet read, then the result", async (t) => {
  const got = await collect(
    progressStream(async (progress) => {
      progress({ phase: "download", item: "a", current: 1, total: 9 });
      progress({ phase: "download", item: "b", current: 1, total: 9 });
      progress({ phase: "download", item: "a", current: 5, total: 9 });
      progress({ phase: "unpack", item: "a" });
      return 42;
    }, new AbortController().signal),
  );
  t.deepEqual(got, [
    { progress: { phase: "download", item: "b", current: 1, total: 9 } },
    { progress: { phase: "download", item: "a", current: 5, total: 9 } },
    { progress: { phase: "unpack", item: "a" } },
    { result: 42 },
  ]);
});

test("a failure comes after the progress before it; a synchronous throw is a failure too", async (t) => {
  const seen: unknown[] = [];
  await t.throwsAsync(
    async () => {
      for await (const item of progressStream(async (progress) => {
        progress({ phase: "resolve" });
        await new Promise((r) => setTimeout(r, 5));
        throw new Error("registry unreachable");
      }, new AbortController().signal)) seen.push(item);
    },
    { message: "registry unreachable" },
  );
  t.deepEqual(seen, [{ progress: { phase: "resolve" } }]);
  await t.throwsAsync(
    collect(
      progressStream(() => {
        throw new Error("at once");
      }, new AbortController().signal),
    ),
    { message: "at once" },
  );
});

test("an abort ends the stream at once; the work goes on, and its later failure is nobody's unhandled rejection", async (t) => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => void rejections.push(reason);
  process.on("unhandledRejection", onRejection);
  try {
    const abort = new AbortController();
    let sink: ItemProgressSink | undefined;
    let fail!: (err: Error) => void;
    const work = new Promise<number>((_, reject) => (fail = reject));
    const seen: unknown[] = [];
    const reading = (async () => {
      for await (const item of progressStream((progress) => ((sink = progress), work), abort.signal)) seen.push(item);
    })();
    sink?.({ phase: "download", item: "a" });
    await new Promise((r) => setTimeout(r, 5));
    abort.abort();
    await reading;
    sink?.({ phase: "download", item: "b" });
    fail(new Error("later"));
    await new Promise((r) => setTimeout(r, 20));
    t.deepEqual(seen, [{ progress: { phase: "download", item: "a" } }]);
    t.deepEqual(rejections, []);
  } finally {
    process.off("unhandledRejection", onRejection);
  }
});
