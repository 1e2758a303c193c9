// One rule for a drive id: the microvm spec accepts exactly the ids the VMM accepts, so a
// spec that passes create never fails at start on its drive id. Checked against the real
// vmctl-vmm: each generated id goes through parseMicrovmSpec and through the VMM's PutDrive.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import fc from "fast-check";
import { ValidationError } from "@vmctl/core/contract";
import { requireVmmBinary, VmmError, VmmProcess } from "@vmctl/vmm-client";
import { parseMicrovmSpec } from "./spec.js";

test("the spec and the VMM accept exactly the same drive ids", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-drive-ids-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const disk = join(dir, "disk.img");
  const kernel = join(dir, "kernel");
  writeFileSync(disk, Buffer.alloc(4096));
  writeFileSync(kernel, "not read by parseMicrovmSpec beyond its existence");
  // A VMM holds at most 18 drives and refuses a second drive of one id: a fresh one
  // every 16 accepted ids, and each id asked once.
  let vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  let held = 0;
  t.teardown(() => vmm.close());

  const specAccepts = (id: string): boolean => {
    try {
      parseMicrovmSpec({ kernel, drives: [{ id, path: disk }] });
      return true;
    } catch (err) {
      if (err instanceof ValidationError && err.field === "drives[0].id") return false;
      throw err;
    }
  };
  const vmmAccepts = async (id: string): Promise<boolean> => {
    if (held === 16) {
      await vmm.close();
      vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
      held = 0;
    }
    try {
      await vmm.client.putDrive({ driveId: id, pathOnHost: disk, isReadOnly: true, isRootDevice: false });
      held += 1;
      return true;
    } catch (err) {
      if (err instanceof VmmError && err.code === "INVALID_ARGUMENT" && /drive_id/.test(err.message)) return false;
      throw err;
    }
  };
  const edges = ["a", "A-b_9", "a".repeat(20), "a".repeat(21), "data.1", "a b", "é", "-", "_", ".", "a/b", ""];
  const idChars = fc.constantFrom(..."abcXYZ019_-.:/ é\t".split(""));
  const generated = fc.sample(fc.string({ unit: idChars, minLength: 0, maxLength: 24 }), { numRuns: 150, seed: 20261206 });
  for (const id of new Set([...edges, ...generated])) {
    if (id === "") continue; // an empty id is a missing field for the spec, a separate rule
    t.is(specAccepts(id), await vmmAccepts(id), `drive id ${JSON.stringify(id)}`);
  }
});
