// An AgentWorkload with the controller's side as plain as it is (the exit kept here, no
// VMM), against the real vmctl-agent outside any VM (agent/testing.ts).
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { ExitInfo } from "@vmctl/core/contract";
import { serviceLayout, type ServiceLayout } from "../layout.js";
import type { VmAgent, VmWorkspace } from "../vm-config.js";
import { AgentWorkload } from "../workload.js";
import { testContext, type TestContext } from "./context.js";

/** The controller's side of an AgentWorkload, as plain as it is: the exit kept here, no VMM. */
export function serviceFor(dir: string, id: string) {
  const ctx: TestContext = testContext(dir, id);
  const layout: ServiceLayout = serviceLayout(ctx.serviceDir, join(ctx.serviceDir, "vmm.sock"));
  let exit: ExitInfo | undefined;
  let keptWhenSettled: string[] | undefined;
  let settled!: (e: ExitInfo) => void;
  const exited = new Promise<ExitInfo>((resolve) => (settled = resolve));
  const workload = new AgentWorkload({
    id,
    ctx,
    layout,
    settle: (e) => {
      if (exit) return exit;
      exit = e;
      // What was kept by the time anyone can see the exit.
      keptWhenSettled = existsSync(layout.capturedDir) ? readdirSync(layout.capturedDir).sort() : [];
      settled(e);
      return e;
    },
    exitKnown: () => exit !== undefined,
    stopRequested: () => false,
    vmmClient: () => undefined,
  });
  return { ctx, layout, workload, exited, keptWhenSettled: () => keptWhenSettled };
}

export function vmAgent(args: string[], env: string[], workspace?: VmWorkspace): VmAgent {
  return {
    initrd: "",
    vsock: { guestCid: 3, udsPath: "" },
    relaySocket: "",
    port: 1024,
    hostname: "test",
    workload: { args, imageEnv: [], env },
    ...(workspace === undefined ? {} : { workspace }),
  };
}

