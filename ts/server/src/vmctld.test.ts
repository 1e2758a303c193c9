// vmctld in-process with the process target fixture: socket handling, reflection, streams
// that end when the client cancels.
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import test from "ava";
import { silentLogger, type OrchestratorApi } from "@vmctl/core";
import { OrchestratorClient, OrchestratorService } from "@vmctl/proto";
import { CallTracker, orchestratorHandlers } from "./orchestrator-service.js";
import { bindUnixSocket } from "./unix-socket.js";
import { ConfigError } from "./config.js";
import { startVmctld } from "./vmctld.js";

const PROCESS_PLUGIN = fileURLToPath(new URL("../../../tests/fixtures/vmctl-plugin-process", import.meta.url));

function scratch(): string {
  return mkdtempSync(join(tmpdir(), "vmctld-test-"));
}

const options = (dir: string) => ({
  stateDir: join(dir, "state"),
  socketPath: join(dir, "run", "vmctld.sock"),
  builtins: false,
  plugins: [PROCESS_PLUGIN],
  log: silentLogger,
});

test("the socket is 0600 in a 0700 directory; a second vmctld on it fails clearly; close removes it", async (t) => {
  const dir = scratch();
  try {
    const daemon = await startVmctld(options(dir));
    t.is(statSync(daemon.socketPath).mode & 0o777, 0o600);
    t.is(statSync(join(dir, "run")).mode & 0o777, 0o700);
    // Another state dir, same socket: refused before it touches anything.
    await t.throwsAsync(startVmctld({ ...options(dir), stateDir: join(dir, "state2") }), {
      message: `another vmctld is already serving on ${daemon.socketPath}`,
    });
    // Same state dir: the engine's exclusive lock refuses too.
    await t.throwsAsync(startVmctld({ ...options(dir), socketPath: join(dir, "other.sock") }), { message: /lock|in use|another/i });
    await daemon.close();
    t.throws(() => statSync(daemon.socketPath));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a stale socket file (nobody answering) is removed and rebound; a non-socket file is refused", async (t) => {
  const dir = scratch();
  try {
    const { socketPath } = options(dir);
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(dir, "run"), { mode: 0o700 });
    const { spawnSync } = await import("node:child_process");
    // A process that binds and dies without cleaning up (SIGKILL) leaves a stale file.
    spawnSync(process.execPath, ["-e", `require("net").createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, "SIGKILL"))`]);
    t.true(statSync(socketPath).isSocket());
    const daemon = await startVmctld(options(dir));
    t.is(statSync(socketPath).mode & 0o777, 0o600);
    await daemon.close();

    writeFileSync(socketPath, "not a socket");
    await t.throwsAsync(startVmctld(options(dir)), { message: /exists and is not a socket/ });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("server reflection lists vmctl.v1.Orchestrator (what grpcurl list shows)", async (t) => {
  const dir = scratch();
  const daemon = await startVmctld(options(dir));
  try {
    const reflectionProto = fileURLToPath(import.meta.resolve("@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto"));
    const def = grpc.loadPackageDefinition(loadSync(reflectionProto, { keepCase: true })) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    };
    const client = new def.grpc.reflection.v1.ServerReflection(`unix://${daemon.socketPath}`, grpc.credentials.createInsecure());
    type Answer = { list_services_response?: { service: { name: string }[] } };
    const call = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, Answer> }).ServerReflectionInfo();
    const answer = new Promise<string[]>((resolve, reject) => {
      call.once("data", (m: Answer) => resolve((m.list_services_response?.service ?? []).map((s) => s.name)));
      call.once("error", reject);
    });
    call.write({ list_services: "" });
    const names = await answer;
    call.end();
    client.close();
    t.true(names.includes("vmctl.v1.Orchestrator"), names.join(","));
  } finally {
    await daemon.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("streams end on the server when the client cancels", async (t) => {
  const dir = scratch();
  const socket = join(dir, "s.sock");
  let watchEnded = false;
  let logsEnded = false;
  const forever = async function* <T>(value: T, signal: AbortSignal | undefined, onEnd: () => void): AsyncGenerator<T> {
    try {
      yield value;
      await new Promise((resolve) => signal?.addEventListener("abort", resolve, { once: true }));
    } finally {
      onEnd();
    }
  };
  const now = new Date();
  const record = { id: "a", name: "a", target: "t", labels: {}, spec: {}, dependsOn: [], phase: "running", addresses: [], ready: true, createdAt: now, updatedAt: now } as const;
  const engine = {
    watch: (_refs: readonly string[], signal: AbortSignal) => forever({ kind: "snapshot", service: record, at: now }, signal, () => (watchEnded = true)),
    logs: (_ref: string, o?: { signal?: AbortSignal }) => forever({ stream: "stdout", data: Buffer.from("x"), time: now }, o?.signal, () => (logsEnded = true)),
  } as unknown as OrchestratorApi;
  const server = new grpc.Server();
  server.addService(OrchestratorService, orchestratorHandlers(engine, silentLogger, new CallTracker()));
  await bindUnixSocket(server, socket);
  const client = new OrchestratorClient(`unix://${socket}`, grpc.credentials.createInsecure());
  try {
    for (const stream of [client.watchServices({}), client.logs({ id: "a", follow: true })]) {
      await new Promise((resolve) => stream.once("data", resolve));
      stream.on("error", () => {});
      stream.cancel();
    }
    const deadline = Date.now() + 10_000;
    while (!(watchEnded && logsEnded) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    t.true(watchEnded, "watch ended");
    t.true(logsEnded, "logs ended");
  } finally {
    client.close();
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("options for a target no plugin registered are refused at start, naming it; nothing is left serving", async (t) => {
  const dir = scratch();
  try {
    const err = await t.throwsAsync(startVmctld({ ...options(dir), targetOptions: { proces: { x: 1 } } }), { instanceOf: ConfigError });
    t.is(err?.message, "targets.proces: no such target (known: process)");
    t.throws(() => statSync(join(dir, "run", "vmctld.sock")));
    // The same options for a loaded target are fine, and the state dir is usable again.
    const daemon = await startVmctld({ ...options(dir), targetOptions: { process: {} } });
    await daemon.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
