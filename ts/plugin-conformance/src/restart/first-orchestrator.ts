// The first orchestrator of the kit's restart checks, in a process of its own: it loads
// the plugin from its package directory as vmctld does, makes one service and brings it
// to the state the check asks for, reporting each step as a JSON line on stdout. The kit
// then kills it with SIGKILL (a daemon crash) and adopts the service from its own process,
// so a target whose services die with the process that made them fails there. The ledger
// is a file, appended before intend() returns, as the engine's is durable.
//
// Mode "interrupted": the process kills itself (SIGKILL) inside start(), as soon as the
// target's first intend() of start() is on disk: a start interrupted half-way.
import { appendFileSync, readFileSync } from "node:fs";
import type { Logger, OwnedResource, ResourceLedger, ServiceController, TargetContext } from "@vmctl/core/contract";
import { loadPluginFromDir } from "@vmctl/core/loader";
import { NO_IMAGES } from "../harness/conformance-harness.js";
import type { FirstOrchestratorEvent, FirstOrchestratorJob } from "./job.js";

const say = (event: FirstOrchestratorEvent): void => {
  // Synchronous on a pipe on Linux: written before a SIGKILL that follows.
  process.stdout.write(`${JSON.stringify(event)}\n`);
};

class FileLedger implements ResourceLedger {
  readonly #entries = new Map<string, OwnedResource>();
  armed = false;
  constructor(readonly file: string) {}

  intend(resource: OwnedResource): void {
    if (typeof resource?.kind !== "string" || typeof resource.key !== "string") {
      throw new TypeError(`ledger: a resource needs string kind and key, got ${JSON.stringify(resource)}`);
    }
    const stored = JSON.parse(JSON.stringify(resource)) as OwnedResource;
    appendFileSync(this.file, `${JSON.stringify({ op: "intend", resource: stored })}\n`);
    this.#entries.set(`${stored.kind}\0${stored.key}`, stored);
    if (this.armed) {
      say({ event: "killing-at-intend", resource: stored });
      process.kill(process.pid, "SIGKILL");
    }
  }

  release(kind: string, key: string): void {
    appendFileSync(this.file, `${JSON.stringify({ op: "release", kind, key })}\n`);
    this.#entries.delete(`${kind}\0${key}`);
  }

  list(): readonly OwnedResource[] {
    return [...this.#entries.values()];
  }
}

function stderrLogger(fields: Record<string, unknown>): Logger {
  const emit = (level: string) => (msg: string, more?: Record<string, unknown>) =>
    process.stderr.write(`${JSON.stringify({ level, msg, ...fields, ...more })}\n`);
  return { debug: () => {}, info: emit("info"), warn: emit("warn"), error: emit("error") };
}

async function outputOf(c: ServiceController): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of c.logs()) text += decoder.decode(chunk.data, { stream: true });
  return text + decoder.decode();
}

async function main(jobFile: string): Promise<void> {
  const job = JSON.parse(readFileSync(jobFile, "utf8")) as FirstOrchestratorJob;
  let step = "loading the plugin";
  try {
    const loaded = await loadPluginFromDir(job.pluginPath);
    const registration = loaded.registration.targets.find((t) => t.target === job.target);
    if (registration === undefined) throw new Error(`the plugin registers no target ${job.target}`);
    step = "init";
    const factory = await registration.init({ stateDir: job.stateDir, options: job.targetOptions, log: stderrLogger({ target: job.target }) });
    if (factory === undefined) throw new Error("init returned undefined");
    step = "validate";
    const spec = factory.validate(job.spec);
    const ledger = new FileLedger(job.ledgerFile);
    step = "opening the image store";
    // Open until the kit kills this process, as a daemon's is.
    const images = job.imageStore === undefined ? undefined : await (await import("../harness/image-store.js")).openConformanceImages(job.imageStore);
    const ctx: TargetContext = {
      serviceId: job.serviceId,
      serviceDir: job.serviceDir,
      ownerLabels: job.ownerLabels,
      resources: ledger,
      log: stderrLogger({ target: job.target, service: job.serviceId }),
      images: images?.access(job.serviceId) ?? NO_IMAGES,
    };
    step = "create";
    const c = await factory.create(job.serviceId, spec, ctx);
    say({ event: "created", spec, record: c.record() });
    step = "prepare";
    await c.prepare();
    step = "start";
    ledger.armed = job.mode === "interrupted";
    await c.start();
    ledger.armed = false;
    if (job.mode === "interrupted") {
      // start() recorded nothing: the kit kills this process now, after start.
      say({ event: "started", record: c.record() });
    } else if (job.mode === "exited") {
      step = "wait";
      await c.wait();
      say({ event: "ready", record: c.record() });
    } else {
      step = "waiting for the service to run and print its line";
      const deadline = Date.now() + job.stepMs;
      for (;;) {
        const state = await c.state();
        if (state.phase === "exited") throw new Error(`the service exited before it ran (${JSON.stringify(state.exit)})`);
        if (state.phase === "running" && (job.line === undefined || (await outputOf(c)).includes(job.line))) break;
        if (Date.now() > deadline) throw new Error(`not running with ${JSON.stringify(job.line)} in its output within ${job.stepMs} ms (phase ${state.phase})`);
        await new Promise((r) => setTimeout(r, 25));
      }
      say({ event: "ready", record: c.record() });
    }
  } catch (err) {
    say({ event: "error", step, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    process.exit(1);
  }
  // Stay, as a daemon does, until the kit kills this process.
  setInterval(() => {}, 60_000);
}

void main(process.argv[2] ?? "");
