// Broken: stop() sends the polite SIGTERM (recording the stop, as the real target does)
// and then waits for the exit however long it takes, ignoring the caller's timeoutMs: a
// workload that ignores SIGTERM is never forced.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { brokenProcessTarget } from "./delegate.js";

export const stubbornStopTarget = brokenProcessTarget({
  controller: (inner, ctx) => ({
    stop: async () => {
      const { pid, phase } = await inner.state();
      if (phase === "exited" || pid === undefined) return;
      writeFileSync(join(ctx.serviceDir, "stopped"), "TERM");
      process.kill(pid, "SIGTERM");
      await inner.wait();
    },
  }),
});
