// How the command's bundle reaches bin.ts's loader of the bundles beside it (with their
// code cache): a global, set by bin.ts before cli.cjs runs (see load-heavy.ts).
const BUNDLE_LOADER = Symbol.for("vmctl.cli.loadBundle");

export type BundleLoader = (name: string) => unknown;

/** Called by bin.ts before the bundle runs. */
export function provideBundleLoader(loader: BundleLoader): void {
  (globalThis as { [BUNDLE_LOADER]?: BundleLoader })[BUNDLE_LOADER] = loader;
}

/** bin.ts's loader, or undefined when the CLI runs some other way (tests, the ESM entry). */
export function bundleLoader(): BundleLoader | undefined {
  return (globalThis as { [BUNDLE_LOADER]?: BundleLoader })[BUNDLE_LOADER];
}
