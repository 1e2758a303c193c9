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
import { ProcessController } from "./process-controller.js";
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
    // The shim's files in the service dir say the rest. A start() killed before the shim ran
    // (the ledger names it, but no pid or exit file exists) made nothing that runs: the
    // service is still "created", and the orchestrator starts it again.
    return new ProcessController(record.id, record.spec as ProcessSpec, ctx);
  }
}
