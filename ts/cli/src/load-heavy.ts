// Loads src/heavy.ts on demand. In the command (dist/cli.cjs) it is a bundle of its own,
// dist/client.cjs, which bin.ts loads through V8's code cache as it does cli.cjs; that
// bundle takes @vmctl/core/contract from this one (SHARED_CONTRACT), so a VmctlError
// thrown by the client is the class the verbs test for. Elsewhere (tests, the ESM entry)
// this is a plain import().
import * as contract from "@vmctl/core/contract";
import { bundleLoader } from "./bundle-loader.js";

export type Heavy = typeof import("./heavy.js");

/** What dist/client.cjs imports as @vmctl/core/contract (see tsup.config.ts). */
const SHARED_CONTRACT = Symbol.for("vmctl.cli.contract");

export async function loadHeavy(): Promise<Heavy> {
  (globalThis as { [SHARED_CONTRACT]?: typeof contract })[SHARED_CONTRACT] = contract;
  const load = bundleLoader();
  // In cli.cjs, "./heavy.js" is the external "./client.cjs" (tsup.config.ts).
  return load === undefined ? import("./heavy.js") : (load("client.cjs") as Heavy);
}
