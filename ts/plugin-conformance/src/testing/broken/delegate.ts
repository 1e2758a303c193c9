// Builds deliberately broken targets on top of the repo's working "process" target: the
// base does the real work, an override breaks one promise of the contract.
import { loadPluginFromDir } from "@vmctl/core/loader";
import type { Capabilities, ServiceController, ServiceFactory, TargetContext } from "@vmctl/core/contract";
import type { FactoryInit } from "../../types.js";
import { PROCESS_PLUGIN_DIR } from "../process-fixtures.js";

export type ControllerOverrides = (inner: ServiceController, ctx: TargetContext) => Partial<ServiceController>;

/** A factory init whose factories are the process target's, with capabilities and controller methods overridden. */
export function brokenProcessTarget(options: { capabilities?: Partial<Capabilities>; controller: ControllerOverrides }): FactoryInit {
  return async (env) => {
    const loaded = await loadPluginFromDir(PROCESS_PLUGIN_DIR);
    const base = await loaded.registration.targets[0]!.init(env);
    if (base === undefined) throw new Error("the process target declined this host");
    return broken(base, options);
  };
}

function broken(base: ServiceFactory, options: { capabilities?: Partial<Capabilities>; controller: ControllerOverrides }): ServiceFactory {
  const wrap = (inner: ServiceController, ctx: TargetContext): ServiceController => {
    const overrides = options.controller(inner, ctx);
    return {
      id: inner.id,
      prepare: (p) => inner.prepare(p),
      start: () => inner.start(),
      stop: (o) => inner.stop(o),
      state: () => inner.state(),
      logs: (o) => inner.logs(o),
      wait: () => inner.wait(),
      destroy: () => inner.destroy(),
      record: () => inner.record(),
      ...overrides,
    };
  };
  return {
    target: base.target,
    capabilities: { ...base.capabilities, ...options.capabilities },
    validate: (spec) => base.validate(spec),
    create: async (id, spec, ctx) => wrap(await base.create(id, spec, ctx), ctx),
    adopt: async (record, ctx) => {
      const inner = await base.adopt(record, ctx);
      return inner && wrap(inner, ctx);
    },
    close: () => base.close?.() ?? Promise.resolve(),
  };
}
