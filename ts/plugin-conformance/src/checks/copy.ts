// capabilities/copy: copyOut() gives a tar of a path under its own name, byte for byte as
// the service has it, while the service runs and after its exit (until destroy); a
// missing path is NOT_FOUND. The tree is the kit's: a Unicode name, an empty dir, a
// nested dir, a relative symlink and a 1 MiB file, written by a POSIX shell script
// through exec (and checked against what sha256sum/readlink print there), or, for a
// target with copy but no exec, by the workload itself (checked against the kit's sums).
import { createHash } from "node:crypto";
import { posix } from "node:path";
import type { ExecResult } from "@vmctl/core/contract";
import { archiveEntries, shellQuote, sha256sums, type ArchivedEntry } from "../testing/archive.js";
import { CheckFailure, NotClaimed, describe, fail, within } from "./budget.js";
import { claims, execExitText, execWhole, refusedCleanly, runningService, stopQuietly } from "./capabilities.js";
import type { Check } from "./check.js";
import type { CheckEnv, Service } from "./check-env.js";
import { startRunning, tail, untilOutput } from "./check-env.js";

/** The name with what trips tar writers up: non-ASCII (NFC and emoji) and a space. */
export const COPY_UNICODE_NAME = "héllo wörld ✓ 名前 🙂.txt";
const UNICODE_CONTENT = "grüße\n";
/** 16384 lines of 64 bytes, each its own number: 1 MiB, where a misplaced block shows. */
const BIG_LINES = 16_384;
const WRITTEN = "vmctl-conformance-copy-written";

/** The script that writes the tree at `path` and prints WRITTEN (sh builtins, mkdir and ln). */
export function copyTreeScript(path: string): string {
  return [
    "set -e",
    `mkdir -p ${shellQuote(`${path}/empty`)} ${shellQuote(`${path}/sub`)}`,
    `cd ${shellQuote(path)}`,
    `printf '%s' ${shellQuote(UNICODE_CONTENT)} > ${shellQuote(COPY_UNICODE_NAME)}`,
    `i=0; while [ $i -lt ${BIG_LINES} ]; do printf '%063d\\n' $i; i=$((i+1)); done > sub/big.bin`,
    `ln -s ${shellQuote(COPY_UNICODE_NAME)} link`,
    `echo ${WRITTEN}`,
  ].join("\n");
}

const sha256 = (data: string): string => createHash("sha256").update(data).digest("hex");
const BIG_CONTENT = Array.from({ length: BIG_LINES }, (_, i) => `${String(i).padStart(63, "0")}\n`).join("");

/** An archive's entries keyed without a directory's trailing "/". */
function normalized(entries: Map<string, ArchivedEntry>): Map<string, ArchivedEntry> {
  return new Map([...entries].map(([path, entry]) => [path.replace(/\/+$/, ""), entry]));
}

/** What differs between an archive and what was expected, one line per entry; empty when equal. */
function differences(got: Map<string, ArchivedEntry>, expected: Map<string, ArchivedEntry>): string[] {
  const out: string[] = [];
  for (const [path, want] of expected) {
    const have = got.get(path);
    if (have === undefined) out.push(`${JSON.stringify(path)} is missing (expected ${JSON.stringify(want)})`);
    else if (have.type !== want.type || have.sha256 !== want.sha256 || have.linkpath !== want.linkpath) {
      out.push(`${JSON.stringify(path)} is ${JSON.stringify(have)}, expected ${JSON.stringify(want)}`);
    }
  }
  for (const path of got.keys()) if (!expected.has(path)) out.push(`${JSON.stringify(path)} was not expected`);
  return out;
}

/** Reads copyOut(path) whole within the step budget; a failure names the path and when. */
async function copied(env: CheckEnv, s: Service, path: string, when: string): Promise<Map<string, ArchivedEntry>> {
  try {
    return normalized(await within(env.timeouts.stepMs, `copyOut(${JSON.stringify(path)}) ${when}, read whole`, () => archiveEntries(s.controller.copyOut!(path))));
  } catch (err) {
    if (err instanceof CheckFailure) throw err;
    fail(`copyOut(${JSON.stringify(path)}) ${when} failed: ${describe(err)}`);
  }
}

function expectSame(got: Map<string, ArchivedEntry>, expected: Map<string, ArchivedEntry>, what: string): void {
  const diff = differences(got, expected);
  if (diff.length > 0) fail(`${what}: ${diff.slice(0, 6).join("; ")}${diff.length > 6 ? `; and ${diff.length - 6} more` : ""}`);
}

