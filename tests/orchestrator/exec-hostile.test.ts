// Exec and CopyOut under hostile clients, property-based: sequences of Exec messages — a start with
// hostile ids, args, sizes; then stdin bytes, ends of stdin, resizes of any size, signals
// named by any text, a second start, bytes that are no message at all — against a real
// vmctld with a running oci service (runc). Every call ends before its deadline with a
// documented status (never INTERNAL or UNKNOWN; INVALID_ARGUMENT naming its field),
// vmctld stays up, the service keeps running, and no exec'd command outlives its call.
import * as grpc from "@grpc/grpc-js";
import test from "ava";
import fc from "fast-check";
import { spawnSync } from "node:child_process";
import { vmctl as pb } from "@vmctl/proto";
import { canonicalSignal } from "@vmctl/core/target-kit";
import { RawOrchestrator, type RawOutcome } from "./helpers/raw-client.js";
import { hostileText } from "./adversarial/requests.js";
import { Daemon, sandbox, teardown, until, vmctl, type Sandbox } from "./helpers/sandbox.js";

const RUNS = Number(process.env.VMCTL_EXEC_FUZZ_RUNS ?? 300);
const SEED = process.env.VMCTL_FUZZ_SEED === undefined ? undefined : Number(process.env.VMCTL_FUZZ_SEED);
const DEADLINE_MS = 15_000;
const SERVICE = "target";
/** The plausible command: ends by itself within seconds whatever it is sent (busybox timeout). */
const PLAUSIBLE_ARGS = ["timeout", "2", "cat"];
/** Signals that would freeze the command past its timeout (a stopped process ignores it). */
const FREEZING = new Set(["SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU"]);
const S = grpc.status;
const ANSWERS = new Set([S.OK, S.INVALID_ARGUMENT, S.NOT_FOUND, S.FAILED_PRECONDITION, S.RESOURCE_EXHAUSTED]);

let sb: Sandbox;
let daemon: Daemon;
let raw: RawOrchestrator;

test.before(async () => {
  sb = sandbox("vmctl-exec-hostile-");
  daemon = await Daemon.start(sb);
  raw = new RawOrchestrator(sb.socket);
  const started = await vmctl(sb, ["run", "-d", "--name", SERVICE, sb.rootfs, "--", "sleep", "3600"]);
  if (started.code !== 0) throw new Error(`could not start the service: ${started.stderr}`);
});
test.after.always(async () => {
  raw?.close();
  if (sb) await teardown(sb, [daemon]);
});

/** A terminal dimension: mostly one a terminal has, sometimes past any bound. */
const cells = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 500 }) }, { weight: 1, arbitrary: fc.oneof(fc.constantFrom(0, 65_535, 65_536, 2 ** 32 - 1), fc.nat()) });
const size = fc.record({ rows: cells, cols: cells });

const start: fc.Arbitrary<pb.v1.IExecStart> = fc.record(
  {
    id: fc.oneof({ weight: 4, arbitrary: fc.constant(SERVICE) }, { weight: 1, arbitrary: hostileText }),
    args: fc.oneof({ weight: 4, arbitrary: fc.constant(PLAUSIBLE_ARGS) }, { weight: 1, arbitrary: fc.array(hostileText, { maxLength: 4 }) }),
    tty: fc.boolean(),
    stdin: fc.boolean(),
    size,
  },
  { requiredKeys: ["id", "args"] },
);

/** A signal's text: a name the host knows (never one that freezes), or anything at all. */
const signalText = fc
  .oneof(fc.constantFrom("INT", "TERM", "HUP", "USR1", "WINCH", "SIGKILL", "9", "0", "99", "-1", "kill", "SIG"), hostileText)
  .filter((text) => !FREEZING.has(canonicalSignal(text) ?? ""));

const followUp: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 4096 }).map((stdin) => encode({ stdin })),
  fc.constant(encode({ closeStdin: {} })),
  size.map((resize) => encode({ resize })),
  signalText.map((signal) => encode({ signal })),
  start.map((s) => encode({ start: s })),
  // not a message at all
  fc.uint8Array({ minLength: 1, maxLength: 32 }).map((bytes) => Buffer.from(bytes)),
);

const sequence = fc.tuple(fc.oneof({ weight: 5, arbitrary: start.map((s) => encode({ start: s })) }, { weight: 1, arbitrary: followUp }), fc.array(followUp, { maxLength: 6 }));

