import test from "ava";
import { ValidationError } from "../errors.js";
import { matchesSelectors, parseSelectors } from "./label-selector.js";

test("key=value matches equal values, key matches presence, all must match", (t) => {
  const labels = { app: "web", tier: "", "vmctl.io/owner": "x=y" };
  t.true(matchesSelectors(labels, parseSelectors(["app=web"])));
  t.false(matchesSelectors(labels, parseSelectors(["app=db"])));
  t.true(matchesSelectors(labels, parseSelectors(["tier"])));
  t.true(matchesSelectors(labels, parseSelectors(["tier="])));
  t.true(matchesSelectors(labels, parseSelectors(["vmctl.io/owner=x=y", "app"])));
  t.false(matchesSelectors(labels, parseSelectors(["app", "missing"])));
  t.true(matchesSelectors(labels, []));
  t.false(matchesSelectors({ constructor: "x" }, parseSelectors(["toString"])));
});

test("a selector without a key is a ValidationError naming its index", (t) => {
  const err = t.throws(() => parseSelectors(["a", "=b"]), { instanceOf: ValidationError });
  t.is(err?.field, "labels[1]");
});