async function execText(env: CheckEnv, s: Service, args: string[]): Promise<string> {
  const result: ExecResult = await execWhole(env, s.controller, { args }, `exec(${JSON.stringify(args)}) to end`);
  const stdout = new TextDecoder().decode(result.stdout);
  if (result.code !== 0) fail(`exec(${JSON.stringify(args)}) exited with ${execExitText(result)}; stderr: ${JSON.stringify(tail(new TextDecoder().decode(result.stderr)))}`);
  return stdout;
}

export const capabilityCopy: Check = {
  name: "capabilities/copy",
  async run(env) {
    if (!claims(env, "copy")) {
      const s = await runningService(env);
      const what = await refusedCleanly(env, s, "copyOut", async () => {
        for await (const _ of s.controller.copyOut!("/")) break;
      });
      throw new NotClaimed(`copy not claimed; ${what}`);
    }
    const withExec = claims(env, "exec");
    const fixture = env.fixtures.copy;
    if (!withExec && fixture?.running === undefined) {
      fail("copy is claimed without exec: give fixtures.copy.running(path, script), a service whose workload runs the kit's script first");
    }
    const name = `vmctl-copy-${Math.random().toString(36).slice(2, 10)}`;
    const path = posix.join(fixture?.dir ?? "/tmp", name);
    const script = copyTreeScript(path);
    const { spec, line } = fixture?.running ? fixture.running(path, withExec ? undefined : script) : env.fixtures.specs.runsUntilStopped();
    const s = await env.service(spec);
    await startRunning(env, s, line);
    const c = s.controller;
    if (typeof c.copyOut !== "function") fail("copy is claimed but the controller has no copyOut()");

    // The tree, and what it must hold: as the service sees it (exec), else as the kit wrote it.
    let sums: { unicode: string; big: string; link: string };
    if (withExec) {
      const written = await execText(env, s, ["sh", "-c", script]);
      if (!written.includes(WRITTEN)) fail(`the kit's tree script did not finish through exec: ${JSON.stringify(tail(written))}`);
      const printed = sha256sums(await execText(env, s, ["sha256sum", `${path}/${COPY_UNICODE_NAME}`, `${path}/sub/big.bin`]));
      const link = (await execText(env, s, ["readlink", `${path}/link`])).replace(/\n$/, "");
      const unicode = printed.get(`${path}/${COPY_UNICODE_NAME}`);
      const big = printed.get(`${path}/sub/big.bin`);
      if (unicode === undefined || big === undefined) fail(`sha256sum in the service printed no sum for both files: ${JSON.stringify([...printed])}`);
      sums = { unicode, big, link };
    } else {
      await untilOutput(env, s, WRITTEN);
      sums = { unicode: sha256(UNICODE_CONTENT), big: sha256(BIG_CONTENT), link: COPY_UNICODE_NAME };
    }
    const expected = new Map<string, ArchivedEntry>([
      [name, { type: "Directory" }],
      [`${name}/empty`, { type: "Directory" }],
      [`${name}/sub`, { type: "Directory" }],
      [`${name}/${COPY_UNICODE_NAME}`, { type: "File", sha256: sums.unicode }],
      [`${name}/sub/big.bin`, { type: "File", sha256: sums.big }],
      [`${name}/link`, { type: "SymbolicLink", linkpath: sums.link }],
    ]);
    const bigFile = new Map<string, ArchivedEntry>([["big.bin", { type: "File", sha256: sums.big }]]);

    expectSame(await copied(env, s, path, "while running"), expected, `copyOut(${JSON.stringify(path)}) while running`);
    expectSame(await copied(env, s, `${path}/sub/big.bin`, "while running"), bigFile, "copyOut of a file (held under its own name) while running");

    const missing = `${path}/no-such-file`;
    try {
      await within(env.timeouts.stepMs, `copyOut(${JSON.stringify(missing)}) to fail`, () => archiveEntries(c.copyOut!(missing)));
      fail(`copyOut(${JSON.stringify(missing)}) of a missing path gave an archive; expected NOT_FOUND`);
    } catch (err) {
      if (err instanceof CheckFailure) throw err;
      const e = err as { name?: unknown; code?: unknown };
      if (e.code !== "NOT_FOUND") fail(`copyOut(${JSON.stringify(missing)}) of a missing path failed with ${describe(err)}; expected a VmctlError NOT_FOUND`);
    }

    await stopQuietly(env, s);
    const state = await env.step(`state(${s.id}) after stop`, () => c.state());
    if (state.phase !== "exited") fail(`after stop() resolved, state() says "${state.phase}", expected "exited"`);
    expectSame(await copied(env, s, path, "after the exit"), expected, `copyOut(${JSON.stringify(path)}) after the exit (the contract: until destroy)`);
    expectSame(await copied(env, s, `${path}/sub/big.bin`, "after the exit"), bigFile, "copyOut of a file after the exit");
    env.note(`${withExec ? "tree written through exec" : "tree written by the workload"}; ${expected.size} entries compared running and after the exit`);
  },
};
