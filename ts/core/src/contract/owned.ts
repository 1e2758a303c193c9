// Owner labels, one format for every target, and the things a target holds that carry
// them: what `ServiceFactory.owned` lists and `removeOwned` removes, so `vmctl system
// prune` can reap what belongs to no service. Plain data and pure functions.
import { OWNER_LABEL, SERVICE_LABEL } from "./defaults.js";
import type { JsonValue } from "./types.js";

/**
 * The labels a target puts on everything it makes for a service: the context's owner
 * labels with the service label set (OWNER_LABEL → the installation, SERVICE_LABEL →
 * the service). Containers take them as labels or annotations, cloud resources as tags.
 */
export function serviceLabels(ownerLabels: Readonly<Record<string, string>>, serviceId: string): Record<string, string> {
  return { ...ownerLabels, [SERVICE_LABEL]: serviceId };
}

/** Whose a set of labels says a thing is: the owner, and the service when they name one. */
export interface LabelledOwner {
  readonly owner: string;
  readonly serviceId?: string;
}

/** The owner and service `labels` name; undefined when they carry no owner label. */
export function labelledOwner(labels: Readonly<Record<string, string>>): LabelledOwner | undefined {
  const owner = labels[OWNER_LABEL];
  if (owner === undefined || owner === "") return undefined;
  const serviceId = labels[SERVICE_LABEL];
  return serviceId === undefined || serviceId === "" ? { owner } : { owner, serviceId };
}

/**
 * One label as one flat string, `key=value`, for a medium that has no key/value labels
 * of its own or restricts their keys: an environment variable's value, a comment in a
 * config file, a label filter of an API. Label keys never hold "=" (LABEL_KEY_PATTERN).
 */
export function encodeLabel(key: string, value: string): string {
  return `${key}=${value.replace(/[\r\n]+/g, " ")}`;
}

/** The label in a string encodeLabel made, or undefined when it is not one. */
export function decodeLabel(text: string): [key: string, value: string] | undefined {
  const eq = text.indexOf("=");
  if (eq <= 0) return undefined;
  return [text.slice(0, eq), text.slice(eq + 1)];
}

/** Labels from strings encodeLabel made (the others are ignored). */
export function decodeLabels(texts: Iterable<string>): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const text of texts) {
    const label = decodeLabel(text);
    if (label) labels[label[0]] = label[1];
  }
  return labels;
}

/** Environment variables that carry a process's labels: VMCTL_LABEL_<n>=key=value. */
const LABEL_VARIABLE = /^VMCTL_LABEL_\d+$/;

/** Labels as environment variables for a process the target starts (a reaper finds them in /proc/PID/environ). */
export function labelEnvironment(labels: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).map(([key, value], i) => [`VMCTL_LABEL_${i}`, encodeLabel(key, value)]));
}

/** The labels in a process's environment (`NAME=value` entries, as /proc/PID/environ has them). */
export function labelsFromEnvironment(environ: Iterable<string>): Record<string, string> {
  const encoded: string[] = [];
  for (const entry of environ) {
    const eq = entry.indexOf("=");
    if (eq > 0 && LABEL_VARIABLE.test(entry.slice(0, eq))) encoded.push(entry.slice(eq + 1));
  }
  return decodeLabels(encoded);
}

/**
 * Something a target holds that carries an owner's labels: a container, a cloud
 * instance, a VMM process. `owned` lists them; `removeOwned` gets one back to remove.
 */
export interface OwnedThing {
  /** What it is, in the target's words: "docker-container", "runc-container", "ec2-instance"... */
  readonly kind: string;
  /** The target's id for it: a container id, an instance id, a pid. */
  readonly id: string;
  /** The owner its labels name (the `owner` it was listed for). */
  readonly owner: string;
  /** The service its labels name; absent when it carries the owner but no service. */
  readonly serviceId?: string;
  /** Whatever else removeOwned needs to find it again (a runtime, a region, a start time). */
  readonly data?: JsonValue;
}

/** What `vmctl system prune` did (or, in a dry run, would do) with one thing. */
export interface PrunedThing {
  readonly target: string;
  readonly kind: string;
  readonly id: string;
  /** The service its labels name (one the orchestrator does not know); absent when none. */
  readonly serviceId?: string;
  /** It is gone (always false in a dry run). */
  readonly removed: boolean;
  /** Why removing it failed. */
  readonly error?: string;
}

/** A target that could not say what it holds (nothing of it was removed). */
export interface PruneTargetFailure {
  readonly target: string;
  readonly error: string;
}

export interface SystemPruneReport {
  readonly dryRun: boolean;
  /** Things that carry this orchestrator's owner label and belong to none of its services. */
  readonly things: readonly PrunedThing[];
  readonly failures: readonly PruneTargetFailure[];
}

export interface SystemPruneOptions {
  /** Say what would be removed; remove nothing. */
  readonly dryRun?: boolean;
}
