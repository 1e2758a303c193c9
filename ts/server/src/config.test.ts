import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { ConfigError, parseConfig, readConfig } from "./config.js";
import { parseDaemonArgs } from "./daemon.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-config-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test("target options come from the config file, by --config or $VMCTL_CONFIG", (t) => {
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify({ targets: { "aws-ec2": { region: "eu-west-1", endpoint: "http://127.0.0.1:5000" } } }));
  const byFlag = parseDaemonArgs(["--config", file], {});
  t.not(byFlag, "help");
  t.deepEqual(byFlag !== "help" ? byFlag.targetOptions : undefined, { "aws-ec2": { region: "eu-west-1", endpoint: "http://127.0.0.1:5000" } });
  const byEnv = parseDaemonArgs([], { VMCTL_CONFIG: file });
  t.deepEqual(byEnv !== "help" ? byEnv.targetOptions : undefined, { "aws-ec2": { region: "eu-west-1", endpoint: "http://127.0.0.1:5000" } });
  const none = parseDaemonArgs([], {});
  t.deepEqual(none !== "help" ? none.targetOptions : undefined, {});
});

test("plugins come from the config file too, a relative path relative to the file, before --plugin", (t) => {
  const file = join(dir, "plugins.json");
  writeFileSync(file, JSON.stringify({ plugins: ["./mine/vmctl-plugin-x", "/opt/vmctl-plugin-y", "vmctl-plugin-z"] }));
  const options = parseDaemonArgs(["--config", file, "--plugin", "/srv/vmctl-plugin-w"], {});
  t.deepEqual(options !== "help" ? options.plugins : undefined, [join(dir, "mine/vmctl-plugin-x"), "/opt/vmctl-plugin-y", "vmctl-plugin-z", "/srv/vmctl-plugin-w"]);
  t.deepEqual(options !== "help" ? options.targetOptions : undefined, {});
});

test("a bad config file is refused naming the file and the field", (t) => {
  const cases: [unknown, RegExp][] = [
    [[], /must be a JSON object/],
    [{ target: {} }, /target: unknown field/],
    [{ targets: [] }, /targets: must be an object/],
    [{ targets: { docker: "unix:///x" } }, /targets\.docker: must be an object/],
    [{ plugins: "vmctl-plugin-x" }, /plugins: must be an array/],
    [{ plugins: ["vmctl-plugin-x", 3] }, /plugins\[1\]: must be a package name or a path/],
  ];
  for (const [value, message] of cases) {
    const err = t.throws(() => parseConfig(value, "cfg.json"), { instanceOf: ConfigError });
    t.regex(err?.message ?? "", /^cfg\.json: /);
    t.regex(err?.message ?? "", message);
  }
  const broken = join(dir, "broken.json");
  writeFileSync(broken, "{ nope");
  t.throws(() => readConfig(broken), { instanceOf: ConfigError, message: /broken\.json: not valid JSON/ });
  t.throws(() => readConfig(join(dir, "missing.json")), { instanceOf: ConfigError, message: /missing\.json: cannot read the config file: ENOENT/ });
  t.throws(() => parseDaemonArgs(["--config", broken], {}), { instanceOf: ConfigError });
});

test("network.pool and network.poolPrefix come from the config file, checked", (t) => {
  const file = join(dir, "network.json");
  writeFileSync(file, JSON.stringify({ network: { pool: "10.99.0.0/16", poolPrefix: 26 } }));
  const options = parseDaemonArgs(["--config", file], {});
  t.deepEqual(options !== "help" ? options.network : undefined, { pool: "10.99.0.0/16", poolPrefix: 26 });
  const cases: [unknown, RegExp][] = [
    [{ network: [] }, /network: must be an object/],
    [{ network: { subnet: "x" } }, /network\.subnet: unknown field/],
    [{ network: { pool: "10.99.0.1/16" } }, /network\.pool: .*host bits/],
    [{ network: { pool: "10.99.0.0/16", poolPrefix: 8 } }, /network\.poolPrefix/],
    [{ network: { poolPrefix: "24" } }, /network\.poolPrefix/],
  ];
  for (const [value, message] of cases) t.throws(() => parseConfig(value, "cfg.json"), { instanceOf: ConfigError, message });
});
