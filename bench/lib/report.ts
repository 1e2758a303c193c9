/** One benchmark result, printed as a JSON line by `npm run bench`. */
export interface BenchResult {
  readonly name: string;
  readonly unit: string;
  /** Median of `runs` measurements. */
  readonly value: number;
  /** Median of the peer measured in the same run (e.g. a plain process spawn). */
  readonly baseline?: number;
  readonly baselineName?: string;
  /** value / baseline. */
  readonly ratio?: number;
  /** value - baseline, for times (ms): what vmctl adds over the peer. */
  readonly overhead?: number;
  readonly runs: number;
  /** The target this issue set, for comparison; not enforced. */
  readonly target?: string;
  /** What the figure was measured under (kernel, peer command line, "under nesting"…). */
  readonly conditions?: Readonly<Record<string, string | number | boolean>>;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const round = (n: number) => Math.round(n * 1000) / 1000;

export function report(result: BenchResult): void {
  const out: BenchResult = {
    ...result,
    value: round(result.value),
    ...(result.baseline === undefined
      ? {}
      : {
          baseline: round(result.baseline),
          ratio: round(result.value / result.baseline),
          ...(result.unit === "ms" ? { overhead: round(result.value - result.baseline) } : {}),
        }),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/** A benchmark that could not be measured here: one JSON line with the reason, never a made-up value. */
export function reportError(name: string, error: string): void {
  process.stdout.write(`${JSON.stringify({ name, error })}\n`);
}
