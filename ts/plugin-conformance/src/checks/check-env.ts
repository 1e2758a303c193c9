// What each check gets: the harness, the fixtures, budgets, and helpers to make and
// watch services. Every service made through `service()` is destroyed (and anything it
// recorded and left alive is killed) when the check ends, pass or fail.
import { existsSync, readdirSync } from "node:fs";
import type { ExitInfo, JsonValue, Phase, ServiceController, ServiceFactory } from "@vmctl/core/contract";
import type { ConformanceHarness, HarnessContext } from "../harness/conformance-harness.js";
import { holdersOf, isAlive, recordedProcesses } from "../harness/host-processes.js";
import type { ConformanceFixtures, ConformanceTimeouts } from "../types.js";
import { describe, fail, until, within } from "./budget.js";

export interface Service {
  readonly id: string;
  readonly ctx: HarnessContext;
  readonly controller: ServiceController;
  /** The spec as validate() returned it. */
  readonly spec: JsonValue;
}

export interface CheckEnv {
  readonly harness: ConformanceHarness;
  readonly fixtures: ConformanceFixtures;
  readonly timeouts: ConformanceTimeouts;
  readonly exitCodes: readonly number[];
  readonly concurrency: number;
  /**
   * The plugin's package directory when the kit was given one (the CLI always is): the
   * restart checks then run the first orchestrator in a fresh process. Undefined for a
   * registration or factory given in-process, whose restart is simulated in-process.
   */
  readonly pluginPath: string | undefined;
  /**
   * The target's registration as the plugin declared it (its `requires`, untrusted), or
   * undefined when the kit was given a factory rather than a registration or package.
   */
  readonly registration: { readonly requires?: unknown } | undefined;
  /** Budgets a step: fails with "<what> did not finish within N ms" instead of hanging. */
  step<T>(what: string, work: () => Promise<T> | T, ms?: number): Promise<T>;
  /** validate → create (with a fresh context) on `factory` (default the harness's), tracked for teardown. */
  service(spec: unknown, options?: { factory?: ServiceFactory; prefix?: string }): Promise<Service>;
  /** Tracks a controller made elsewhere (by adopt) for teardown. */
  track(service: Service): void;
  /** Adds a line to the check's reason (for passes worth explaining). */
  note(text: string): void;
}

export class CheckSession implements CheckEnv {
  readonly notes: string[] = [];
  readonly #services: Service[] = [];

  constructor(
    readonly harness: ConformanceHarness,
    readonly fixtures: ConformanceFixtures,
    readonly timeouts: ConformanceTimeouts,
    readonly exitCodes: readonly number[],
    readonly concurrency: number,
    readonly pluginPath: string | undefined = undefined,
    readonly registration: { readonly requires?: unknown } | undefined = undefined,
  ) {}

  step<T>(what: string, work: () => Promise<T> | T, ms = this.timeouts.stepMs): Promise<T> {
    return within(ms, what, work);
  }

  async service(spec: unknown, options: { factory?: ServiceFactory; prefix?: string } = {}): Promise<Service> {
    const factory = options.factory ?? this.harness.factory;
    let validated: JsonValue;
    try {
      validated = factory.validate(spec);
    } catch (err) {
      fail(`validate() refused a fixture spec (${JSON.stringify(spec)}): ${describe(err)}`);
    }
    const id = this.harness.serviceId(options.prefix);
    const ctx = this.harness.context(id);
    const controller = await this.step(`create(${id})`, () => factory.create(id, validated, ctx));
    if (controller?.id !== id) fail(`create(${id}) returned a controller whose id is ${JSON.stringify(controller?.id)}`);
    const service = { id, ctx, controller, spec: validated };
    this.#services.push(service);
    return service;
  }

  track(service: Service): void {
    this.#services.push(service);
  }

  note(text: string): void {
    this.notes.push(text);
  }

  /** Destroys every tracked service (budgeted), then kills whatever they recorded and left alive. */
  async teardown(): Promise<string[]> {
    const problems: string[] = [];
    // Newest first: an adopted controller goes before the one it replaced.
    for (const s of [...this.#services].reverse()) {
      try {
        await within(this.timeouts.stepMs, `teardown destroy(${s.id})`, () => s.controller.destroy());
      } catch (err) {
        problems.push(describe(err));
      }
    }
    const killed = this.harness.reap(this.#services.map((s) => s.ctx));
    if (killed.length > 0) problems.push(`the kit had to kill what destroy() left running: ${killed.join(", ")}`);
    return problems;
  }
}

// ---- helpers over a controller ----

/** All output so far, every stream, as text. */
export async function outputOf(c: ServiceController): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of c.logs()) text += decoder.decode(chunk.data, { stream: true });
  return text + decoder.decode();
}

