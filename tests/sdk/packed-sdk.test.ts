// The plugin SDK as a third party installs it: `npm pack` of @vmctl/core and
// @vmctl/plugin-conformance (from the built checkout: this test builds nothing of the
// repository), a plugin made from examples/vmctl-plugin-template in a new directory
// outside the repository with its dependencies pointing at the two tarballs, `npm
// install` (registry for typescript and @types/node), its own `npm run build`, the kit's
// installed bin against it, and the plugin run by a real vmctld (`--plugin DIR`) and the
// real CLI. Each step fails with what it ran and what it printed.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import test from "ava";
import semver from "semver";
import { Daemon, processesMentioning, type Sandbox, vmctl } from "../orchestrator/helpers/sandbox.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const PACKAGES = { core: join(REPO, "ts/core"), kit: join(REPO, "ts/plugin-conformance") } as const;
const TEMPLATE = join(REPO, "examples/vmctl-plugin-template");
const BUILT = [join(REPO, "ts/server/dist/bin.js"), join(REPO, "ts/cli/dist/bin.cjs")];

const dir = mkdtempSync(join(tmpdir(), "vmctl-packed-sdk-"));
const plugin = join(dir, "vmctl-plugin-template");
const tarballs = join(dir, "tarballs");
const timings: Record<string, number> = {};
let coreVersion = "";

test.after.always(() => {
  for (const pid of processesMentioning(dir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** npm's own settings from an `npm test` parent (npm_config_*, npm_package_*) would aim the child at this repo: dropped. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== "INIT_CWD") env[k] = v;
  return { ...env, ...extra };
}

/** Runs a step; a non-zero exit throws with the command, its cwd and its output. */
function run(step: string, command: string, args: readonly string[], cwd: string, timeoutMs = 300_000): SpawnSyncReturns<string> {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd, env: cleanEnv(), encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 << 20 });
  timings[step] = Date.now() - started;
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(
      `${step} failed: \`${command} ${args.join(" ")}\` in ${cwd} ` +
        `${result.error ? `(${result.error.message})` : `exited ${result.status ?? result.signal}`}\n` +
        `--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`,
    );
  }
  return result;
}

/** The dist of a package, or a loud reason: built by `npm test` / `bash scripts/build`, not here. */
function requireBuiltDist(pkgDir: string): void {
  const dist = join(pkgDir, "dist");
  if (!existsSync(dist)) throw new Error(`${dist} is missing: build first (bash scripts/build)`);
  const built = Math.min(...readdirSync(dist).filter((f) => f.endsWith(".js")).map((f) => statSync(join(dist, f)).mtimeMs));
  const src = join(pkgDir, "src");
  const stale = (readdirSync(src, { recursive: true }) as string[]).filter(
    (f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.startsWith("testing") && statSync(join(src, f)).mtimeMs > built,
  );
  if (stale.length > 0) throw new Error(`${dist} is older than ${stale.join(", ")}: rebuild (bash scripts/build)`);
}

interface PackResult {
  filename: string;
  name: string;
  version: string;
  files: { path: string }[];
}

test.before("pack the SDK, make a plugin from the template outside the repository, npm install and build it", (t) => {
  t.timeout(600_000);
  for (const bin of BUILT) if (!existsSync(bin)) throw new Error(`${bin} is missing: build first (bash scripts/build)`);
  requireBuiltDist(PACKAGES.core);
  requireBuiltDist(PACKAGES.kit);
  if (!relative(REPO, dir).startsWith("..")) throw new Error(`${dir} is inside the repository; the plugin must be made outside it`);

  // npm pack of each package, as a publish would make it.
  const packed: Record<keyof typeof PACKAGES, PackResult> = {} as never;
  mkdirSync(tarballs); // npm pack does not make its destination
  for (const [key, pkgDir] of Object.entries(PACKAGES) as [keyof typeof PACKAGES, string][]) {
    const out = run(`npm pack ${key}`, "npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", tarballs], pkgDir, 120_000);
    packed[key] = (JSON.parse(out.stdout) as PackResult[])[0]!;
  }
  coreVersion = packed.core.version;
  t.log(`packed ${packed.core.filename} (${packed.core.files.length} files), ${packed.kit.filename} (${packed.kit.files.length} files)`);

  // The template as a third party copies it, its SDK dependencies pointing at the tarballs.
  cpSync(TEMPLATE, plugin, { recursive: true, filter: (src) => !/\/(node_modules|dist)(\/|$)/.test(src) });
  const pkgFile = join(plugin, "package.json");
  const pkg = JSON.parse(readFileSync(pkgFile, "utf8")) as {
    name: string;
    engines: Record<string, string>;
    peerDependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  // The ranges the template gives accept the packed versions (else npm would refuse, or a user would be lied to).
  for (const [name, range] of [
    ["@vmctl/core (peerDependencies)", pkg.peerDependencies["@vmctl/core"]],
    ["@vmctl/core (devDependencies)", pkg.devDependencies["@vmctl/core"]],
    ["engines.vmctl", pkg.engines.vmctl],
  ] as const) {
    if (range === undefined || !semver.satisfies(packed.core.version, range)) {
      throw new Error(`the template's ${name} range ${range} does not accept the packed @vmctl/core ${packed.core.version}`);
    }
  }
  if (!semver.satisfies(packed.kit.version, pkg.devDependencies["@vmctl/plugin-conformance"] ?? "")) {
    throw new Error(`the template's @vmctl/plugin-conformance range does not accept the packed kit ${packed.kit.version}`);
  }
  pkg.devDependencies["@vmctl/core"] = `file:${join(tarballs, packed.core.filename)}`;
  pkg.devDependencies["@vmctl/plugin-conformance"] = `file:${join(tarballs, packed.kit.filename)}`;
  writeFileSync(pkgFile, `${JSON.stringify(pkg, null, 2)}\n`);

  run("npm install", "npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--no-update-notifier"], plugin);
  const installed = JSON.parse(readFileSync(join(plugin, "node_modules/@vmctl/core/package.json"), "utf8")) as { version: string };
  if (installed.version !== packed.core.version) throw new Error(`npm installed @vmctl/core ${installed.version}, not the packed ${packed.core.version}`);
  // Nothing native for a plugin author: the engine's SQLite is an optional peer of the SDK.
  if (existsSync(join(plugin, "node_modules/better-sqlite3"))) throw new Error("installing the SDK installed better-sqlite3: a plugin author builds no SQLite");
  run("npm run build", "npm", ["run", "build"], plugin, 120_000);
  if (!existsSync(join(plugin, "dist/index.js"))) throw new Error(`npm run build made no ${join(plugin, "dist/index.js")}`);
});

