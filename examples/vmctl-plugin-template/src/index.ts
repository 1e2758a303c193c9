// The plugin's entry (package.json "vmctl.entry" points at its build, dist/index.js):
// a PluginRegistration as plain data. Nothing runs at import time; the orchestrator
// calls init once per start-up with the target's state dir and options.
import type { PluginRegistration } from "@vmctl/core/contract";
import { ProcessFactory } from "./process-factory.js";

const plugin: PluginRegistration = {
  name: "vmctl-plugin-template",
  targets: [
    {
      target: "process",
      // Return undefined here when the host cannot run this target (a missing binary):
      // the target is then "skipped", not "failed".
      init: (env) => new ProcessFactory(env),
    },
  ],
};

export default plugin;
