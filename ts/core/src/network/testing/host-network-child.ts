// The child half of HostNetworkInNamespace: runs createHostNetwork() in the namespace it
// was started in and serves its operations as JSON lines on stdin/stdout
// ({id, op, args} in; {id, result} or {id, error: {code, message, details}} out).
import { createInterface } from "node:readline";
import { createHostNetwork } from "../host-network.js";
import type { HostNetworkOps } from "../types.js";

const host = createHostNetwork();
const ops = host as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
const write = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`);

createInterface({ input: process.stdin }).on("line", (line) => {
  const { id, op, args } = JSON.parse(line) as { id: number; op: keyof HostNetworkOps | "time"; args: unknown[] };
  const started = performance.now();
  const call = ops[op];
  if (typeof call !== "function") {
    write({ id, error: { code: "INVALID_ARGUMENT", message: `no operation ${String(op)}`, details: {} } });
    return;
  }
  call.apply(host, args).then(
    (result) => write({ id, result: result ?? null, ms: performance.now() - started }),
    (err: { code?: string; message?: string; details?: object }) =>
      write({ id, error: { code: err.code ?? "INTERNAL", message: err.message ?? String(err), details: err.details ?? {} } }),
  );
});
console.log(JSON.stringify({ ready: true }));
