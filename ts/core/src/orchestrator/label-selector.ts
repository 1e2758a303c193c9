// Label selectors for list/watch filters: "key=value" (equal) or "key" (present). Keys
// follow the label key rule, so a typo such as "k!=v" is refused rather than read as
// the key "k!".
import { echo, LABEL_KEY_PATTERN, LIMITS } from "../contract/limits.js";
import { ValidationError } from "../errors.js";
import { hasControlCharacter } from "./request-checks.js";

export interface LabelSelector {
  readonly key: string;
  /** Absent: the key must merely be present. */
  readonly value?: string;
}

export function parseSelectors(selectors: readonly string[], field = "labels"): LabelSelector[] {
  if (!Array.isArray(selectors)) throw new ValidationError(field, "must be a list of label selectors");
  if (selectors.length > LIMITS.selectorCount) {
    throw new ValidationError(field, `has ${selectors.length} selectors; at most ${LIMITS.selectorCount}`);
  }
  return selectors.map((text, i) => {
    const at = `${field}[${i}]`;
    if (typeof text !== "string") throw new ValidationError(at, "must be a string");
    const eq = text.indexOf("=");
    const key = eq === -1 ? text : text.slice(0, eq);
    if (!LABEL_KEY_PATTERN.test(key)) throw new ValidationError(at, `${echo(text)} is not "key=value" or "key" (keys are [A-Za-z0-9_./-])`);
    if (eq === -1) return { key };
    const value = text.slice(eq + 1);
    if (hasControlCharacter(value) || Buffer.byteLength(value) > LIMITS.labelValueBytes) {
      throw new ValidationError(at, `${echo(value)} is not a label value`);
    }
    return { key, value };
  });
}

export function matchesSelectors(labels: Readonly<Record<string, string>>, selectors: readonly LabelSelector[]): boolean {
  return selectors.every((s) => (s.value === undefined ? Object.hasOwn(labels, s.key) : labels[s.key] === s.value));
}
