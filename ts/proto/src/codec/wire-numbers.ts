// Numbers and times as the codec reads and writes them.

/** A uint64 field: a number (the generated code forces numbers) or, should long be loaded, a Long; absent is 0. */
export function toNumber(value: number | { toNumber(): number } | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === "number" ? value : value.toNumber();
}

/** A `*_unix_ms` field as a Date. */
export function dateOf(unixMs: number | { toNumber(): number } | null | undefined): Date {
  return new Date(toNumber(unixMs));
}

/** `n` when it is a whole, finite, non-negative number (a uint64 can hold it), else undefined. */
export function countOf(n: number | undefined): number | undefined {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/** An RFC 3339 time as Unix ms, or undefined when it is absent or not a time. */
export function unixMsOf(rfc3339: string | undefined): number | undefined {
  if (rfc3339 === undefined || rfc3339 === "") return undefined;
  const ms = Date.parse(rfc3339);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}
