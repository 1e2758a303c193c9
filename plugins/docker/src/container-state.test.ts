// Docker's view of a container plus the stop record → the service's state or its exit.
import test from "ava";
import { exitOf, readContainer } from "./container-state.js";
import type { ContainerInfo } from "./engine.js";

const created = new Date("2024-01-01T00:00:00Z");
const startedAt = new Date("2024-01-01T00:00:01Z");
const finishedAt = new Date("2024-01-01T00:00:02Z");
const info: ContainerInfo = {
  id: "c1",
  name: "vmctl-svc",
  labels: {},
  status: "running",
  pid: 42,
  exitCode: 0,
  error: "",
  oomKilled: false,
  created,
  startedAt,
  finishedAt: undefined,
  addresses: ["172.17.0.2"],
};

test("a running container: pid, addresses, since its start; stopping once a signal was sent", (t) => {
  t.deepEqual(readContainer(info, undefined), { state: { instance: "c1", phase: "running", pid: 42, addresses: ["172.17.0.2"], since: startedAt } });
  t.is(readContainer(info, { signals: ["SIGTERM"] }).state?.phase, "stopping");
  t.is(readContainer({ ...info, status: "paused" }, undefined).state?.phase, "paused");
});

test("a created container is created, unless its start failed or stop came first", (t) => {
  const fresh = { ...info, status: "created" as const, pid: 0, startedAt: undefined };
  t.deepEqual(readContainer(fresh, undefined), { state: { instance: "c1", phase: "created", since: created } });
  t.is(readContainer({ ...fresh, error: "exec: nope: not found" }, undefined).exit?.reason, "failed");
  t.is(readContainer(fresh, { beforeStart: true, signals: [] }).exit?.reason, "stopped");
});

test("an exited container gives its exit, at Docker's finish time", (t) => {
  t.deepEqual(readContainer({ ...info, status: "exited", pid: 0, exitCode: 3, finishedAt }, undefined), { exit: { code: 3, reason: "exited", at: finishedAt } });
  t.deepEqual(exitOf({ ...info, status: "exited", exitCode: 143, finishedAt }, { signals: ["SIGTERM"] }), { code: null, signal: "SIGTERM", reason: "stopped", at: finishedAt });
});
