// One @vmctl/core per orchestrator: a plugin's imports of "@vmctl/core" and its subpaths
// resolve to the orchestrator's own copy, whatever the plugin directory has installed
// (its devDependency copy, or none at all when it was deployed without its peers). So a
// plugin built and checked in its own directory loads from that directory as it is, and
// the ValidationError it throws and the contract it was checked against are the host's.
// An ESM resolve hook (node:module register), registered once per plugin directory that
// needs it: the built-in plugins, which resolve the host's copy already, cost nothing.
import { register } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { CORE_PACKAGE } from "./core-identity.js";

// Runs in Node's hooks thread: plain JS, no imports. Any specifier naming the package
// imported from a module under one of `roots` is resolved as if imported from the host's
// package. The same URL registered again is the same module instance: initialize adds
// a root, so every registration keeps working.
const HOOK = `
const roots = [];
let host, name;
export function initialize(data) { roots.push(data.root); host = data.host; name = data.name; }
export async function resolve(specifier, context, next) {
  if ((specifier === name || specifier.startsWith(name + "/")) && typeof context.parentURL === "string" && roots.some((r) => context.parentURL.startsWith(r))) {
    return next(specifier, { ...context, parentURL: host });
  }
  return next(specifier, context);
}
`;

const redirected = new Set<string>();

/** From now on, `@vmctl/core` imported from under `pluginDir` (a real path) resolves to `hostRoot`'s package. */
export function redirectCoreImports(pluginDir: string, hostRoot: string): void {
  const root = `${pathToFileURL(pluginDir).href}/`;
  if (redirected.has(root)) return;
  register(`data:text/javascript,${encodeURIComponent(HOOK)}`, {
    data: { root, host: pathToFileURL(join(hostRoot, "package.json")).href, name: CORE_PACKAGE },
  });
  redirected.add(root);
}
