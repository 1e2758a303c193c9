// Broken: destroy() frees nothing — the process keeps running and the ledger keeps its entry.
import { brokenProcessTarget } from "./delegate.js";

export const leakyTarget = brokenProcessTarget({
  controller: () => ({
    destroy: async () => undefined,
  }),
});
