import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  // @vmctl/core is a peer: the orchestrator's copy is the one used, never a bundled one.
  external: ["@vmctl/core"],
});
