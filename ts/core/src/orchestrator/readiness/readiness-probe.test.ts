import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import test from "ava";
import { VmctlError } from "../../errors.js";
import { freePort } from "../../testing/fixtures.js";
import { probeFor } from "./readiness-probe.js";
import { waitUntilReady } from "./wait-until-ready.js";

test("tcp: fails while nothing listens, passes once a real listener is up", async (t) => {
  const port = await freePort();
  const probe = probeFor({ kind: "tcp", port });
  t.is(probe.description, `tcp 127.0.0.1:${port}`);
  await t.throwsAsync(probe.probe(AbortSignal.timeout(2000)), { code: "ECONNREFUSED" });
  const server = createServer((s) => s.end());
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  t.teardown(() => server.close());
  await t.notThrowsAsync(probe.probe(AbortSignal.timeout(2000)));
});

test("http: passes on 2xx by default or on the expected status", async (t) => {
  const server = createHttpServer((req, res) => {
    res.statusCode = req.url === "/health" ? 204 : 503;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as { port: number };
  await t.notThrowsAsync(probeFor({ kind: "http", url: `http://127.0.0.1:${port}/health` }).probe(AbortSignal.timeout(2000)));
  await t.throwsAsync(probeFor({ kind: "http", url: `http://127.0.0.1:${port}/other` }).probe(AbortSignal.timeout(2000)), {
    message: "status 503, want 2xx",
  });
  await t.notThrowsAsync(
    probeFor({ kind: "http", url: `http://127.0.0.1:${port}/other`, expectStatus: 503 }).probe(AbortSignal.timeout(2000)),
  );
});

test("command: passes when the host command exits 0", async (t) => {
  await t.notThrowsAsync(probeFor({ kind: "command", args: ["true"] }).probe(AbortSignal.timeout(2000)));
  await t.throwsAsync(probeFor({ kind: "command", args: ["sh", "-c", "exit 4"] }).probe(AbortSignal.timeout(2000)), {
    message: "exit code 4",
  });
});

test("waitUntilReady retries until the probe passes, and gives up with DEADLINE_EXCEEDED naming the last failure", async (t) => {
  const port = await freePort();
  const server = createServer((s) => s.end());
  setTimeout(() => server.listen(port, "127.0.0.1"), 300);
  t.teardown(() => server.close());
  await t.notThrowsAsync(waitUntilReady(probeFor({ kind: "tcp", port }), { intervalMs: 50, timeoutMs: 10_000 }));

  const closed = await freePort();
  const err = await t.throwsAsync(waitUntilReady(probeFor({ kind: "tcp", port: closed }), { intervalMs: 20, timeoutMs: 200, subject: "db" }), {
    instanceOf: VmctlError,
  });
  t.is(err?.code, "DEADLINE_EXCEEDED");
  t.regex(err?.message ?? "", /^db: tcp 127\.0\.0\.1:\d+ not ready after 200 ms \(last: .*ECONNREFUSED/);
});

test("waitUntilReady stops on abort (CANCELLED) and when the gate says so (FAILED_PRECONDITION)", async (t) => {
  const port = await freePort();
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 100);
  const cancelled = await t.throwsAsync(waitUntilReady(probeFor({ kind: "tcp", port }), { intervalMs: 20, signal: abort.signal }), {
    instanceOf: VmctlError,
  });
  t.is(cancelled?.code, "CANCELLED");
  let attempts = 0;
  const gated = await t.throwsAsync(
    waitUntilReady(probeFor({ kind: "tcp", port }), { intervalMs: 10, gate: () => (++attempts > 3 ? "exited before it was ready" : undefined) }),
    { instanceOf: VmctlError },
  );
  t.is(gated?.code, "FAILED_PRECONDITION");
  t.is(gated?.message, "exited before it was ready");
});
