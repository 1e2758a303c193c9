import { defineConfig } from "tsup";
import type { Plugin } from "esbuild";

// One file per entry with its JS dependencies inside: a CLI pays for every module it
// resolves at start-up. The addon and the daemon stay external (native code; loaded
// only by `doctor` and `daemon`).
const bundleAll = [/^(?!@vmctl\/native$|@vmctl\/server$)/];

/**
 * cli.cjs leaves src/heavy.ts out: load-heavy.ts's import("./heavy.js") becomes the
 * external ./client.cjs, the bundle made of it (bin.ts loads it with its code cache).
 */
const heavyApart: Plugin = {
  name: "vmctl-heavy-apart",
  setup(build) {
    build.onResolve({ filter: /^\.\/heavy\.js$/ }, () => ({ path: "./client.cjs", external: true }));
  },
};

/**
 * commander requires child_process at its top but only spawns with it for executable
 * subcommands, which vmctl has none of: a require on first use instead keeps child_process
 * (and net, dgram, streams behind it) out of every start (~3 ms).
 */
const lazyChildProcessInCommander: Plugin = {
  name: "vmctl-lazy-child-process",
  setup(build) {
    build.onResolve({ filter: /^(node:)?child_process$/ }, (args) =>
      /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer) ? { path: "child_process", namespace: "vmctl-lazy" } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "vmctl-lazy" }, () => ({
      contents: `let m; module.exports = new Proxy({}, { get: (_, key) => (m ??= require("node:child_process"))[key] });`,
      loader: "js",
    }));
  },
};

/**
 * client.cjs takes @vmctl/core/contract from cli.cjs (load-heavy.ts hands it over): one
 * VmctlError class for the client that throws it and the verbs that test for it.
 */
const sharedContract: Plugin = {
  name: "vmctl-shared-contract",
  setup(build) {
    build.onResolve({ filter: /^@vmctl\/core\/contract$/ }, () => ({ path: "contract", namespace: "vmctl-shared" }));
    build.onLoad({ filter: /.*/, namespace: "vmctl-shared" }, () => ({
      contents: `const c = globalThis[Symbol.for("vmctl.cli.contract")]; if (!c) throw new Error("client.cjs runs only under cli.cjs"); module.exports = c;`,
      loader: "js",
    }));
  },
};

export default defineConfig([
  {
    // The programmatic entry (tests, embedders): ESM with types.
    entry: { index: "src/index.ts" },
    format: ["esm"],
    dts: { entry: "src/index.ts" },
    // One file, as before: the verbs' on-demand import()s stay inside it.
    splitting: false,
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
    esbuildPlugins: [heavyApart, lazyChildProcessInCommander],
    // Else tsup's own plugin takes every node: import before lazyChildProcessInCommander sees it.
    removeNodeProtocol: false,
    // import.meta.url in bundled modules (vmm-client finds the VMM binary with it).
    shims: true,
  },
  {
    // The gRPC part of the command (src/heavy.ts), loaded on demand (src/load-heavy.ts).
    entry: { client: "src/heavy.ts" },
    format: ["cjs"],
    outExtension: () => ({ js: ".cjs" }),
    sourcemap: true,
    target: "node20",
    noExternal: bundleAll,
    esbuildPlugins: [sharedContract],
    shims: true,
  },
]);
