import test from "ava";
import fc from "fast-check";
import { VmctlError } from "../errors.js";
import { checkReference, digestPrefix, IMAGE_FIELD, MAX_REFERENCE_BYTES, normaliseReference, pinnedDigest } from "./reference.js";

const DIGEST = `sha256:${"ab".repeat(32)}`;

test("references normalise the way docker names them", (t) => {
  const cases: [string, string | undefined][] = [
    ["node:20", "docker.io/library/node:20"],
    ["node", "docker.io/library/node:latest"],
    ["library/node:20", "docker.io/library/node:20"],
    ["docker.io/node:20", "docker.io/library/node:20"],
    ["index.docker.io/library/node", "docker.io/library/node:latest"],
    ["docker://node:20", "docker.io/library/node:20"],
    ["bitnami/redis:7.2", "docker.io/bitnami/redis:7.2"],
    ["ghcr.io/a/b/c:v1", "ghcr.io/a/b/c:v1"],
    ["127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"],
    ["localhost/app:1", "localhost/app:1"],
    [`node@${DIGEST}`, `docker.io/library/node@${DIGEST}`],
    [`node:20@${DIGEST}`, `docker.io/library/node:20@${DIGEST}`],
    ["Node:20", undefined],
    ["node@sha256:xyz", undefined],
    ["node:", undefined],
    ["", undefined],
    ["docker-archive:/tmp/a.tar", undefined],
    ["oci:/tmp/layout:1", undefined],
  ];
  for (const [input, expected] of cases) t.is(normaliseReference(input), expected, input);
});

test("digests and prefixes are told from names", (t) => {
  t.deepEqual(digestPrefix(DIGEST), { hex: "ab".repeat(32), explicit: true });
  t.deepEqual(digestPrefix("abababababab"), { hex: "abababababab", explicit: false });
  t.is(digestPrefix("ababababab"), undefined);
  t.is(digestPrefix("node:20"), undefined);
  t.is(pinnedDigest(`node@${DIGEST}`), DIGEST);
  t.is(pinnedDigest("node:20"), undefined);
});

function refused(t: import("ava").ExecutionContext, value: unknown, field?: string): VmctlError | undefined {
  const err = t.throws(() => checkReference(value, field), { instanceOf: VmctlError }, JSON.stringify(value)?.slice(0, 80));
  t.is(err?.code, "INVALID_ARGUMENT");
  t.is(err?.details.field, field ?? IMAGE_FIELD);
  t.true(err?.message.startsWith(`${field ?? IMAGE_FIELD}: `), err?.message);
  // Messages stay short, whatever was sent.
  t.true((err?.message.length ?? 0) < 300);
  return err;
}

test("bad references are INVALID_ARGUMENT naming the image field", (t) => {
  const bad = [
    "",
    "node\0:20",
    "node:20\n",
    "\u007f",
    "\u0085x",
    "a".repeat(MAX_REFERENCE_BYTES + 1),
    "é".repeat(2049),
    `oci:/${"é".repeat(2046)}`,
    "\uD800node",
    "oci:/x\uDC00",
    // white space, anywhere, of any kind
    "node 20",
    " node:20",
    "oci:/my images/a:1",
    "node:20\u00a0",
    "a\u2028b",
    "\u3000",
    // a registry reference is ASCII
    "ünïcødé:✓",
    "node:２０",
    "docker://café/app",
    42,
    null,
    undefined,
    {},
  ];
  for (const value of bad) refused(t, value);
  t.is(checkReference("a".repeat(MAX_REFERENCE_BYTES)), "a".repeat(MAX_REFERENCE_BYTES));
  // An archive's path is a file on the daemon's host: any Unicode, up to the byte limit.
  for (const good of ["oci:/srv/images/café:v1", "docker-archive:/tmp/образ.tar", `oci:/${"é".repeat(2045)}`, "docker-archive:/😀.tar:app:1"]) {
    t.is(checkReference(good), good);
  }
});

