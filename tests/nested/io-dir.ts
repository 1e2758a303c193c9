// The host side of L1's "io" share: a temp dir holding command.sh, and the command's
// stdout, stderr and status written back by L1. Named after the owning process, so a
// later run can remove those left by a test process that was killed before its own
// cleanup ran.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pidAlive } from "@vmctl/core/target-kit";

const PREFIX = "vmctl-l1-io-";

function removeOrphans(parent: string): void {
  for (const name of readdirSync(parent)) {
    const owner = name.startsWith(PREFIX) ? Number(name.slice(PREFIX.length).split("-")[0]) : NaN;
    if (Number.isInteger(owner) && owner !== process.pid && !pidAlive(owner)) {
      rmSync(join(parent, name), { recursive: true, force: true });
    }
  }
}

export function makeIoDir(parent: string = tmpdir()): string {
  removeOrphans(parent);
  return mkdtempSync(join(parent, `${PREFIX}${process.pid}-`));
}
