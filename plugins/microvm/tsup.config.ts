import { defineConfig } from "tsup";

export default defineConfig({
  // kernel-cache: its own entry, so `vmctl kernel` and `vmctl doctor` load it without the target.
  entry: ["src/index.ts", "src/kernel-cache.ts"],
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  // @vmctl/core is a peer: the orchestrator's copy is the one used, never a bundled one.
  // @vmctl/vmm-client, @vmctl/proto, grpc-js and tar are regular dependencies, loaded from node_modules.
  external: ["@vmctl/core", "@vmctl/vmm-client", "@vmctl/proto", "@grpc/grpc-js", "tar"],
});
