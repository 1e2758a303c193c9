// Child process for the crash test: an "orchestrator" that starts one container, prints
// its ledger and record as one JSON line, then idles until the test kill -9s it.
// argv: stateDir serviceDir serviceId specJson
import { MemoryLogger, testTargetContext } from "@vmctl/plugin-conformance";
import { initLxc } from "../index.js";

const [stateDir, serviceDir, serviceId, specJson] = process.argv.slice(2) as [string, string, string, string];
const log = new MemoryLogger();
const factory = initLxc({ stateDir, options: {}, log });
if (!factory) throw new Error("lxc target did not initialise");
const ctx = { ...testTargetContext(stateDir, serviceId, { owner: "lxc-crash-test", serviceDir }), log };
const resources = ctx.resources;
const c = await factory.create(serviceId, factory.validate(JSON.parse(specJson)), ctx);
await c.start();
process.stdout.write(`${JSON.stringify({ resources: resources.list(), data: c.record() })}\n`);
setInterval(() => undefined, 1000);
