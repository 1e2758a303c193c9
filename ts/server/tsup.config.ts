import { cpSync } from "node:fs";
import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts", "src/bin.ts"],
  format: ["esm"],
  dts: { entry: "src/index.ts" },
  sourcemap: true,
  clean: true,
  target: "node20",
  // Server reflection reads the .proto files at run time: ship them with the build.
  onSuccess: async () => {
    cpSync("../../proto/vmctl", "dist/proto/vmctl", { recursive: true });
  },
});
