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

function refused(t: import("ava").ExecutionContext, value: unknown): void {
  const err = t.throws(() => checkReference(value), { instanceOf: VmctlError }, JSON.stringify(value)?.slice(0, 80));
  t.is(err?.code, "INVALID_ARGUMENT");
  t.is(err?.details.field, IMAGE_FIELD);
  // Messages stay short, whatever was sent.
  t.true((err?.message.length ?? 0) < 300);
}

test("bad references are INVALID_ARGUMENT naming the image field", (t) => {
  for (const bad of ["", "node\0:20", "node:20\n", "\u007f", "\u0085x", "a".repeat(MAX_REFERENCE_BYTES + 1), "é".repeat(2049), "\uD800node", 42, null, undefined, {}]) {
    refused(t, bad);
  }
  t.is(checkReference("a".repeat(MAX_REFERENCE_BYTES)), "a".repeat(MAX_REFERENCE_BYTES));
  t.is(checkReference("ünïcødé:✓"), "ünïcødé:✓");
});

test("property: any string is either accepted as is or refused as INVALID_ARGUMENT on image, never a crash", (t) => {
  const strings = fc.oneof(
    fc.string({ unit: "binary", maxLength: 200 }),
    fc.string({ unit: "grapheme", maxLength: 200 }),
    fc.string({ unit: fc.constantFrom("\0", "\n", "a", ":", "/", "@", "\u0085", "\uD800", "é", "😀"), maxLength: 50 }),
    fc.integer({ min: 4000, max: 20_000 }).map((n) => "x".repeat(n)),
    fc.integer({ min: 1300, max: 3000 }).map((n) => "😀".repeat(n)),
  );
  fc.assert(
    fc.property(strings, (value) => {
      let accepted: string | undefined;
      try {
        accepted = checkReference(value);
      } catch (err) {
        if (!(err instanceof VmctlError) || err.code !== "INVALID_ARGUMENT" || err.details.field !== IMAGE_FIELD) return false;
        if (err.message.length > 300) return false;
        // Refused only for a reason.
        return (
          value === "" ||
          Buffer.byteLength(value) > MAX_REFERENCE_BYTES ||
          /[\u0000-\u001f\u007f-\u009f]/.test(value) ||
          /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(value)
        );
      }
      // Whatever is accepted normalises (or not) without throwing.
      normaliseReference(accepted);
      return accepted === value;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
