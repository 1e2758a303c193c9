import { cpSync, mkdirSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { CONTRACT_VERSION } from "../contract/plugin.js";
import { VmctlError } from "../errors.js";
import { silentLogger } from "../log/logger.js";
import { PROCESS_PLUGIN_DIR, tempDir } from "../testing/fixtures.js";
import { hostCoreRoot } from "./core-identity.js";
import { discoverPlugins, loadPlugin, loadPluginFromDir, loadPlugins } from "./plugin-loader.js";

/** A copy of the process fixture outside the repository, with package.json changed by `edit`. */
function copyFixture(edit: (pkg: Record<string, unknown>) => void = () => {}, into = join(tempDir("vmctl-plugin-"), "plugin")): string {
  cpSync(PROCESS_PLUGIN_DIR, into, { recursive: true });
  const pkg = JSON.parse(JSON.stringify(fixturePackage)) as Record<string, unknown>;
  edit(pkg);
  writeFileSync(join(into, "package.json"), JSON.stringify(pkg, null, 2));
  return into;
}
const fixturePackage = (await import(join(PROCESS_PLUGIN_DIR, "package.json"), { with: { type: "json" } })).default as Record<string, unknown>;

test("the process fixture loads from a path outside the repository and its factory works", async (t) => {
  const dir = copyFixture();
  t.false(realpathSync(dir).startsWith(realpathSync(join(PROCESS_PLUGIN_DIR, "../../.."))));
  const plugin = await loadPlugin(dir);
  t.is(plugin.package.name, "vmctl-plugin-process");
  t.is(plugin.source, dir);
  t.deepEqual(plugin.package.manifest, { entry: "./index.js", targets: ["process"] });
  const init = plugin.registration.targets[0]?.init;
  const factory = await init?.({ stateDir: join(dir, "state"), options: {}, log: silentLogger });
  t.is(factory?.target, "process");
  t.deepEqual(factory?.validate({ args: ["echo", "hi"] }), { args: ["echo", "hi"] });
  t.throws(() => factory?.validate({ args: [1] }), { message: "args[0]: must be a string" });
  await factory?.close?.();
});

test("a plugin whose engines.vmctl excludes this contract version is refused, naming the plugin", async (t) => {
  const dir = copyFixture((pkg) => {
    pkg.name = "vmctl-plugin-future";
    pkg.engines = { vmctl: "^2.0.0" };
  });
  const err = await t.throwsAsync(loadPlugin(dir), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.regex(err?.message ?? "", /^plugin vmctl-plugin-future: requires vmctl contract \^2\.0\.0/);
  t.true(err?.message.includes(CONTRACT_VERSION));

  const missing = copyFixture((pkg) => {
    pkg.engines = {};
  });
  await t.throwsAsync(loadPlugin(missing), { message: /engines\.vmctl" must be a semver range/ });
});

test("a plugin with its own copy of @vmctl/core, or none, imports the host's copy", async (t) => {
  // Its entry re-exports what it imports from @vmctl/core/contract: the host's, not its own.
  const entry = [
    'import { CONTRACT_VERSION, ValidationError } from "@vmctl/core/contract";',
    'import base from "./index.js";',
    "export default { ...base, contract: CONTRACT_VERSION, ValidationError };",
  ].join("\n");
  const withOwn = copyFixture((pkg) => {
    pkg.name = "vmctl-plugin-own-core";
    (pkg.vmctl as { entry: string }).entry = "./probe.js";
  });
  writeFileSync(join(withOwn, "probe.js"), entry);
  const own = join(withOwn, "node_modules", "@vmctl", "core");
  mkdirSync(join(own, "dist"), { recursive: true });
  writeFileSync(
    join(own, "package.json"),
    JSON.stringify({ name: "@vmctl/core", version: "0.0.9", type: "module", exports: { "./contract": "./dist/contract.js" } }),
  );
  writeFileSync(join(own, "dist", "contract.js"), 'export const CONTRACT_VERSION = "0.0.9"; export class ValidationError extends Error {}');
  const bare = copyFixture((pkg) => {
    pkg.name = "vmctl-plugin-no-core";
    (pkg.vmctl as { entry: string }).entry = "./probe.js";
  });
  writeFileSync(join(bare, "probe.js"), entry);

  for (const dir of [withOwn, bare]) {
    const plugin = await loadPluginFromDir(dir);
    const registration = plugin.registration as unknown as { contract: string; ValidationError: new (f: string, p: string) => Error };
    t.is(registration.contract, CONTRACT_VERSION, dir);
    t.is(new registration.ValidationError("args", "bad").message, "args: bad");
  }
});

test("a plugin that resolves the host's @vmctl/core (a symlink to it) is accepted", async (t) => {
  const dir = copyFixture();
  mkdirSync(join(dir, "node_modules", "@vmctl"), { recursive: true });
  symlinkSync(hostCoreRoot(), join(dir, "node_modules", "@vmctl", "core"));
  const plugin = await loadPluginFromDir(dir);
  t.is(plugin.registration.name, "vmctl-plugin-process");
});

test("plugins are found by package name, scoped or not, in the node_modules folders given", async (t) => {
  const root = tempDir("vmctl-nm-");
  const nodeModules = join(root, "node_modules");
  copyFixture(() => {}, join(nodeModules, "vmctl-plugin-process"));
  copyFixture((pkg) => {
    pkg.name = "@acme/vmctl-plugin-process";
  }, join(nodeModules, "@acme", "vmctl-plugin-process"));
  mkdirSync(join(nodeModules, "left-pad"));
  mkdirSync(join(nodeModules, "@acme", "not-a-plugin"), { recursive: true });

  t.deepEqual((await discoverPlugins([nodeModules])).sort(), [
    join(nodeModules, "@acme", "vmctl-plugin-process"),
    join(nodeModules, "vmctl-plugin-process"),
  ]);
  const scoped = await loadPlugin("@acme/vmctl-plugin-process", { nodeModules: [join(root, "elsewhere"), nodeModules] });
  t.is(scoped.package.name, "@acme/vmctl-plugin-process");
  t.is(scoped.source, "@acme/vmctl-plugin-process");
  await t.throwsAsync(loadPlugin("vmctl-plugin-absent", { nodeModules: [nodeModules] }), { message: /vmctl-plugin-absent: package not found/ });
  await t.throwsAsync(loadPlugin("lodash", { nodeModules: [nodeModules] }), { message: /not a plugin package name/ });
});

test("loadPlugins reports a bad plugin with its declared targets and still loads the others", async (t) => {
  const good = copyFixture();
  const bad = copyFixture((pkg) => {
    pkg.vmctl = { entry: "./index.js", targets: ["process", "extra"] };
  });
  const { loaded, failed } = await loadPlugins([good, bad]);
  t.is(loaded.length, 1);
  t.is(failed.length, 1);
  t.deepEqual(failed[0]?.targets, ["process", "extra"]);
  t.regex(failed[0]?.error.message ?? "", /declares targets \[extra, process\] but the entry registers \[process\]/);
});

test("the contract version plugins' engines.vmctl is checked against is @vmctl/core's package version", async (t) => {
  const pkg = (await import(join(hostCoreRoot(), "package.json"), { with: { type: "json" } })).default as { version: string };
  t.is(CONTRACT_VERSION, pkg.version, "bump CONTRACT_VERSION (src/contract/plugin.ts) with the package version, or the packed SDK lies about what it implements");
});
