// The "process" target: validates specs, makes controllers, and adopts them after an
// orchestrator restart from the ledger (which process) and the service dir (its files).
import type {
  Capabilities,
  ControllerRecord,
  PluginEnvironment,
  ServiceController,
  ServiceFactory,
  TargetContext,
} from "@vmctl/core/contract";
import { ProcessController, type MainProcess } from "./process-controller.js";
import { parseSpec, type ProcessSpec } from "./spec.js";

export class ProcessFactory implements ServiceFactory<ProcessSpec> {
  readonly target = "process";
  /** Claim only what works: the conformance kit exercises every claimed capability. */
  readonly capabilities: Capabilities = { exec: false, pause: false, network: false, volumes: false, logsFollow: true };

  constructor(readonly env: PluginEnvironment) {}

  validate(spec: unknown): ProcessSpec {
    return parseSpec(spec);
  }

  async create(id: string, spec: ProcessSpec, ctx: TargetContext): Promise<ServiceController> {
    // Makes nothing yet: start() does, after recording it.
    return new ProcessController(id, spec, ctx);
  }

  async adopt(record: ControllerRecord, ctx: TargetContext): Promise<ServiceController | undefined> {
    const main = record.resources.find((r) => r.kind === "process" && r.key === "main");
    const controller = new ProcessController(record.id, record.spec as ProcessSpec, ctx);
    // Never started: nothing outside the service dir was made, the controller is "created".
    if (main === undefined) return controller;
    controller.reattach((main.data ?? {}) as Partial<MainProcess>);
    return controller;
  }
}
