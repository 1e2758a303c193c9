// Broken: claims exec and runs the command, but never passes stdin on: what is written
// is dropped and the command reads an empty stdin.
import type { ExecProcess } from "@vmctl/core/contract";
import { hostExec } from "../host-exec.js";
import { brokenProcessTarget } from "./delegate.js";

export const deafExecTarget = brokenProcessTarget({
  capabilities: { exec: true },
  controller: () => ({
    exec: async (request): Promise<ExecProcess> => {
      const started = await hostExec({ ...request, stdin: false });
      return {
        exited: started.exited,
        [Symbol.asyncIterator]: () => started[Symbol.asyncIterator](),
        write: async () => undefined,
        closeStdin: async () => undefined,
        resize: (size) => started.resize(size),
        signal: (name) => started.signal(name),
        cancel: () => started.cancel(),
      };
    },
  }),
});
