// import() of the ESM-only packages the CLI loads on demand (the addon, the server).
// The command's bundle runs as a vm.Script so V8 can cache its compiled code (see
// bin.ts); in Node 20 such a script loses its import() callback once it comes from the
// cache, so bin.ts hands in its own import(). Elsewhere (tests, the ESM entry) the
// plain import() is used.
const IMPORTER = Symbol.for("vmctl.importEsm");

type Importer = (specifier: string) => Promise<unknown>;

export function importEsm<T>(specifier: string): Promise<T> {
  const injected = (globalThis as { [IMPORTER]?: Importer })[IMPORTER];
  return (injected ? injected(specifier) : import(specifier)) as Promise<T>;
}

/** Called by bin.ts before the bundle runs. */
export function provideImporter(importer: Importer): void {
  (globalThis as { [IMPORTER]?: Importer })[IMPORTER] = importer;
}
