// virtio-net throughput through the device model: a guest driver in guest memory (the
// device's own test driver, over the real virtio-mmio transport and event loop) against a
// real TAP in a network namespace of its own (crates/devices/examples/net_bench.rs). Each
// direction with 1514-byte frames (a 1,500-byte MTU, no offloads) and 65,535-byte TCP/IPv4
// GSO frames with checksum offload (the largest frame the TAP takes unsegmented). No test
// guest drives virtio-net, so the driver's side runs natively: what is measured is the
// device model and the TAP, not a guest's stack.
// Peer in the same run: the same TAP traffic without the device model (read/write on the
// TAP descriptor from a plain buffer).
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { median, report, reportError } from "./lib/report.js";

const RUNS = 5;
const SECONDS = 1;
const MIB = 1024 * 1024;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BINARY = `${ROOT}target/release/examples/net_bench`;

interface Run {
  readonly frames: number;
  readonly bytes: number;
  readonly secs: number;
  readonly dropped: number;
}

function run(direction: "tx" | "rx", frameBytes: number, raw: boolean): Run {
  const args = [direction, String(frameBytes), String(SECONDS), ...(raw ? ["--raw"] : [])];
  return JSON.parse(execFileSync(BINARY, args, { encoding: "utf8" }).trim().split("\n").at(-1) ?? "") as Run;
}

const NAMES = ["tx_1514", "tx_64k", "rx_1514", "rx_64k"].flatMap((c) => [`vmm_net_device_model_${c}`, `vmm_net_device_model_${c}_frames`]);

try {
  execFileSync("cargo", ["build", "--release", "--locked", "-p", "vmctl-devices", "--example", "net_bench", "--features", "test-utils"], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "inherit"],
  });
} catch (err) {
  for (const name of NAMES) reportError(name, `cannot build the net_bench example: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(0);
}

for (const direction of ["tx", "rx"] as const) {
  for (const frameBytes of [1514, 65_535]) {
    const size = frameBytes > 1514 ? "64k" : "1514";
    const name = `vmm_net_device_model_${direction}_${size}`;
    try {
      const device: Run[] = [];
      const peer: Run[] = [];
      for (let i = 0; i < RUNS; i++) {
        const d = run(direction, frameBytes, false);
        if (d.dropped !== 0 || d.frames === 0) throw new Error(`${name}: ${JSON.stringify(d)}`);
        device.push(d);
        peer.push(run(direction, frameBytes, true));
      }
      const mibs = (r: Run) => r.bytes / MIB / r.secs;
      const fps = (r: Run) => r.frames / r.secs;
      const conditions = {
        frame_bytes: frameBytes,
        offloads: frameBytes > 1514 ? "csum+tso4 (GSO frames)" : "none",
        seconds_per_run: SECONDS,
        ...(direction === "rx" ? { source: "AF_PACKET sender thread on the TAP (shares the 2 cores)" } : { sink: "the namespace's stack (drops the frames)" }),
      };
      report({
        name,
        unit: "MiB/s",
        value: median(device.map(mibs)),
        baseline: median(peer.map(mibs)),
        baselineName: `TAP ${direction === "tx" ? "write" : "read"} without the device model`,
        runs: RUNS,
        ...(frameBytes > 1514 ? { target: ">= 1192 MiB/s (10 Gbit/s)" } : {}),
        conditions,
      });
      report({
        name: `${name}_frames`,
        unit: "frames/s",
        value: median(device.map(fps)),
        baseline: median(peer.map(fps)),
        baselineName: `TAP ${direction === "tx" ? "write" : "read"} without the device model`,
        runs: RUNS,
        conditions,
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      reportError(name, message);
      reportError(`${name}_frames`, message);
    }
  }
}
