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
import { MAIN, ProcessController } from "./process-controller.js";
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
    // The shim's files in the service dir say the rest; the ledger says whether start() had begun
    // (if it was killed before the shim ran, the service reads as exited, reason "lost").
    const started = record.resources.some((r) => r.kind === MAIN.kind && r.key === MAIN.key);
    return new ProcessController(record.id, record.spec as ProcessSpec, ctx, started);
  }
}
