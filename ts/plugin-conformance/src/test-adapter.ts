// Registers the checks as tests of the caller's framework: one ava test per check (serial,
// one shared run closed by after.always), or one node:test test with a subtest per check.
// A failing check fails its test with the check's reason; a check skipped because the
// capability is not claimed passes and logs what was verified instead.
import { ConformanceRun, checksFor } from "./run-conformance.js";
import { DEFAULT_TIMEOUTS, type CheckResult, type ConformanceConfig } from "./types.js";

/** The part of ava's `test` the adapter uses. */
export interface AvaLike {
  serial(title: string, implementation: (t: AvaExecutionLike) => Promise<void>): void;
  after: { always(implementation: () => Promise<void>): void };
}
export interface AvaExecutionLike {
  log(...values: unknown[]): void;
  fail(message?: string): void;
  pass(message?: string): void;
  timeout(ms: number, message?: string): void;
}

/** The part of node:test's `test` the adapter uses. */
export type NodeTestLike = (name: string, fn: (t: NodeTestContextLike) => Promise<void>) => unknown;
export interface NodeTestContextLike {
  test(name: string, fn: (t: NodeTestContextLike) => Promise<void>): Promise<unknown>;
  diagnostic(message: string): void;
}

export interface ConformanceTestsOptions {
  /** Prefix of every test title (default "conformance: "). */
  readonly title?: string;
}

function isAva(test: unknown): test is AvaLike {
  return typeof (test as { serial?: unknown }).serial === "function" && typeof (test as { after?: { always?: unknown } }).after?.always === "function";
}

function describeResult(r: CheckResult): string {
  return `${r.name}: ${r.status}${r.reason ? ` — ${r.reason}` : ""} (${r.durationMs} ms)`;
}

/** Registers one test per check on ava's `test`, or a test with subtests on node:test's `test`. */
export function conformanceTests(test: AvaLike | NodeTestLike, config: ConformanceConfig, options: ConformanceTestsOptions = {}): void {
  const title = options.title ?? "conformance: ";
  const checks = checksFor(config);
  const t = { ...DEFAULT_TIMEOUTS, ...config.fixtures.timeouts };
  const perCheckMs = t.checkMs + 2 * t.stepMs;

  if (isAva(test)) {
    let opened: Promise<ConformanceRun> | undefined;
    const open = (): Promise<ConformanceRun> => (opened ??= ConformanceRun.open(config));
    for (const check of checks) {
      test.serial(`${title}${check.name}`, async (a) => {
        a.timeout(perCheckMs, `the kit's own budget for ${check.name} was exceeded`);
        const result = await (await open()).run(check);
        if (result.status === "fail") a.fail(describeResult(result));
        else {
          if (result.reason) a.log(`${result.status}: ${result.reason}`);
          a.pass();
        }
      });
    }
    test.after.always(async () => {
      if (opened) await (await opened).close();
    });
    return;
  }

  test(title.replace(/:\s*$/, "") || "conformance", async (n) => {
    const run = await ConformanceRun.open(config);
    try {
      for (const check of checks) {
        await n.test(check.name, async (sub) => {
          const result = await run.run(check);
          if (result.status === "fail") throw new Error(describeResult(result));
          if (result.reason) sub.diagnostic(`${result.status}: ${result.reason}`);
        });
      }
    } finally {
      await run.close();
    }
  });
}
