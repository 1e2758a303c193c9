// Runs the checks against one target: one harness (temp state dir, one factory as the
// running orchestrator), each check in turn within its budget, each torn down after.
import { resolve } from "node:path";
import type { Check } from "./checks/check.js";
import { CheckSession } from "./checks/check-env.js";
import { CheckFailure, NotClaimed, describe, within } from "./checks/budget.js";
import { allChecks, DEFAULT_EXIT_CODES } from "./checks/index.js";
import { ConformanceHarness } from "./harness/conformance-harness.js";
import { resolvePlugin, type ResolvedPlugin } from "./load-plugin.js";
import { DEFAULT_TIMEOUTS, type CheckResult, type ConformanceConfig, type ConformanceReport, type ConformanceTimeouts } from "./types.js";

/** A started run: checks can be run one at a time (the test-framework adapter does). */
export class ConformanceRun {
  readonly checks: readonly Check[];
  readonly #timeouts: ConformanceTimeouts;
  readonly #results: CheckResult[] = [];
  readonly #started = Date.now();

  private constructor(
    readonly config: ConformanceConfig,
    readonly plugin: ResolvedPlugin,
    readonly harness: ConformanceHarness,
  ) {
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...config.fixtures.timeouts };
    this.checks = checksFor(config);
  }

  static async open(config: ConformanceConfig): Promise<ConformanceRun> {
    const plugin = await resolvePlugin(config, config.target);
    const harness = await ConformanceHarness.open(plugin.init, {
      target: plugin.target,
      ...(config.options?.targetOptions ? { targetOptions: config.options.targetOptions } : {}),
      ...(config.options?.tmpDir ? { tmpDir: config.options.tmpDir } : {}),
      ...(config.options?.images ? { images: true } : {}),
    });
    return new ConformanceRun(config, plugin, harness);
  }

  async run(check: Check): Promise<CheckResult> {
    const t = this.#timeouts;
    const session = new CheckSession(
      this.harness,
      this.config.fixtures,
      t,
      this.config.options?.exitCodes ?? DEFAULT_EXIT_CODES,
      this.config.options?.concurrency ?? 4,
      this.config.pluginPath === undefined ? undefined : resolve(this.config.pluginPath),
      this.plugin.registration,
    );
    const start = Date.now();
    let status: CheckResult["status"] = "pass";
    let reason: string | undefined;
    try {
      await within(t.checkMs, `check ${check.name}`, () => check.run(session));
    } catch (err) {
      if (err instanceof NotClaimed) {
        status = "skip-not-claimed";
        reason = err.message;
      } else {
        status = "fail";
        reason = err instanceof CheckFailure ? err.message : `threw ${describe(err)}`;
      }
    }
    const problems = await session.teardown();
    if (problems.length > 0) {
      const text = `cleanup: ${problems.join("; ")}`;
      if (status === "fail") reason = `${reason}; ${text}`;
      else {
        status = "fail";
        reason = reason ? `${reason}; ${text}` : text;
      }
    }
    if (status === "pass" && session.notes.length > 0) reason = session.notes.join("; ");
    const result: CheckResult = { name: check.name, status, ...(reason === undefined ? {} : { reason }), durationMs: Date.now() - start };
    this.#results.push(result);
    return result;
  }

  report(): ConformanceReport {
    return {
      plugin: this.plugin.plugin,
      target: this.plugin.target,
      capabilities: { ...this.harness.factory.capabilities },
      checks: [...this.#results],
      ok: this.#results.every((r) => r.status !== "fail"),
      durationMs: Date.now() - this.#started,
    };
  }

  close(): Promise<void> {
    return this.harness.close();
  }
}

/** The checks a config selects, in order. */
export function checksFor(config: Pick<ConformanceConfig, "options">): Check[] {
  const only = config.options?.only;
  return allChecks(config.options?.exitCodes ?? DEFAULT_EXIT_CODES).filter((c) => only === undefined || only.test(c.name));
}

/** Runs every check against the plugin's target and reports each; never throws for a failing plugin. */
export async function runConformance(config: ConformanceConfig): Promise<ConformanceReport> {
  const started = Date.now();
  let run: ConformanceRun;
  try {
    run = await ConformanceRun.open(config);
  } catch (err) {
    // The plugin cannot even be loaded or initialised: one failing check says why.
    const durationMs = Date.now() - started;
    return {
      plugin: config.pluginPath ?? config.registration?.name ?? "factory",
      target: config.target ?? "?",
      capabilities: {},
      checks: [{ name: "plugin/load", status: "fail", reason: describe(err), durationMs }],
      ok: false,
      durationMs,
    };
  }
  try {
    for (const check of run.checks) await run.run(check);
    return run.report();
  } finally {
    await run.close();
  }
}
