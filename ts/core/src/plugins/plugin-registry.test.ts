import test from "ava";
import type { PluginEnvironment, PluginRegistration } from "../contract/plugin.js";
import type { ServiceFactory } from "../contract/target.js";
import { VmctlError } from "../errors.js";
import { silentLogger } from "../log/logger.js";
import { PluginRegistry } from "./plugin-registry.js";

const caps = { exec: true, pause: false, network: true, volumes: false, logsFollow: true };

function factory(target: string): ServiceFactory {
  return {
    target,
    capabilities: caps,
    validate: (spec) => spec as never,
    create: () => Promise.reject(new Error("not used")),
    adopt: () => Promise.resolve(undefined),
  };
}

const env = (target: string): PluginEnvironment => ({ stateDir: `/tmp/${target}`, options: { who: target }, log: silentLogger });

test("ready, skipped and failed targets are told apart, and one failure takes no other target down", async (t) => {
  const seen: PluginEnvironment[] = [];
  const plugin: PluginRegistration = {
    name: "vmctl-plugin-mixed",
    targets: [
      { target: "good", init: (e) => (seen.push(e), factory("good")) },
      { target: "async-good", init: async () => factory("async-good") },
      { target: "absent", init: () => undefined },
      {
        target: "absent-why",
        init: () => {
          throw Object.assign(new Error("runc not found"), { skip: true });
        },
      },
      {
        target: "broken",
        init: () => {
          throw new Error("cannot open /dev/kvm");
        },
      },
      { target: "confused", init: () => factory("other-name") },
    ],
  };
  const registry = new PluginRegistry();
  registry.register(plugin);
  await registry.init(env);
  t.deepEqual(
    registry.targets().map((x) => [x.name, x.status]),
    [
      ["absent", "skipped: not applicable on this host"],
      ["absent-why", "skipped: runc not found"],
      ["async-good", "ready"],
      ["broken", "failed: cannot open /dev/kvm"],
      ["confused", 'failed: init returned a factory for target "other-name"'],
      ["good", "ready"],
    ],
  );
  t.deepEqual(seen[0]?.options, { who: "good" });
  t.is(registry.factory("good").target, "good");
  t.deepEqual(registry.targets().find((x) => x.name === "good")?.capabilities, caps);
  t.false(registry.targets().find((x) => x.name === "broken")?.capabilities.exec);
  t.is(registry.targets()[0]?.plugin, "vmctl-plugin-mixed");

  const unusable = t.throws(() => registry.factory("broken"), { instanceOf: VmctlError });
  t.is(unusable?.code, "UNAVAILABLE");
  t.regex(unusable?.message ?? "", /cannot open \/dev\/kvm/);
  const unknown = t.throws(() => registry.factory("nope"), { instanceOf: VmctlError });
  t.is(unknown?.code, "NOT_FOUND");
  t.is(unknown?.details.field, "target");
});

test("a target registered twice is refused, naming both plugins", (t) => {
  const registry = new PluginRegistry();
  registry.register({ name: "first", targets: [{ target: "oci", init: () => factory("oci") }] });
  const err = t.throws(() => registry.register({ name: "second", targets: [{ target: "oci", init: () => factory("oci") }] }), {
    instanceOf: VmctlError,
  });
  t.is(err?.code, "ALREADY_EXISTS");
  t.regex(err?.message ?? "", /second registers target "oci", already registered by first/);
});

test("a plugin that failed to load reports its declared targets as failed", async (t) => {
  const registry = new PluginRegistry();
  registry.registerFailure("/opt/bad", ["lxc"], "plugin x: requires vmctl contract ^2");
  await registry.init(env);
  t.deepEqual(registry.targets(), [
    {
      name: "lxc",
      plugin: "/opt/bad",
      status: "failed: plugin x: requires vmctl contract ^2",
      capabilities: { exec: false, pause: false, network: false, volumes: false, logsFollow: false },
    },
  ]);
});
