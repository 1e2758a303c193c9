// Pause, resume and exec: calls on a running service that only some targets support
// (their factory's capabilities say which). A target without the capability is
// FAILED_PRECONDITION naming the target, before its controller is asked anything.
import type { ExecProcess, ExecRequest, ServiceController } from "../contract/target.js";
import { ValidationError, VmctlError } from "../errors.js";
import { canonicalSignal } from "../target-kit/signals.js";
import type { PluginRegistry } from "../plugins/plugin-registry.js";
import type { StoredService } from "../state/service-row.js";
import type { LiveService, ServiceTable } from "./service-table.js";

export class RunningServiceCalls {
  readonly #services: ServiceTable;
  readonly #registry: PluginRegistry;

  constructor(services: ServiceTable, registry: PluginRegistry) {
    this.#services = services;
    this.#registry = registry;
  }

  /** Call under the service's lock. Pausing a paused service is a no-op. */
  async pause(id: string): Promise<StoredService> {
    const { service, live } = this.#capable(id, "pause");
    if (service.phase === "paused") return service;
    if (service.phase !== "running") throw notRunning(service, "pause");
    await this.#call(id, live.controller, `pausing service ${service.name}`, () => live.controller.pause?.());
    return this.#services.refresh(id, live.controller);
  }

  /** Call under the service's lock. Resuming a running service is a no-op. */
  async resume(id: string): Promise<StoredService> {
    const { service, live } = this.#capable(id, "pause");
    if (service.phase === "running") return service;
    if (service.phase !== "paused") throw notRunning(service, "resume", "paused");
    await this.#call(id, live.controller, `resuming service ${service.name}`, () => live.controller.resume?.());
    return this.#services.refresh(id, live.controller);
  }

  /**
   * Not under the service's lock: an exec may run long, and a stop must still get through.
   * The process is the target's, with the caller's signal names checked first.
   */
  async exec(id: string, request: ExecRequest): Promise<ExecProcess> {
    const { service, live } = this.#capable(id, "exec");
    if (service.phase !== "running") throw notRunning(service, "exec in");
    const exec = live.controller.exec;
    if (exec === undefined) throw new VmctlError("INTERNAL", `target ${service.target} claims exec but its controller has no exec()`, { details: { target: service.target } });
    try {
      return withCheckedSignals(await exec.call(live.controller, request));
    } catch (err) {
      throw VmctlError.from(err, `exec in service ${service.name}`);
    }
  }

  /**
   * A tar stream of `path` in the service: while it runs (or is paused) and after its exit,
   * until it is deleted. Not under the service's lock: a large copy must not hold up a stop.
   */
  copyOut(id: string, path: string): AsyncIterable<Uint8Array> {
    const { service, live } = this.#capable(id, "copy");
    if (!["running", "paused", "exited"].includes(service.phase)) throw notRunning(service, "copy out of", "running or exited");
    const copyOut = live.controller.copyOut;
    if (copyOut === undefined) throw new VmctlError("INTERNAL", `target ${service.target} claims copy but its controller has no copyOut()`, { details: { target: service.target } });
    const name = service.name;
    return (async function* () {
      try {
        yield* copyOut.call(live.controller, path);
      } catch (err) {
        throw VmctlError.from(err, `copy ${path} out of service ${name}`);
      }
    })();
  }

  /** The service and its controller, if its target claims `capability`; else FAILED_PRECONDITION naming the target. */
  #capable(id: string, capability: "pause" | "exec" | "copy"): { service: StoredService; live: LiveService } {
    const service = this.#services.require(id);
    const factory = this.#registry.tryFactory(service.target);
    if (factory !== undefined && factory.capabilities[capability] !== true) {
      throw new VmctlError("FAILED_PRECONDITION", `target ${service.target} does not support ${capability}`, {
        details: { serviceId: id, target: service.target },
      });
    }
    return { service, live: this.#services.requireLive(service) };
  }

  /** Runs a controller call; on failure records what the target now says, then throws the error in context. */
  async #call(id: string, controller: ServiceController, context: string, fn: () => Promise<void> | undefined): Promise<void> {
    try {
      await fn();
    } catch (err) {
      await this.#services.refresh(id, controller).catch(() => undefined);
      throw VmctlError.from(err, context);
    }
  }
}

function notRunning(service: StoredService, action: string, expected = "running"): VmctlError {
  return new VmctlError("FAILED_PRECONDITION", `cannot ${action} service ${service.name}: it is ${service.phase}, not ${expected}`, {
    details: { serviceId: service.id },
  });
}

/** `process`, its signal() taking "INT", "SIGINT" or "2" and refusing a name no signal has. */
function withCheckedSignals(process: ExecProcess): ExecProcess {
  return {
    exited: process.exited,
    [Symbol.asyncIterator]: () => process[Symbol.asyncIterator](),
    write: (data) => process.write(data),
    closeStdin: () => process.closeStdin(),
    resize: (size) => process.resize(size),
    signal: (name) => {
      const signal = canonicalSignal(name);
      if (signal === undefined) return Promise.reject(new ValidationError("signal", `${JSON.stringify(name.slice(0, 64))} is not a signal`));
      return process.signal(signal);
    },
    cancel: () => process.cancel(),
  };
}