/** Waits until the output contains `line`; fails early (with the exit) if the service ends first. */
export async function untilOutput(env: CheckEnv, s: Service, line: string): Promise<void> {
  let last = "";
  await until(env.timeouts.stepMs, `output of ${s.id} to contain ${JSON.stringify(line)} (last output: ${JSON.stringify(tail(last))})`, async () => {
    last = await outputOf(s.controller);
    if (last.includes(line)) return true;
    const state = await s.controller.state();
    if (state.phase === "exited") {
      last = await outputOf(s.controller);
      if (last.includes(line)) return true;
      fail(`${s.id} exited (${exitText(state.exit)}) without printing ${JSON.stringify(line)}; output: ${JSON.stringify(tail(last))}`);
    }
    return undefined;
  });
}

/** Waits until state().phase is one of `phases`. */
export async function untilPhase(env: CheckEnv, s: Service, phases: readonly Phase[]): Promise<Phase> {
  let seen: Phase | undefined;
  return until(env.timeouts.stepMs, `${s.id} to reach phase ${phases.join("/")} (last seen: ${seen})`, async () => {
    const state = await s.controller.state();
    seen = state.phase;
    if (phases.includes(state.phase)) return state.phase;
    if (state.phase === "exited") fail(`${s.id} exited (${exitText(state.exit)}) while the kit waited for ${phases.join("/")}`);
    return undefined;
  });
}

export function exitText(exit: ExitInfo | undefined): string {
  if (!exit) return "no exit info";
  const parts = [`code ${exit.code}`, `reason ${exit.reason}`];
  if (exit.signal) parts.push(`signal ${exit.signal}`);
  if (exit.detail) parts.push(exit.detail);
  return parts.join(", ");
}

export function tail(text: string, n = 200): string {
  return text.length <= n ? text : `…${text.slice(-n)}`;
}

/** Starts a service and waits until it runs (and printed `line`, when given). */
export async function startRunning(env: CheckEnv, s: Service, line?: string): Promise<void> {
  await env.step(`prepare(${s.id})`, () => s.controller.prepare());
  await env.step(`start(${s.id})`, () => s.controller.start());
  await untilPhase(env, s, ["running"]);
  if (line !== undefined) await untilOutput(env, s, line);
}

/**
 * destroy() twice (the second must be a no-op), then: nothing left in the ledger, no
 * process it recorded alive, nothing holding its serviceDir. Files left inside the
 * serviceDir are allowed (the orchestrator removes the dir after destroy) and noted.
 */
export async function destroyAndCheckFreed(env: CheckEnv, s: Service): Promise<void> {
  await env.step(`destroy(${s.id})`, () => s.controller.destroy());
  await env.step(`second destroy(${s.id})`, () => s.controller.destroy());
  const left = s.ctx.resources.list();
  if (left.length > 0) {
    fail(`destroy() left ${left.length} resource(s) in the ledger, never released: ${left.map((r) => `${r.kind} ${r.key}`).join(", ")}`);
  }
  const recorded = recordedProcesses(s.ctx.resources.history());
  let alive = recorded;
  const deadline = Date.now() + 1000;
  while ((alive = recorded.filter(isAlive)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  if (alive.length > 0) {
    fail(`destroy() released its resources but these processes still run: ${alive.map((p) => `${p.resource} pid ${p.pid}`).join(", ")}`);
  }
  const holders = holdersOf(s.ctx.serviceDir);
  if (holders.size > 0) {
    fail(`after destroy() processes still hold the serviceDir ${s.ctx.serviceDir}: ${[...holders.values()].join(", ")}`);
  }
  if (existsSync(s.ctx.serviceDir)) {
    const files = readdirSync(s.ctx.serviceDir);
    if (files.length > 0) env.note(`serviceDir kept ${files.join(", ")} (allowed: the orchestrator removes it after destroy)`);
  }
}
