// The test harness a target runs under: a temp state dir laid out as the engine lays
// out its own (targets/<name>/, services/<id>/), TargetContexts with an in-memory
// ledger, and factories made the way the orchestrator makes them — again, for a
// simulated restart. The kit uses it; plugin authors can use it in their own tests.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OWNER_LABEL, SERVICE_LABEL, type OwnedResource, type ServiceFactory } from "@vmctl/core/contract";
import type { FactoryInit } from "../types.js";
import { isAlive, killHard, recordedProcesses } from "./host-processes.js";
import type { ConformanceImages } from "./image-store.js";
import { MemoryLogger } from "./memory-logger.js";
import { NO_IMAGES, testOwnerLabels, testServiceDir, testTargetContext, type TestTargetContext } from "./test-target-context.js";

/** A context the harness made (see testTargetContext). */
export type HarnessContext = TestTargetContext;

/** The harness has no image engine (see test-target-context.ts). */
export { NO_IMAGES };

export interface HarnessOptions {
  /** The target name (state dir `targets/<target>`). */
  readonly target: string;
  /** `PluginEnvironment.options` for init. */
  readonly targetOptions?: Readonly<Record<string, unknown>>;
  /** Parent of the harness's temp dir (default the system temp dir). */
  readonly tmpDir?: string;
  /**
   * Gives services an image store (vmctld's own engine) under the harness's temp dir, for
   * targets that take images; without it `ctx.images` refuses, as a vmctld without one.
   */
  readonly images?: boolean;
}

/** Owner label keys, as the engine sets them (one definition, in the contract). */
export { OWNER_LABEL, SERVICE_LABEL };

export class ConformanceHarness {
  /** The harness's temp dir; removed by close(). */
  readonly dir: string;
  /** The target's PluginEnvironment.stateDir: the same for every factory, as across restarts. */
  readonly stateDir: string;
  /** The owner label value of this harness (one "installation"). */
  readonly owner: string;
  readonly log = new MemoryLogger();
  readonly #init: FactoryInit;
  readonly #options: HarnessOptions;
  readonly #factories: ServiceFactory[] = [];
  readonly #contexts: HarnessContext[] = [];
  #factory: ServiceFactory | undefined;
  #images: ConformanceImages | undefined;
  #serial = 0;

  private constructor(init: FactoryInit, options: HarnessOptions) {
    this.#init = init;
    this.#options = options;
    this.dir = mkdtempSync(join(options.tmpDir ?? tmpdir(), "vmctl-conformance-"));
    this.stateDir = join(this.dir, "targets", options.target);
    mkdirSync(this.stateDir, { recursive: true });
    this.owner = `conformance-${this.dir.slice(-6)}`;
  }

  /** Makes the harness and its first factory; throws (never skips) when init declines the host. */
  static async open(init: FactoryInit, options: HarnessOptions): Promise<ConformanceHarness> {
    const harness = new ConformanceHarness(init, options);
    try {
      // Loaded only when asked for: the store needs better-sqlite3 and @vmctl/native, which a plugin author may not have.
      if (options.images) harness.#images = await (await import("./image-store.js")).openConformanceImages(join(harness.dir, "images"));
      harness.#factory = await harness.newFactory();
    } catch (err) {
      harness.#images?.close();
      rmSync(harness.dir, { recursive: true, force: true });
      throw err;
    }
    return harness;
  }

  /** The current factory (the "running orchestrator's"). */
  get factory(): ServiceFactory {
    if (!this.#factory) throw new Error("harness is closed");
    return this.#factory;
  }

  /** A new factory instance from the same init and state dir, as a restarted orchestrator makes. */
  async newFactory(): Promise<ServiceFactory> {
    const log = new MemoryLogger();
    const factory = await this.#init({ stateDir: this.stateDir, options: this.#options.targetOptions ?? {}, log });
    if (factory === undefined) {
      const why = log.lines.at(-1)?.message;
      throw new Error(`target ${this.#options.target} declined this host (init returned undefined)${why ? `: ${why}` : ""}`);
    }
    if (factory.target !== this.#options.target) {
      throw new Error(`init of target "${this.#options.target}" made a factory for "${factory.target}"`);
    }
    this.#factories.push(factory);
    return factory;
  }

  /** The target under test. */
  get target(): string {
    return this.#options.target;
  }

  /** `PluginEnvironment.options` every factory gets. */
  get targetOptions(): Readonly<Record<string, unknown>> {
    return this.#options.targetOptions ?? {};
  }

  /** True when services get an image store (HarnessOptions.images). */
  get hasImages(): boolean {
    return this.#images !== undefined;
  }

  /** The owner labels of a service, as the engine sets them. */
  ownerLabels(serviceId: string): Readonly<Record<string, string>> {
    return testOwnerLabels(this.owner, serviceId);
  }

  /** The serviceDir of a service (not made). */
  serviceDirOf(serviceId: string): string {
    return testServiceDir(this.dir, serviceId);
  }

  /** A fresh service id, unique within the harness. */
  serviceId(prefix = "svc"): string {
    this.#serial += 1;
    return `${prefix}-${this.#serial}`;
  }

  /** A TargetContext for `serviceId`, its serviceDir made, its ledger seeded with `resources`. */
  context(serviceId: string, resources: readonly OwnedResource[] = []): HarnessContext {
    const images = this.#images?.access(serviceId);
    const ctx = testTargetContext(this.dir, serviceId, { owner: this.owner, resources, ...(images ? { images } : {}) });
    this.#contexts.push(ctx);
    return ctx;
  }

  /**
   * Kills every process any ledger of the harness ever recorded that still lives (the
   * kit's cleanup after a plugin that leaked). Returns what it killed.
   */
  reap(contexts: readonly HarnessContext[] = this.#contexts): string[] {
    const killed: string[] = [];
    for (const ctx of contexts) {
      for (const p of recordedProcesses(ctx.resources.history())) {
        if (!isAlive(p)) continue;
        killHard(p.pid);
        killed.push(`${p.resource} (pid ${p.pid})`);
      }
    }
    return killed;
  }

  /** Closes every factory made, kills leftovers, removes the temp dir. */
  async close(): Promise<void> {
    const factories = this.#factories.splice(0);
    this.#factory = undefined;
    await Promise.all(factories.map((f) => Promise.resolve(f.close?.()).catch(() => undefined)));
    this.reap();
    this.#images?.close();
    this.#images = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