test.serial("the packed @vmctl/core's contract version is its package version, and the template's engines.vmctl accepts it", async (t) => {
  const contract = (await import(pathToFileURL(join(plugin, "node_modules/@vmctl/core/dist/contract.js")).href)) as { CONTRACT_VERSION: string };
  t.is(contract.CONTRACT_VERSION, coreVersion);
  const pkg = JSON.parse(readFileSync(join(plugin, "package.json"), "utf8")) as { engines: { vmctl: string } };
  t.true(semver.satisfies(contract.CONTRACT_VERSION, pkg.engines.vmctl));
});

test.serial("the tarballs hold the built SDK and its declarations, not the sources", (t) => {
  const listing = (name: string): string[] => {
    const file = readdirSync(tarballs).find((f) => f.startsWith(name));
    if (file === undefined) throw new Error(`no ${name}*.tgz in ${tarballs}: ${readdirSync(tarballs).join(", ")}`);
    return spawnSync("tar", ["-tzf", join(tarballs, file)], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
  };
  const core = listing("vmctl-core-");
  for (const f of ["package.json", "dist/contract.js", "dist/contract.d.ts", "dist/target-kit.js", "dist/target-kit.d.ts", "dist/loader.js", "dist/index.js"]) {
    t.true(core.includes(`package/${f}`), `@vmctl/core tarball lacks ${f}`);
  }
  const kit = listing("vmctl-plugin-conformance-");
  for (const f of ["package.json", "dist/cli.js", "dist/index.js", "dist/index.d.ts"]) t.true(kit.includes(`package/${f}`), `kit tarball lacks ${f}`);
  t.deepEqual([...core, ...kit].filter((f) => f.includes("/src/") || f.endsWith(".test.ts") || f.endsWith(".test.js")), []);
});

test.serial("the installed kit's bin passes the plugin built against the packed SDK", (t) => {
  const bin = join(plugin, "node_modules/.bin/vmctl-conformance");
  if (!existsSync(bin)) throw new Error(`npm install made no ${bin}`);
  const started = Date.now();
  const result = spawnSync(bin, [".", "--json"], { cwd: plugin, env: cleanEnv(), encoding: "utf8", timeout: 120_000 });
  timings["vmctl-conformance"] = Date.now() - started;
  const report = (() => {
    try {
      return JSON.parse(result.stdout) as { ok: boolean; plugin: string; target: string; durationMs: number; checks: { name: string; status: string; reason?: string }[] };
    } catch {
      throw new Error(`vmctl-conformance printed no JSON report (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
    }
  })();
  const failed = report.checks.filter((c) => c.status === "fail");
  t.deepEqual(failed, [], `vmctl-conformance failed checks:\n${failed.map((c) => `${c.name}: ${c.reason}`).join("\n")}`);
  t.is(result.status, 0, result.stderr);
  t.true(report.ok);
  t.is(report.plugin, `vmctl-plugin-template@0.1.0`);
  t.is(report.target, "process");
  // How long it takes is bench/plugin-kit.bench.ts's (target 5 s), not a test's.
  t.log(`kit: ${report.checks.length} checks in ${report.durationMs} ms (process ${timings["vmctl-conformance"]} ms)`);
});

test.serial("a vmctld given --plugin DIR runs it: vmctl targets, vmctl run, spec errors under spec., log lines labelled", async (t) => {
  t.timeout(120_000);
  const sb: Sandbox = {
    dir,
    stateDir: join(dir, "state"),
    socket: join(dir, "run", "vmctld.sock"),
    rootfs: "",
    runcRoot: "",
    env: cleanEnv({ VMCTL_SOCKET: join(dir, "run", "vmctld.sock"), VMCTL_STATE_DIR: join(dir, "state") }),
  };
  const started = Date.now();
  const daemon = await Daemon.start(sb, { plugins: [plugin], extraArgs: ["--no-builtins"] });
  try {
    const targets = await vmctl(sb, ["targets", "--json"]);
    t.is(targets.code, 0, targets.stderr);
    const processTarget = (JSON.parse(targets.stdout) as { name: string; plugin: string; status: string }[]).find((x) => x.name === "process");
    t.like(processTarget, { plugin, status: "ready" }, `vmctl targets: ${targets.stdout}\ndaemon log:\n${daemon.log()}`);

    // The `vmctl run` shorthand through the template's specFromRun: the command is the args.
    const ran = await vmctl(sb, ["run", "--rm", "--target", "process", "-e", "WHO=packed", "--", "sh", "-c", 'echo "hi from $WHO"; exit 3']);
    t.is(ran.code, 3, `vmctl run: ${ran.stderr}\ndaemon log:\n${daemon.log()}`);
    t.is(ran.stdout, "hi from packed\n");

    // A spec error names the field under spec. (never spec.spec).
    const noCommand = await vmctl(sb, ["run", "--rm", "--target", "process", "/tmp"]);
    t.not(noCommand.code, 0);
    t.regex(noCommand.stderr, /spec\.args/);
    t.notRegex(noCommand.stderr, /spec\.spec/);
    const noSpec = await vmctl(sb, ["run", "--rm", "--target", "process"]);
    t.not(noSpec.code, 0);
    t.regex(noSpec.stderr, /\bspec: must be an object/);
    t.notRegex(noSpec.stderr, /spec\.spec/);
    t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout), []);

    // The plugin's own log line is labelled with the plugin and the target.
    const line = daemon
      .log()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === "process target ready");
    t.like(line, { component: "plugin", plugin, target: "process" }, daemon.log());
  } finally {
    await daemon.stop();
    timings["vmctld + vmctl"] = Date.now() - started;
  }
  t.log(`timings (ms): ${JSON.stringify(timings)}`);
});

test.serial("a plugin whose engines.vmctl excludes the packed SDK's contract is refused by the installed kit, naming both", (t) => {
  const pkgFile = join(plugin, "package.json");
  const original = readFileSync(pkgFile, "utf8");
  try {
    const pkg = JSON.parse(original) as { engines: Record<string, string> };
    const next = `^${semver.major(coreVersion) + 2}.0.0`;
    pkg.engines.vmctl = next;
    writeFileSync(pkgFile, JSON.stringify(pkg));
    const result = spawnSync(join(plugin, "node_modules/.bin/vmctl-conformance"), ["."], { cwd: plugin, env: cleanEnv(), encoding: "utf8", timeout: 60_000 });
    t.is(result.status, 1, `${result.stdout}${result.stderr}`);
    t.regex(result.stdout, new RegExp(`FAIL {2}plugin/load[\\s\\S]*requires vmctl contract \\${next} \\(engines\\.vmctl\\) but this vmctl implements ${coreVersion.replaceAll(".", "\\.")}`));
  } finally {
    writeFileSync(pkgFile, original);
  }
});
