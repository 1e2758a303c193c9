import test from "ava";
import fc from "fast-check";
import { ValidationError } from "../errors.js";
import { canonicalCidr, cidrContains, cidrOverlaps, cidrSize, formatAddress, formatCidr, isAddress, nthHost, parseAddress, parseCidr, type Cidr } from "./ipv4.js";

const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const prefixLen = fc.integer({ min: 0, max: 32 });
/** A subnet: a random address with its host bits cleared. */
const cidr: fc.Arbitrary<Cidr> = fc.tuple(u32, prefixLen).map(([a, p]) => {
  const size = 2 ** (32 - p);
  return { base: a - (a % size), prefix: p };
});

test("an address round-trips through its text, and the text is canonical", (t) => {
  fc.assert(
    fc.property(u32, (n) => {
      const text = formatAddress(n);
      t.is(parseAddress(text, "a"), n);
      t.true(isAddress(text));
      t.regex(text, /^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/);
    }),
  );
});

test("a subnet round-trips through its text; a bare address is a /32", (t) => {
  fc.assert(
    fc.property(cidr, (c) => {
      t.deepEqual(parseCidr(formatCidr(c), "c"), c);
      t.is(canonicalCidr(formatCidr(c), "c"), formatCidr(c));
    }),
  );
  fc.assert(fc.property(u32, (n) => t.is(canonicalCidr(formatAddress(n), "c"), `${formatAddress(n)}/32`)));
});

test("host bits set are refused, or with loose give the subnet they are in", (t) => {
  fc.assert(
    fc.property(u32, fc.integer({ min: 0, max: 31 }), (a, p) => {
      const size = 2 ** (32 - p);
      fc.pre(a % size !== 0);
      const text = `${formatAddress(a)}/${p}`;
      const err = t.throws(() => parseCidr(text, "policy.cidrs[0]"), { instanceOf: ValidationError });
      t.is(err?.field, "policy.cidrs[0]");
      t.regex(err?.message ?? "", /host bits set/);
      t.deepEqual(parseCidr(text, "c", { loose: true }), { base: a - (a % size), prefix: p });
    }),
  );
});

test("hostile and malformed strings are refused with the field named, never parsed leniently", (t) => {
  const bad = [
    "",
    " 10.0.0.1",
    "10.0.0.1 ",
    "10.0.0.1\n",
    "010.0.0.1", // octal to inet_aton
    "10.0.0.01",
    "0x0a.0.0.1",
    "10.0.1",
    "10.0.0.0.1",
    "10..0.1",
    "256.0.0.1",
    "1e1.0.0.1",
    "+1.0.0.1",
    "-1.0.0.1",
    "１.0.0.1", // fullwidth digit
    "10.0.0.1/",
    "10.0.0.0/33",
    "10.0.0.0/-1",
    "10.0.0.0/08",
    "10.0.0.0/8/8",
    "10.0.0.0/ 8",
    "::1",
    "10.0.0.0\u0000/8",
    "a".repeat(100_000),
  ];
  for (const text of bad) {
    const err = t.throws(() => parseCidr(text, "subnet"), { instanceOf: ValidationError }, JSON.stringify(text.slice(0, 40)));
    t.is(err?.field, "subnet");
    t.true((err?.message.length ?? 0) < 300, "the echo of a long input is cut");
  }
  for (const value of [undefined, null, 10, {}, ["10.0.0.0/8"]]) t.throws(() => parseCidr(value, "subnet"), { instanceOf: ValidationError });
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 40 }), (s) => {
      // Anything that parses is canonical text of what it parsed to.
      try {
        const c = parseCidr(s, "x");
        t.true(s === formatCidr(c) || `${s}/32` === formatCidr(c));
      } catch (err) {
        t.true(err instanceof ValidationError);
      }
    }),
  );
});

test("overlap is symmetric and matches containment of addresses", (t) => {
  fc.assert(
    fc.property(cidr, cidr, (a, b) => {
      const overlaps = cidrOverlaps(a, b);
      t.is(overlaps, cidrOverlaps(b, a));
      // Two subnets overlap exactly when one contains the other's network address.
      t.is(overlaps, cidrContains(a, b.base) || cidrContains(b, a.base));
      t.true(cidrOverlaps(a, a));
    }),
  );
  t.false(cidrOverlaps(parseCidr("10.88.1.0/24", "a"), parseCidr("10.88.2.0/24", "b")));
  t.true(cidrOverlaps(parseCidr("10.0.0.0/8", "a"), parseCidr("10.88.2.0/24", "b")));
  t.true(cidrOverlaps(parseCidr("0.0.0.0/0", "a"), parseCidr("255.255.255.255", "b")));
});

test("nthHost: from the first host to the last, all inside the subnet, never the network or broadcast address", (t) => {
  fc.assert(
    fc.property(
      cidr.filter((c) => c.prefix >= 8),
      fc.integer({ min: 1, max: 2 ** 24 }),
      (c, n) => {
        const size = cidrSize(c);
        const hosts = size <= 2 ? size : size - 2;
        if (n > hosts) {
          t.throws(() => nthHost(c, n), { instanceOf: RangeError });
          return;
        }
        const h = nthHost(c, n);
        t.true(cidrContains(c, h));
        if (size > 2) {
          t.not(h, c.base);
          t.not(h, c.base + size - 1);
        }
      },
    ),
  );
  const c = parseCidr("10.88.1.0/24", "c");
  t.is(formatAddress(nthHost(c, 1)), "10.88.1.1");
  t.is(formatAddress(nthHost(c, 254)), "10.88.1.254");
  t.throws(() => nthHost(c, 255), { instanceOf: RangeError });
  t.throws(() => nthHost(c, 0), { instanceOf: RangeError });
  t.throws(() => nthHost(c, 1.5), { instanceOf: RangeError });
  t.is(formatAddress(nthHost(parseCidr("10.0.0.0/31", "c"), 2)), "10.0.0.1");
  t.is(formatAddress(nthHost(parseCidr("10.0.0.7/32", "c"), 1)), "10.0.0.7");
});
