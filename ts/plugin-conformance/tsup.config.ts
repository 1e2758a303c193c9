import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts", "src/cli.ts"],
  format: ["esm"],
  dts: { entry: "src/index.ts" },
  sourcemap: true,
  clean: true,
  target: "node20",
  // @vmctl/core is a peer: the kit loads plugins against the host's copy, never a bundled one.
  external: ["@vmctl/core"],
});