function encode(message: pb.v1.IExecInput): Buffer {
  return Buffer.from(pb.v1.ExecInput.encode(message).finish());
}

function problem(outcome: RawOutcome): string | undefined {
  if (!ANSWERS.has(outcome.code)) return `${S[outcome.code]}: ${outcome.message}`;
  if (outcome.code === S.INVALID_ARGUMENT && !outcome.details.field && !/^malformed vmctl\.v1\.ExecInput/.test(outcome.message)) return `INVALID_ARGUMENT naming no field: ${outcome.message}`;
  return undefined;
}

function execedCommands(): string[] {
  return spawnSync("pgrep", ["-af", "timeout 2 cat"], { encoding: "utf8" }).stdout.split("\n").filter((line) => line && !line.includes("pgrep"));
}

test.serial("any sequence of Exec messages ends with a documented status; vmctld and the service stay up; no command outlives its call", async (t) => {
  t.timeout(600_000);
  const counts: Record<string, number> = {};
  await fc.assert(
    fc.asyncProperty(sequence, async ([first, rest]) => {
      const outcome = await raw.duplex("exec", [first, ...rest], DEADLINE_MS);
      const name = S[outcome.code] ?? String(outcome.code);
      counts[name] = (counts[name] ?? 0) + 1;
      const wrong = problem(outcome);
      if (wrong !== undefined) throw new Error(`${wrong}\n  messages: ${[first, ...rest].map((m) => m.toString("hex").slice(0, 200)).join(" ")}`);
      if (!(await daemon.client.get(SERVICE)).phase.startsWith("running")) throw new Error("the service stopped running");
    }),
    { numRuns: RUNS, includeErrorInReport: true, ...(SEED === undefined ? {} : { seed: SEED }) },
  );
  await until("every exec'd command to end with its call", () => execedCommands().length === 0, 10_000).catch(() => {
    throw new Error(`commands outlived their calls: ${execedCommands().join("; ")}`);
  });
  t.log(`exec fuzz: ${RUNS} sequences; by status ${JSON.stringify(counts)}`);
  t.true((counts.OK ?? 0) > 0 && (counts.INVALID_ARGUMENT ?? 0) > 0, "both successes and refusals were exercised");
});

const copyPath = fc.oneof(
  fc.constantFrom("/", "/bin", "/bin/busybox", "/proc/1/root/etc", "/proc/self/root", "/proc/1/cwd", "/../../etc", "/bin/../../..", "/dev/null", "/nope", "/bin/busybox/x", "//bin", "/bin/"),
  hostileText,
  hostileText.map((text) => `/${text}`),
);

test.serial("CopyOut with any path ends with a documented status; what it gives is one entry named for the path; vmctld and the service stay up", async (t) => {
  t.timeout(300_000);
  const counts: Record<string, number> = {};
  await fc.assert(
    fc.asyncProperty(copyPath, async (path) => {
      const outcome = await raw.call("copyOut", Buffer.from(pb.v1.CopyOutRequest.encode({ id: SERVICE, path }).finish()), DEADLINE_MS);
      const name = S[outcome.code] ?? String(outcome.code);
      counts[name] = (counts[name] ?? 0) + 1;
      const wrong = problem(outcome);
      if (wrong !== undefined) throw new Error(`${wrong}\n  path: ${JSON.stringify(path.slice(0, 200))}`);
      if (outcome.code === S.OK) {
        const tar = Buffer.concat(outcome.responses.map((r) => Buffer.from(pb.v1.CopyOutChunk.decode(r).data)));
        // The first header's name (ustar: bytes 0..99): the path's last component, under its own name.
        const first = tar.subarray(0, 100).toString("utf8").replace(/\0.*$/s, "");
        const base = path.replace(/\/+$/, "").split("/").pop();
        if (first.replace(/\/$/, "").split("/")[0] !== base) throw new Error(`CopyOut of ${JSON.stringify(path)} held ${JSON.stringify(first)} first`);
      }
      if (!(await daemon.client.get(SERVICE)).phase.startsWith("running")) throw new Error("the service stopped running");
    }),
    { numRuns: 150, includeErrorInReport: true, ...(SEED === undefined ? {} : { seed: SEED }) },
  );
  t.log(`copy-out fuzz: 150 paths; by status ${JSON.stringify(counts)}`);
  t.true((counts.OK ?? 0) > 0 && (counts.NOT_FOUND ?? 0) > 0 && (counts.INVALID_ARGUMENT ?? 0) > 0, "copies, missing paths and refusals were all exercised");
});
