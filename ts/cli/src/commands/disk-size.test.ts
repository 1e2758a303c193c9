import test from "ava";
import fc from "fast-check";
import { CliError } from "../errors.js";
import { parseDiskSize } from "./disk-size.js";

test("--disk-size takes the sizes people write", (t) => {
  for (const [text, mib] of [
    ["512", 512],
    ["512M", 512],
    ["20G", 20 * 1024],
    ["20GiB", 20 * 1024],
    ["1.5g", 1536],
    ["1T", 1024 * 1024],
    [" 64 MB ", 64],
  ] as const) {
    t.is(parseDiskSize(text), mib, text);
  }
});

test("anything else is a usage error naming the flag, never a crash", (t) => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 40 }), (text) => {
      try {
        const mib = parseDiskSize(text);
        return Number.isSafeInteger(mib) && mib > 0;
      } catch (err) {
        return err instanceof CliError && err.exitCode === 2 && err.message.startsWith("--disk-size ") && !err.message.includes("\n");
      }
    }),
    { numRuns: 2000 },
  );
  for (const bad of ["", "0", "-1G", "10Q", "G", "1e9", "NaN", "9".repeat(30)]) {
    t.throws(() => parseDiskSize(bad), { instanceOf: CliError }, bad);
  }
});
