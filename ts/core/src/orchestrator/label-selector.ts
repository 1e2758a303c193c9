// Label selectors for list/watch filters: "key=value" (equal) or "key" (present).
import { ValidationError } from "../errors.js";

export interface LabelSelector {
  readonly key: string;
  /** Absent: the key must merely be present. */
  readonly value?: string;
}

export function parseSelectors(selectors: readonly string[], field = "labels"): LabelSelector[] {
  return selectors.map((text, i) => {
    const eq = text.indexOf("=");
    const key = eq === -1 ? text : text.slice(0, eq);
    if (key === "") throw new ValidationError(`${field}[${i}]`, `"${text}" is not "key=value" or "key"`);
    return eq === -1 ? { key } : { key, value: text.slice(eq + 1) };
  });
}

export function matchesSelectors(labels: Readonly<Record<string, string>>, selectors: readonly LabelSelector[]): boolean {
  return selectors.every((s) => (s.value === undefined ? Object.hasOwn(labels, s.key) : labels[s.key] === s.value));
}
