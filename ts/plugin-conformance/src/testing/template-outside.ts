// The plugin template (examples/vmctl-plugin-template) as a plugin author has it: copied to
// a directory outside this repository and built there with its own tsconfig, its
// @vmctl/core resolving as an npm install of the peer dependency makes it resolve
// (node_modules/@vmctl/core → the orchestrator's copy; here a link to ts/core). For the
// template's test and the kit's benchmark.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { TEMPLATE_DIR } from "./process-fixtures.js";

const REPO = fileURLToPath(new URL("../../../../", import.meta.url));

/** The template in `plugin` (a new directory), built; throws with tsc's output if it does not build. */
export function buildTemplateAt(plugin: string): void {
  cpSync(TEMPLATE_DIR, plugin, { recursive: true, filter: (src) => !/\/(node_modules|dist)(\/|$)/.test(src) });
  // What `npm install` gives the plugin's author: the peer @vmctl/core (the orchestrator's
  // own copy, as the loader requires) and the devDependencies used to build it.
  const link = (name: string, target: string) => {
    mkdirSync(join(plugin, "node_modules", name, ".."), { recursive: true });
    symlinkSync(target, join(plugin, "node_modules", name));
  };
  link("@vmctl/core", join(REPO, "ts/core"));
  link("typescript", join(REPO, "node_modules/typescript"));
  link("@types/node", join(REPO, "node_modules/@types/node"));
  const build = spawnSync(process.execPath, [join(plugin, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: plugin, encoding: "utf8" });
  if (build.status !== 0) throw new Error(`the template does not build outside the workspace:\n${build.stdout}${build.stderr}`);
}