test("the caller names the field: a missing reference is required, a bad one refused, under that name", (t) => {
  t.regex(refused(t, undefined, "reference")?.message ?? "", /^reference: is required/);
  t.regex(refused(t, null, "reference")?.message ?? "", /^reference: is required/);
  t.regex(refused(t, "", "run.image")?.message ?? "", /^run\.image: is required/);
  t.regex(refused(t, "a".repeat(5000), "reference")?.message ?? "", /^reference: is too long \(5000 bytes\); at most 4096$/);
  t.regex(refused(t, "node 20", "reference")?.message ?? "", /white space/);
  t.regex(refused(t, "nöde", "reference")?.message ?? "", /a registry reference is ASCII/);
  t.regex(refused(t, 7, "image")?.message ?? "", /must be a string/);
});

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const WHITE_SPACE = /\s/u;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const isArchive = (s: string): boolean => s.startsWith("docker-archive:") || s.startsWith("oci:");

/** The rule, said once more in the test's own words: why `value` must be refused, or undefined. */
function whyRefused(value: string): string | undefined {
  if (value === "") return "empty";
  if (Buffer.byteLength(value) > MAX_REFERENCE_BYTES) return "too long";
  if (CONTROL.test(value)) return "control";
  if (WHITE_SPACE.test(value)) return "white space";
  if (LONE_SURROGATE.test(value)) return "lone surrogate";
  if (/[^\x00-\x7f]/.test(value) && !isArchive(value)) return "non-ASCII registry reference";
  return undefined;
}

/** A string with `bad` put somewhere in it. */
const withInside = (bad: fc.Arbitrary<string>) =>
  fc.tuple(fc.string({ maxLength: 20 }), bad, fc.string({ maxLength: 20 })).map(([a, b, c]) => `${a}${b}${c}`);

test("property: any string is accepted as is exactly when the rule allows it, else refused as INVALID_ARGUMENT on the caller's field, never a crash", (t) => {
  const strings = fc.oneof(
    fc.string({ unit: "binary", maxLength: 200 }),
    fc.string({ unit: "grapheme", maxLength: 200 }),
    fc.string({ unit: fc.constantFrom("\0", "\n", " ", "\u00a0", "a", ":", "/", "@", "\u0085", "\uD800", "é", "😀"), maxLength: 50 }),
    fc.tuple(fc.constantFrom("oci:", "docker-archive:", "docker://", ""), fc.string({ unit: fc.constantFrom("a", "/", ":", "é", "😀", " ", "\uDC00", "\t"), maxLength: 40 })).map(([a, b]) => a + b),
    fc.integer({ min: 4000, max: 20_000 }).map((n) => "x".repeat(n)),
    fc.integer({ min: 1000, max: 3000 }).map((n) => `oci:/${"😀".repeat(n)}`),
  );
  fc.assert(
    fc.property(strings, fc.constantFrom(undefined, "image", "reference"), (value, field) => {
      const why = whyRefused(value);
      let accepted: string;
      try {
        accepted = checkReference(value, field);
      } catch (err) {
        return (
          why !== undefined &&
          err instanceof VmctlError &&
          err.code === "INVALID_ARGUMENT" &&
          err.details.field === (field ?? IMAGE_FIELD) &&
          err.message.length <= 300
        );
      }
      // Whatever is accepted normalises (or not) without throwing.
      normaliseReference(accepted);
      return why === undefined && accepted === value;
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test("property: control characters, white space or non-ASCII in a registry reference are refused wherever they are", (t) => {
  const hostile = fc.oneof(
    withInside(fc.constantFrom(..."\u0000\u0001\u0007\b\t\n\r\u001b\u007f\u0085\u009f")),
    withInside(fc.constantFrom(" ", "\u00a0", "\u1680", "\u2028", "\u202f", "\u3000", "\ufeff")),
    withInside(fc.string({ unit: "binary", minLength: 1, maxLength: 4 }).filter((s) => /[^\x00-\x7f]/.test(s))).filter((s) => !isArchive(s)),
    fc.constant(`docker-archive:/${"é".repeat(MAX_REFERENCE_BYTES)}`),
  );
  fc.assert(
    fc.property(hostile, (value) => {
      try {
        checkReference(value, "reference");
        return false;
      } catch (err) {
        return err instanceof VmctlError && err.code === "INVALID_ARGUMENT" && err.details.field === "reference";
      }
    }),
    { numRuns: 1000 },
  );
  t.pass();
});
