// The CLI's side of copying out: the flags' parsing under generated input, and where an
// archive lands (cp(1)'s rule, staged so a failure leaves the destination as it was),
// including archives a hostile service could send (entries escaping the destination).
import test from "ava";
import fc from "fast-check";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Header } from "tar";
import { CliError } from "../errors.js";
import { copyOutTo, parseCopyOut } from "./copy-out.js";
import { parseVolume } from "./run.js";

/** A service whose CopyOut answers `archive`: what vmctld would stream. */
function serving(archive: Uint8Array): { copyOut: () => AsyncIterable<Uint8Array> } {
  return {
    copyOut: async function* () {
      // In pieces, as it comes off the wire.
      for (let at = 0; at < archive.byteLength; at += 700) yield archive.subarray(at, at + 700);
    },
  };
}

type Entry = { path: string; type?: "File" | "Directory" | "SymbolicLink"; body?: string; linkpath?: string };

/** A ustar archive of `entries`, built header by header (so it may hold what no packer would write). */
function tarOf(entries: readonly Entry[]): Uint8Array {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? "");
    const header = new Header({ path: e.path, type: e.type ?? "File", size: e.type === undefined || e.type === "File" ? body.byteLength : 0, mode: 0o644, mtime: new Date(0), ...(e.linkpath ? { linkpath: e.linkpath } : {}) });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block);
    if (body.byteLength > 0 && (e.type ?? "File") === "File") blocks.push(body, Buffer.alloc((512 - (body.byteLength % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

const OUT_TREE: Entry[] = [
  { path: "out/", type: "Directory" },
  { path: "out/a.txt", body: "a\n" },
  { path: "out/naïve ☕.txt", body: "unicode\n" },
  { path: "out/sub/", type: "Directory" },
  { path: "out/sub/b.txt", body: "b\n" },
  { path: "out/link", type: "SymbolicLink", linkpath: "a.txt" },
];

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-cli-copy-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const listing = (dir: string): string[] => readdirSync(dir, { recursive: true, encoding: "utf8" }).sort();

test("a directory lands as DEST when DEST does not exist, with nothing staged left beside it", async (t) => {
  const dir = scratch(t);
  const landed = await copyOutTo(serving(tarOf(OUT_TREE)), "svc", "/src/out", join(dir, "results"));
  t.is(landed, join(dir, "results"));
  t.deepEqual(listing(join(dir, "results")), ["a.txt", "link", "naïve ☕.txt", "sub", "sub/b.txt"]);
  t.is(readFileSync(join(dir, "results", "sub", "b.txt"), "utf8"), "b\n");
  t.deepEqual(readdirSync(dir), ["results"], "no staging directory left");
});

test("into an existing directory a directory's contents merge (files replaced, others kept); a file goes in by its name", async (t) => {
  const dir = scratch(t);
  const results = join(dir, "results");
  mkdirSync(results);
  writeFileSync(join(results, "a.txt"), "old\n");
  writeFileSync(join(results, "kept.txt"), "kept\n");
  await copyOutTo(serving(tarOf(OUT_TREE)), "svc", "/src/out", results);
  t.is(readFileSync(join(results, "a.txt"), "utf8"), "a\n");
  t.is(readFileSync(join(results, "kept.txt"), "utf8"), "kept\n");
  await copyOutTo(serving(tarOf([{ path: "report.xml", body: "<ok/>" }])), "svc", "/src/report.xml", results);
  t.is(readFileSync(join(results, "report.xml"), "utf8"), "<ok/>");
  await copyOutTo(serving(tarOf([{ path: "report.xml", body: "<new/>" }])), "svc", "/src/report.xml", join(results, "report.xml"));
  t.is(readFileSync(join(results, "report.xml"), "utf8"), "<new/>", "an existing file is replaced by a file");
});

test("a directory onto an existing file is refused and the file stays as it was", async (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, "results"), "precious\n");
  await t.throwsAsync(copyOutTo(serving(tarOf(OUT_TREE)), "svc", "/src/out", join(dir, "results")), { instanceOf: CliError, message: /cannot copy a directory onto the file/ });
  t.is(readFileSync(join(dir, "results"), "utf8"), "precious\n");
  t.deepEqual(readdirSync(dir), ["results"]);
});

test("a hostile archive (an entry climbing out, an absolute one, a link out then through it, two top entries) writes nothing outside and leaves DEST as it was", async (t) => {
  const dir = scratch(t);
  const outside = join(dir, "outside");
  mkdirSync(outside);
  const hostile: Entry[][] = [
    [{ path: "out/", type: "Directory" }, { path: "out/../../outside/escaped", body: "x" }],
    [{ path: join(outside, "absolute"), body: "x" }],
    [{ path: "out/", type: "Directory" }, { path: "out/up", type: "SymbolicLink", linkpath: outside }, { path: "out/up/through", body: "x" }],
    [{ path: "a", body: "x" }, { path: "b", body: "y" }],
  ];
  for (const entries of hostile) {
    const dest = join(dir, "results");
    await t.throwsAsync(copyOutTo(serving(tarOf(entries)), "svc", "/out", dest), undefined, JSON.stringify(entries.map((e) => e.path)));
    t.false(existsSync(dest), "DEST not made");
    t.deepEqual(readdirSync(outside), [], "nothing written outside");
    t.deepEqual(readdirSync(dir).sort(), ["outside"], "no staging directory left");
  }
});

test("--copy-out and -v parse any text to a value or one usage error (exit 2), nothing else", (t) => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom("/", ":", "a", "é", "\u0000", "\n", ".", " ", "ro", "rw") , maxLength: 24 }), (text) => {
      for (const parse of [() => parseCopyOut(text), () => parseVolume(text)]) {
        try {
          const value = parse();
          t.true(typeof value === "object" && value !== null);
        } catch (err) {
          if (!(err instanceof CliError) || err.exitCode !== 2) throw err;
        }
      }
    }),
  );
  t.deepEqual(parseCopyOut("/src/out:./out"), { path: "/src/out", dest: "./out" });
  t.deepEqual(parseVolume("/data:/src:ro"), { source: "/data", destination: "/src", readOnly: true });
  t.throws(() => parseVolume("/data:relative"), { instanceOf: CliError, message: /expected SRC:\/DST/ });
  t.throws(() => parseCopyOut("relative:./out"), { instanceOf: CliError, message: /expected \/PATH\/IN\/SERVICE:DEST/ });
});
