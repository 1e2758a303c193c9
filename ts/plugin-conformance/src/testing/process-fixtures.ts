// Fixtures for "process" targets (the repo's tests/fixtures/vmctl-plugin-process, the
// template, and the broken plugins built on it): specs are { args } run by /bin/sh.
import { fileURLToPath } from "node:url";
import type { ConformanceFixtures } from "../types.js";

/** The plain-JS process target the core's tests use. */
export const PROCESS_PLUGIN_DIR = fileURLToPath(new URL("../../../../tests/fixtures/vmctl-plugin-process", import.meta.url));

/** The template plugin (outside the workspace). */
export const TEMPLATE_DIR = fileURLToPath(new URL("../../../../examples/vmctl-plugin-template", import.meta.url));

export const processFixtures: ConformanceFixtures = {
  specs: {
    exitsWith: (code) => ({ spec: { args: ["sh", "-c", `echo "conformance exit ${code}"; exit ${code}`] }, line: `conformance exit ${code}` }),
    runsUntilStopped: () => ({ spec: { args: ["sh", "-c", "while :; do echo tick; sleep 0.05; done"] }, line: "tick" }),
    // The trap is set before the line is printed, so a stop after the line is ignored.
    ignoresPoliteStop: () => ({ spec: { args: ["sh", "-c", "trap '' TERM INT; echo ignoring; while :; do sleep 0.05; done"] }, line: "ignoring" }),
    invalid: [
      { spec: {}, field: "args" },
      { spec: { args: [] }, field: "args" },
      { spec: { args: ["sh", 3] }, field: "args[1]" },
      { spec: { args: ["true"], cwd: "relative" }, field: "cwd" },
      { spec: { args: ["true"], bogus: 1 }, field: "bogus" },
    ],
  },
};
