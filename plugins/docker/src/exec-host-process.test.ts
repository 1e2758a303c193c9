// Which host process signal() and cancel() may signal, given what Docker's exec inspect says.
// The statuses are written here (no daemon): the point is what the plugin does with them.
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { startTimeOf } from "@vmctl/core/target-kit";
import type { ExecStatus } from "./engine.js";
import { execHostProcess } from "./exec-host-process.js";

const CONTAINER = "f".repeat(64);
const says = (status: ExecStatus) => () => Promise.resolve(status);

test("a pid that is not in the container's cgroup is never signalled: FAILED_PRECONDITION (a daemon in another pid namespace)", async (t) => {
  // This test process: alive, but in no container named CONTAINER.
  const err = await t.throwsAsync(execHostProcess(says({ running: true, pid: process.pid, exitCode: null, containerId: CONTAINER }), {}), {
    instanceOf: VmctlError,
    code: "FAILED_PRECONDITION",
  });
  t.regex(err?.message ?? "", /not a process of container ffffffffffff/);
});

test("an exec that has ended (or never started) has no process to signal", async (t) => {
  t.is(await execHostProcess(says({ running: false, pid: process.pid, exitCode: 0, containerId: CONTAINER }), {}), undefined);
  t.is(await execHostProcess(says({ running: false, pid: 0, exitCode: 126, containerId: CONTAINER }), {}), undefined);
});

test("a pid Docker reports for a process already gone is not signalled (it may be reused)", async (t) => {
  const gone = 2 ** 22 + 1; // above pid_max's largest value: no such process
  t.is(startTimeOf(gone), undefined);
  t.is(await execHostProcess(says({ running: true, pid: gone, exitCode: null, containerId: CONTAINER }), {}), undefined);
});

test("the pid is waited for while Docker reports the exec running without one yet", async (t) => {
  let calls = 0;
  const inspect = (): Promise<ExecStatus> => Promise.resolve(++calls < 3 ? { running: true, pid: 0, exitCode: null, containerId: CONTAINER } : { running: false, pid: 0, exitCode: 126, containerId: CONTAINER });
  t.is(await execHostProcess(inspect, {}), undefined);
  t.is(calls, 3);
});
