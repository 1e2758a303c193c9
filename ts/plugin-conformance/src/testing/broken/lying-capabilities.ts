// Broken: claims pause and logsFollow, but pause()/resume() do nothing and logs() ignores
// follow (returns what exists and ends).
import { brokenProcessTarget } from "./delegate.js";

export const lyingCapabilitiesTarget = brokenProcessTarget({
  capabilities: { pause: true, logsFollow: true },
  controller: (inner) => ({
    pause: async () => undefined,
    resume: async () => undefined,
    logs: () => inner.logs({ follow: false }),
  }),
});
