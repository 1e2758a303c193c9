import { defineConfig } from "tsup";

// One file per entry with its JS dependencies inside: a CLI pays for every module it
// resolves at start-up. The addon and the daemon stay external (native code; loaded
// only by `doctor` and `daemon`).
const bundleAll = [/^(?!@vmctl\/native$|@vmctl\/server$)/];

export default defineConfig([
  {
    // The programmatic entry (tests, embedders): ESM with types.
    entry: { index: "src/index.ts" },
    format: ["esm"],
    dts: { entry: "src/index.ts" },
    sourcemap: true,
    target: "node20",
    noExternal: bundleAll,
    banner: {
      js: 'import { createRequire as __vmctlCreateRequire } from "node:module"; const require = __vmctlCreateRequire(import.meta.url);',
    },
  },
  {
    // The command: a CommonJS bundle (cli.cjs) and a small bin that runs it through
    // V8's code cache (see src/bin.ts).
    entry: { cli: "src/program.ts", bin: "src/bin.ts" },
    format: ["cjs"],
    outExtension: () => ({ js: ".cjs" }),
    sourcemap: true,
    target: "node20",
    noExternal: bundleAll,
    // import.meta.url in bundled modules (vmm-client finds the VMM binary with it).
    shims: true,
  },
]);
