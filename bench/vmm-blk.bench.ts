// virtio-blk throughput through the device model: a test guest ("virtio-blk-bench")
// keeps requests in flight over a buffer it never touches, so the VMM's work (request
// parsing, pread/pwrite between the file and guest memory, completion) is what the
// device's busy time measures. 64 MiB per run, with 4 KiB and 128 KiB requests, reads
// and writes. Peer in the same run: `dd` moving the same bytes with the same block size.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootGuest } from "../tests/guests/harness.js";
import { median, report } from "./lib/report.js";

const RUNS = 3;
const TOTAL = 64 * 1024 * 1024;
const MIB = 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), "vmctl-bench-blk-"));
const disk = join(dir, "disk.img");
// A real (non-sparse) file, so reads come from the page cache rather than holes.
writeFileSync(disk, Buffer.alloc(TOTAL, 0xa5));

function ddMibPerSec(op: "read" | "write", requestBytes: number): number {
  const count = String(TOTAL / requestBytes);
  const args =
    op === "read"
      ? [`if=${disk}`, "of=/dev/null", `bs=${requestBytes}`, `count=${count}`]
      : ["if=/dev/zero", `of=${disk}`, `bs=${requestBytes}`, `count=${count}`, "conv=notrunc"];
  const start = performance.now();
  execFileSync("dd", args, { stdio: "ignore" });
  return TOTAL / MIB / ((performance.now() - start) / 1000);
}

try {
  for (const op of ["read", "write"] as const) {
    for (const requestBytes of [4096, 128 * 1024]) {
      const device: number[] = [];
      const endToEnd: number[] = [];
      const dd: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const started = performance.now();
        const { state, metrics, console } = await bootGuest({
          test: "virtio-blk-bench",
          memMib: 24 + Math.ceil(requestBytes / MIB),
          drives: [{ driveId: "bench", pathOnHost: disk }],
          args: [`vmctl.bytes=${TOTAL}`, `vmctl.req=${requestBytes}`, `vmctl.op=${op}`],
          timeoutMs: 300_000,
        });
        const wallS = (performance.now() - started) / 1000;
        const block = metrics.block[0];
        const moved = op === "read" ? block?.readBytes : block?.writeBytes;
        if (state.exit?.code !== 0 || block === undefined || moved !== TOTAL) {
          throw new Error(`virtio-blk-bench failed (${op} ${requestBytes}): ${JSON.stringify(state)} ${console.slice(-500)}`);
        }
        device.push(TOTAL / MIB / (block.busyUs / 1e6));
        endToEnd.push(TOTAL / MIB / wallS);
        dd.push(ddMibPerSec(op, requestBytes));
      }
      const size = requestBytes >= MIB ? `${requestBytes / MIB}m` : `${requestBytes / 1024}k`;
      report({
        name: `vmm_blk_device_model_${op}_${size}`,
        unit: "MiB/s",
        value: median(device),
        baseline: median(dd),
        baselineName: `dd ${op} bs=${size}`,
        runs: RUNS,
        target: requestBytes === 128 * 1024 ? ">= 1024 MiB/s" : undefined,
      });
      report({
        name: `vmm_blk_guest_end_to_end_${op}_${size}`,
        unit: "MiB/s",
        value: median(endToEnd),
        runs: RUNS,
        // Includes booting and the guest driver, which PVM emulates instruction by instruction.
      });
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
