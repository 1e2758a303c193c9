import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/bin.ts", "src/index.ts"],
  format: ["esm"],
  dts: { entry: "src/index.ts" },
  sourcemap: true,
  clean: true,
  target: "node20",
  // One file per entry with its JS dependencies inside: a CLI pays for every module it
  // resolves at start-up. The addon and the daemon stay external (native code; loaded
  // only by `doctor` and `daemon`).
  noExternal: [/^(?!@vmctl\/native$|@vmctl\/server$)/],
  banner: {
    js: 'import { createRequire as __vmctlCreateRequire } from "node:module"; const require = __vmctlCreateRequire(import.meta.url);',
  },
});
