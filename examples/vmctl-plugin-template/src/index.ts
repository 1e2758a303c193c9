// The plugin's entry (package.json "vmctl.entry" points at its build, dist/index.js):
// a PluginRegistration as plain data. Nothing runs at import time; the orchestrator
// calls init once per start-up with the target's state dir and options.
import { existsSync } from "node:fs";
import { SkipTarget, type PluginRegistration } from "@vmctl/core/contract";
import { ProcessFactory } from "./process-factory.js";

const plugin: PluginRegistration = {
  name: "vmctl-plugin-template",
  targets: [
    {
      target: "process",
      // What the target needs on the host, as data: `vmctl doctor` lists each (met or
      // not, and the fix) from this, without calling init. Kinds: binary (PATH and the
      // sbin dirs), device, file (/proc and /sys features), socket.
      requires: [{ kind: "binary", name: "sh", package: "dash", why: "runs each service's command under the kit's shim" }],
      init: (env) => {
        // When the host cannot run the target, throw SkipTarget with the reason: the target
        // is "skipped" (not "failed"), and `vmctl targets` shows why. (Returning undefined
        // skips it too, but only as "not applicable on this host".)
        if (!existsSync("/bin/sh")) throw new SkipTarget("no /bin/sh on this host");
        // env.log is the daemon's log, each line labelled with this plugin and target.
        env.log.info("process target ready", { stateDir: env.stateDir });
        return new ProcessFactory(env);
      },
    },
  ],
};

export default plugin;
