// adopt() after a simulated orchestrator restart: a NEW factory, a new context over the
// same serviceDir seeded with the old ledger, the record as the engine persists it (JSON).
import test, { type ExecutionContext } from "ava";
import type { ControllerRecord, JsonValue, OwnedResource } from "@vmctl/core/contract";
import type { DockerController } from "./controller.js";
import type { DockerFactory } from "./factory.js";
import { CONTAINER_KIND } from "./naming.js";
import { client, scratch, type TestContext } from "./testing/context.js";
import { untilStdout } from "@vmctl/plugin-conformance";
import { collectLogs, sh } from "./testing/helpers.js";

const s = await scratch("vmctl-docker-adopt-");
const docker = client(s.socket);
let seq = 0;

test.after.always("no container of this file is left on the daemon", async (t) => {
  const left = await s.leftovers();
  await s.cleanup();
  t.deepEqual(left, []);
});

interface Made {
  readonly id: string;
  readonly c: DockerController;
  readonly ctx: TestContext;
  readonly spec: JsonValue;
  readonly factory: DockerFactory;
}

async function make(t: ExecutionContext, args: string[]): Promise<Made> {
  const factory = s.factory();
  const id = `a${++seq}`;
  const ctx = s.context(id);
  const spec = factory.validate({ image: s.image, args });
  const c = await factory.create(id, spec, ctx);
  t.teardown(() => c.destroy().catch(() => undefined));
  return { id, c, ctx, spec, factory };
}

/** The orchestrator restarts: the old factory closes; a new one adopts from the persisted record. */
async function restart(t: ExecutionContext, m: Made, resources: readonly OwnedResource[] = m.ctx.resources.list(), data: JsonValue | undefined = m.c.record()) {
  await m.factory.close();
  const fresh = s.factory();
  const record: ControllerRecord = {
    id: m.id,
    target: "docker",
    spec: JSON.parse(JSON.stringify(m.spec)) as JsonValue,
    ...(data === undefined ? {} : { data: JSON.parse(JSON.stringify(data)) as JsonValue }),
    resources,
  };
  const ctx = s.context(m.id, resources);
  const adopted = await fresh.adopt(record, ctx);
  if (adopted) t.teardown(() => adopted.destroy());
  return { adopted, ctx };
}

test("a running container is reattached: state, earlier logs, stop and destroy work through the new controller", async (t) => {
  const m = await make(t, sh("echo ready; while true; do echo tick; sleep 0.05; done"));
  await m.c.start();
  await untilStdout(m.c, "ready");
  const { adopted, ctx } = await restart(t, m);
  if (!adopted) return t.fail("adopt returned undefined for a running container");
  const state = await adopted.state();
  t.is(state.phase, "running");
  t.is(state.instance, m.c.containerId);
  t.true((await collectLogs(adopted)).stdout.startsWith("ready\ntick\n"));
  await adopted.stop({ timeoutMs: 200 });
  t.is((await adopted.wait()).reason, "stopped");
  await adopted.destroy();
  t.deepEqual(ctx.resources.list(), []);
  await t.throwsAsync(docker.getContainer(m.c.containerName).inspect());
});

test("an exited container reports its exit code and output after the restart", async (t) => {
  const m = await make(t, sh("echo done; exit 5"));
  await m.c.start();
  await m.c.wait();
  const { adopted, ctx } = await restart(t, m);
  if (!adopted) return t.fail("adopt returned undefined for an exited container");
  t.deepEqual({ code: (await adopted.wait()).code, reason: (await adopted.wait()).reason }, { code: 5, reason: "exited" });
  t.is((await collectLogs(adopted)).stdout, "done\n");
  await adopted.destroy();
  t.deepEqual(ctx.resources.list(), []);
});

test("a stop made by the old controller still reads as stopped (the stop record is a file in the serviceDir)", async (t) => {
  const m = await make(t, sh('trap "exit 0" TERM; echo ready; while true; do sleep 0.05; done'));
  await m.c.start();
  await untilStdout(m.c, "ready");
  await m.c.stop({ timeoutMs: 10_000 });
  const { adopted } = await restart(t, m);
  const exit = await adopted!.wait();
  t.deepEqual({ code: exit.code, reason: exit.reason }, { code: 0, reason: "stopped" });
});

test("only the ledger is left (no record data): the container is found by name", async (t) => {
  const m = await make(t, sh("echo ready; exec sleep 1000"));
  await m.c.start();
  await untilStdout(m.c, "ready");
  // The crash came after the container was made but before the ledger learnt its id.
  const { adopted } = await restart(t, m, [{ kind: CONTAINER_KIND, key: m.c.containerName, data: { socket: s.socket, name: m.c.containerName } }], undefined);
  t.is((await adopted!.state()).phase, "running");
  t.is(adopted!.containerId, m.c.containerId);
  await adopted!.destroy();
  await t.throwsAsync(docker.getContainer(m.c.containerName).inspect());
});

test("a crash between intend and create: nothing made; the adopted service starts from scratch", async (t) => {
  const m = await make(t, sh("echo second-life"));
  const name = (await import("./naming.js")).containerNameFor(m.id, m.ctx.ownerLabels);
  const { adopted, ctx } = await restart(t, m, [{ kind: CONTAINER_KIND, key: name, data: { socket: s.socket, name } }], undefined);
  if (!adopted) return t.fail("adopt must not return undefined while the ledger holds an entry");
  t.is((await adopted.state()).phase, "created");
  await adopted.start();
  t.is((await adopted.wait()).code, 0);
  t.is((await collectLogs(adopted)).stdout, "second-life\n");
  await adopted.destroy();
  t.deepEqual(ctx.resources.list(), []);
});

test("a container removed behind vmctl's back reads lost; destroy still releases the ledger", async (t) => {
  const m = await make(t, sh("echo ready; exec sleep 1000"));
  await m.c.start();
  await untilStdout(m.c, "ready");
  await docker.getContainer(m.c.containerName).remove({ force: true });
  const { adopted, ctx } = await restart(t, m);
  if (!adopted) return t.fail("adopt must not return undefined while the ledger holds an entry");
  const state = await adopted.state();
  t.is(state.phase, "exited");
  t.is(state.exit?.reason, "lost");
  await adopted.destroy();
  t.deepEqual(ctx.resources.list(), []);
});

test("nothing recorded and nothing on the daemon: undefined", async (t) => {
  const m = await make(t, sh("true"));
  const { adopted } = await restart(t, m, [], undefined);
  t.is(adopted, undefined);
});
