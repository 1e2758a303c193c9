// The prune's choices, over a fixture target whose "things" are entries in a Map: what
// is kept (a known service's, another owner's), what goes, and how failures are told.
import test from "ava";
import type { OwnedThing } from "../contract/owned.js";
import type { ServiceFactory } from "../contract/target.js";
import { pruneOwned, type ReapingTarget } from "./system-prune.js";

function fixture(name: string, things: OwnedThing[], fail: { list?: string; remove?: string } = {}): ReapingTarget & { held: Map<string, OwnedThing> } {
  const held = new Map(things.map((t) => [t.id, t]));
  const factory = {
    target: name,
    async owned(owner: string) {
      if (fail.list) throw new Error(fail.list);
      // A careless target: lists every owner's things; the prune must still keep to its own.
      void owner;
      return [...held.values()];
    },
    async removeOwned(thing: OwnedThing) {
      if (fail.remove === thing.id) throw new Error(`cannot remove ${thing.id}`);
      held.delete(thing.id);
    },
  } as unknown as ServiceFactory;
  return { name, factory, held };
}

const mine = (id: string, serviceId?: string): OwnedThing => ({ kind: "box", id, owner: "me", ...(serviceId ? { serviceId } : {}) });

test("keeps known services' things and other owners', removes the rest (no service label included); a dry run removes nothing", async (t) => {
  const a = fixture("a", [mine("1", "live"), mine("2", "gone"), mine("3"), { kind: "box", id: "4", owner: "other", serviceId: "gone" }]);
  const scope = { targets: [a], owner: "me", knows: (id: string) => id === "live" };
  const dry = await pruneOwned(scope, { dryRun: true });
  t.deepEqual(dry, {
    dryRun: true,
    things: [
      { target: "a", kind: "box", id: "2", serviceId: "gone", removed: false },
      { target: "a", kind: "box", id: "3", removed: false },
    ],
    failures: [],
  });
  t.is(a.held.size, 4);
  const done = await pruneOwned(scope);
  t.deepEqual(done.things.map((x) => [x.id, x.removed]), [["2", true], ["3", true]]);
  t.deepEqual([...a.held.keys()], ["1", "4"]);
});

test("a removal that fails is reported with its error, the others go on; a target that cannot list is a failure, the others are asked", async (t) => {
  const a = fixture("a", [mine("1", "x"), mine("2", "y")], { remove: "1" });
  const b = fixture("b", [mine("3", "z")], { list: "daemon gone" });
  const report = await pruneOwned({ targets: [a, b], owner: "me", knows: () => false });
  t.deepEqual(report.things, [
    { target: "a", kind: "box", id: "1", serviceId: "x", removed: false, error: "cannot remove 1" },
    { target: "a", kind: "box", id: "2", serviceId: "y", removed: true },
  ]);
  t.deepEqual(report.failures, [{ target: "b", error: "daemon gone" }]);
});

test("a service the store learns of between the listing and the removal keeps its thing", async (t) => {
  const a = fixture("a", [mine("1", "new"), mine("2", "old")]);
  let asked = 0;
  // The first question (at listing) says unknown; from then on "new" exists.
  const knows = (id: string) => id === "new" && asked++ > 0;
  const report = await pruneOwned({ targets: [a], owner: "me", knows });
  t.deepEqual(report.things.map((x) => x.id), ["2"]);
  t.true(a.held.has("1"));
});
