// The "process" target: validates specs, makes controllers, and adopts them after an
// orchestrator restart from the ledger (which process) and the service dir (its files).
import type {
  Capabilities,
  ControllerRecord,
  PluginEnvironment,
  RunInput,
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

  /**
   * `vmctl run --target process [DIR] [-e K=V] -- CMD...`: the command is the args, DIR the
   * directory it runs in, -e adds to env; fields given with --spec win. Returns an untrusted
   * spec: the orchestrator passes it to validate() next, so a missing command is reported
   * there as "spec.args: ...".
   */
  specFromRun(input: RunInput): unknown {
    const explicitEnv = typeof input.spec.env === "object" && input.spec.env !== null ? (input.spec.env as Record<string, unknown>) : {};
    const env = { ...explicitEnv, ...input.env };
    return {
      ...(input.command.length > 0 ? { args: [...input.command] } : {}),
      ...(input.image === undefined ? {} : { cwd: input.image }),
      ...input.spec,
      ...(Object.keys(env).length > 0 ? { env } : {}),
    };
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
