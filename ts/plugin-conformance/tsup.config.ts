import { defineConfig } from "tsup";

export default defineConfig({
  // first-orchestrator: the process the restart checks start and kill (dist/first-orchestrator.js).
  entry: { index: "src/index.ts", cli: "src/cli.ts", "first-orchestrator": "src/restart/first-orchestrator.ts" },
  format: ["esm"],
  dts: { entry: "src/index.ts" },
  sourcemap: true,
  clean: true,
  target: "node20",
  // @vmctl/core is a peer: the kit loads plugins against the host's copy, never a bundled one.
  external: ["@vmctl/core"],
});
