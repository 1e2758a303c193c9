// For the restart-at-every-phase test: target "gated", the process fixture with two
// additions. It can hold still at a chosen point (VMCTL_TEST_HOLD=prepare|start|destroy,
// announced as "HOLD <point>" on stdout) so a test can kill -9 the orchestrator right
// there; and it can pause (SIGSTOP/SIGCONT of the process group), so "paused" can be
// crossed with a restart too. Without VMCTL_TEST_HOLD it behaves as the process target.
import { readFileSync } from "node:fs";
import type { PluginEnvironment, PluginRegistration } from "../contract/plugin.js";
import type { ServiceController, ServiceFactory, TargetContext } from "../contract/target.js";
import type { ControllerRecord, JsonValue, ServiceState } from "../contract/types.js";

type FactoryClass = new (env: PluginEnvironment) => ServiceFactory & { close?(): Promise<void> };
const { ProcessFactory } = (await import(new URL("../../../../tests/fixtures/vmctl-plugin-process/lib/process-factory.js", import.meta.url).href)) as {
  ProcessFactory: FactoryClass;
};

type HoldPoint = "prepare" | "start" | "destroy";

/** Blocks forever at `point` when this process was told to hold there. */
async function maybeHold(point: HoldPoint): Promise<void> {
  if (process.env.VMCTL_TEST_HOLD !== point) return;
  process.stdout.write(`HOLD ${point}\n`);
  // A pending promise alone does not keep Node running: a timer does, until the kill.
  await new Promise<never>(() => setInterval(() => undefined, 60_000));
}

function isStopped(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
  } catch {
    return false;
  }
}

/** Signals are delivered asynchronously: waits (briefly) until the process shows the wanted state. */
async function untilStopped(pid: number, stopped: boolean): Promise<void> {
  for (let i = 0; i < 200 && isStopped(pid) !== stopped; i++) await new Promise((r) => setTimeout(r, 5));
}

class GatedController implements ServiceController {
  constructor(private readonly inner: ServiceController) {}

  get id(): string {
    return this.inner.id;
  }

  async prepare(): Promise<void> {
    await this.inner.prepare();
    await maybeHold("prepare");
  }

  async start(): Promise<void> {
    await this.inner.start();
    // Held after the process runs: the target has started it, the engine does not know yet.
    await maybeHold("start");
  }

  async stop(options?: { timeoutMs?: number }): Promise<void> {
    const { pid } = await this.inner.state();
    // A stopped process cannot act on SIGTERM; thaw it first, as a real target would.
    if (pid !== undefined && isStopped(pid)) process.kill(-pid, "SIGCONT");
    await this.inner.stop(options);
  }

  async pause(): Promise<void> {
    const { pid } = await this.inner.state();
    if (pid === undefined) return;
    process.kill(-pid, "SIGSTOP");
    await untilStopped(pid, true);
  }

  async resume(): Promise<void> {
    const { pid } = await this.inner.state();
    if (pid === undefined) return;
    process.kill(-pid, "SIGCONT");
    await untilStopped(pid, false);
  }

  async state(): Promise<ServiceState> {
    const state = await this.inner.state();
    return state.phase === "running" && state.pid !== undefined && isStopped(state.pid) ? { ...state, phase: "paused" } : state;
  }

  logs(options?: { follow?: boolean }): ReturnType<ServiceController["logs"]> {
    return this.inner.logs(options);
  }

  wait(): ReturnType<ServiceController["wait"]> {
    return this.inner.wait();
  }

  async destroy(): Promise<void> {
    await maybeHold("destroy");
    await this.inner.destroy();
  }

  record(): JsonValue {
    return this.inner.record();
  }
}

class GatedFactory implements ServiceFactory {
  readonly target = "gated";
  readonly capabilities = { exec: false, pause: true, network: false, volumes: false, logsFollow: true };
  readonly #inner: InstanceType<FactoryClass>;

  constructor(env: PluginEnvironment) {
    this.#inner = new ProcessFactory(env);
  }

  validate(spec: unknown): JsonValue {
    return this.#inner.validate(spec) as JsonValue;
  }

  async create(id: string, spec: JsonValue, ctx: TargetContext): Promise<ServiceController> {
    return new GatedController(await this.#inner.create(id, spec, ctx));
  }

  async adopt(record: ControllerRecord, ctx: TargetContext): Promise<ServiceController | undefined> {
    const inner = await this.#inner.adopt(record, ctx);
    return inner === undefined ? undefined : new GatedController(inner);
  }

  async close(): Promise<void> {
    await this.#inner.close?.();
  }
}

export const gatedPlugin: PluginRegistration = {
  name: "gated-process (test)",
  targets: [{ target: "gated", init: (env) => new GatedFactory(env) }],
};
