// Child process for the kill -9 test: an "orchestrator" that creates and starts one VM,
// prints its ledger and record as one JSON line, then idles until the test kill -9s it.
// argv: stateDir serviceDir serviceId specJson
import { initMicrovm } from "../index.js";
import { testTargetContext } from "@vmctl/plugin-conformance";
import { MemoryLogger } from "./context.js";

const [stateDir, serviceDir, serviceId, specJson] = process.argv.slice(2) as [string, string, string, string];
const log = new MemoryLogger();
const factory = initMicrovm({ stateDir, options: {}, log });
if (!factory) throw new Error(`microvm target unavailable: ${JSON.stringify(log.lines)}`);
const ctx = { ...testTargetContext(stateDir, serviceId, { owner: "microvm-crash-test", serviceDir }), log };
const resources = ctx.resources;
const c = await factory.create(serviceId, factory.validate(JSON.parse(specJson)), ctx);
await c.prepare();
await c.start();
process.stdout.write(`${JSON.stringify({ resources: resources.list(), data: c.record() })}\n`);
setInterval(() => undefined, 1000);
