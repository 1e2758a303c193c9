// One rule for a drive id: the microvm spec accepts exactly the ids the VMM accepts, so a
// spec that passes create never fails at start on its drive id. Checked against the real
// vmctl-vmm: each generated id goes through parseMicrovmSpec (with the limits the VMM
// publishes, as the factory checks specs) and through the VMM's PutDrive.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import fc from "fast-check";
import { ValidationError, VmctlError } from "@vmctl/core/contract";
import { requireVmmBinary, VmmProcess } from "@vmctl/vmm-client";
import { parseMicrovmSpec } from "./spec.js";
import { vmmLimitsOf } from "./vmm-limits.js";

test("the spec and the VMM accept exactly the same drive ids", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-drive-ids-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const disk = join(dir, "disk.img");
  const kernel = join(dir, "kernel");
  writeFileSync(disk, Buffer.alloc(4096));
  writeFileSync(kernel, "not read by parseMicrovmSpec beyond its existence");
  let vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  t.teardown(() => vmm.close());
  // What the VMM publishes: GetInfo's limits, the same as `vmctl-vmm --limits` (what the
  // factory checks specs with, before any VMM runs).
  const limits = (await vmm.client.getInfo()).limits;
  if (limits === undefined) throw new Error("the VMM published no limits");
  t.deepEqual(limits, vmmLimitsOf(requireVmmBinary()));
  // A VMM holds at most maxDrives drives and refuses a second drive of one id: a fresh
  // one every maxDrives - 2 accepted ids, and each id asked once.
  let held = 0;

  const specAccepts = (id: string): boolean => {
    try {
      parseMicrovmSpec({ kernel, drives: [{ id, path: disk }] }, { limits });
      return true;
    } catch (err) {
      if (err instanceof ValidationError && err.field === "drives[0].id") return false;
      throw err;
    }
  };
  const vmmAccepts = async (id: string): Promise<boolean> => {
    if (held === limits.maxDrives - 2) {
      await vmm.close();
      vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
      held = 0;
    }
    try {
      await vmm.client.putDrive({ driveId: id, pathOnHost: disk, isReadOnly: true, isRootDevice: false });
      held += 1;
      return true;
    } catch (err) {
      if (err instanceof VmctlError && err.code === "INVALID_ARGUMENT" && err.details.field === "drive.drive_id") return false;
      throw err;
    }
  };
  const edges = ["a", "A-b_9", "a".repeat(limits.driveIdMaxLen), "a".repeat(limits.driveIdMaxLen + 1), "data.1", "a b", "é", "-", "_", ".", "a/b", ""];
  const idChars = fc.constantFrom(..."abcXYZ019_-.:/ é\t".split(""));
  const generated = fc.sample(fc.string({ unit: idChars, minLength: 0, maxLength: 24 }), { numRuns: 150, seed: 20261206 });
  for (const id of new Set([...edges, ...generated])) {
    if (id === "") continue; // an empty id is a missing field for the spec, a separate rule
    t.is(specAccepts(id), await vmmAccepts(id), `drive id ${JSON.stringify(id)}`);
  }
});
