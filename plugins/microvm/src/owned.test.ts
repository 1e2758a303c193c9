// Reaping with the real vmctl-vmm: owned() finds the VMM processes whose environment
// carries an owner's labels (as vmm-launch.ts starts them), removeOwned() ends one and
// removes its socket; another owner's VMM is never touched.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import test from "ava";
import { OWNER_LABEL, SERVICE_LABEL } from "@vmctl/core/contract";
import { isAlive } from "@vmctl/core/target-kit";
import { requireVmmBinary } from "@vmctl/vmm-client";
import { scratch } from "./testing/context.js";
import { spawnVmmDetached, terminate, type ProcessRef } from "./vmm-process.js";

const s = scratch("vmctl-mvm-owned-");
const binary = requireVmmBinary();
const started: ProcessRef[] = [];

test.after.always(async () => {
  for (const ref of started) await terminate(ref, 100);
  await s.cleanup();
});

/** A VMM (no VM configured: it waits on its API socket) labelled as `owner`'s service `serviceId`. */
async function vmm(owner: string, serviceId: string): Promise<{ ref: ProcessRef; socket: string }> {
  const socket = join(s.dir, `${serviceId}.sock`);
  const ref = await spawnVmmDetached({
    binary,
    socketPath: socket,
    vmId: `vmctl-${serviceId}`,
    logFile: join(s.dir, `${serviceId}.log`),
    cwd: s.dir,
    labels: { [OWNER_LABEL]: owner, [SERVICE_LABEL]: serviceId },
  });
  started.push(ref);
  for (let i = 0; i < 200 && !existsSync(socket); i++) await sleep(10);
  return { ref, socket };
}

test("owned() lists the owner's VMMs with their service; removeOwned ends one and removes its socket, once or twice", async (t) => {
  const owner = `microvm-tests-owned-${process.pid}`;
  const mine = await vmm(owner, "00000000deadbeef");
  const theirs = await vmm(`${owner}-other`, "00000000feedface");
  const factory = s.factory();

  const listed = await factory.owned(owner);
  t.deepEqual(listed, [
    { kind: "vmm-process", id: String(mine.ref.pid), owner, serviceId: "00000000deadbeef", data: { startTime: mine.ref.startTime, socket: mine.socket } },
  ]);
  await factory.removeOwned(listed[0]!);
  await factory.removeOwned(listed[0]!);
  t.false(isAlive(mine.ref), "the VMM still runs");
  t.false(existsSync(mine.socket), "its socket is still there");
  t.deepEqual(await factory.owned(owner), []);
  t.true(isAlive(theirs.ref), "another owner's VMM was touched");
  t.deepEqual((await factory.owned(`${owner}-other`)).map((x) => x.id), [String(theirs.ref.pid)]);
});
