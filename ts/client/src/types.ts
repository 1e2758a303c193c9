// Plain data types of the client: the engine's API types (ServiceRecord, ...) mirrored
// field for field, so code written against one reads the other. No protobufjs classes.
import type { Capabilities, ExitInfo, JsonValue, Phase } from "@vmctl/core/contract";

export type { Capabilities, ExitInfo, JsonValue, LogChunk, LogStream, Phase } from "@vmctl/core/contract";

/** The target's phases plus "waiting" (for dependencies). */
export type ServicePhase = Phase | "waiting";

export type ReadinessCheck =
  | { readonly kind: "tcp"; readonly host?: string; readonly port: number }
  | { readonly kind: "http"; readonly url: string; readonly expectStatus?: number }
  | { readonly kind: "command"; readonly args: readonly string[] };

export interface Readiness {
  readonly check: ReadinessCheck;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
}

/** The `vmctl run IMAGE -- COMMAND...` shorthand, turned into a spec by the target. */
export interface RunShorthand {
  readonly image?: string;
  readonly command?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

export interface CreateServiceInput {
  readonly name?: string;
  readonly target: string;
  /** A JSON object; validated by the target. */
  readonly spec?: { readonly [key: string]: JsonValue };
  readonly labels?: Readonly<Record<string, string>>;
  readonly dependsOn?: readonly string[];
  readonly readiness?: Readiness;
  readonly start?: boolean;
  readonly run?: RunShorthand;
}

export interface ServiceRecord {
  readonly id: string;
  readonly name: string;
  readonly target: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly spec: JsonValue;
  readonly dependsOn: readonly string[];
  readonly readiness?: Readiness;
  readonly phase: ServicePhase;
  readonly exit?: ExitInfo;
  readonly pid?: number;
  readonly instance?: string;
  readonly addresses: readonly string[];
  readonly ready: boolean;
  /** Why the orchestrator cannot vouch for `phase`, when it cannot. */
  readonly status?: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface ServiceFilter {
  /** "key=value" or "key"; all must match. */
  readonly labels?: readonly string[];
  readonly target?: string;
  readonly phases?: readonly ServicePhase[];
}

export interface ServiceEvent {
  readonly kind: "snapshot" | "created" | "updated" | "deleted";
  readonly service: ServiceRecord;
  readonly at: Date;
}

export interface TargetInfo {
  readonly name: string;
  readonly plugin: string;
  readonly capabilities: Capabilities;
  readonly status: string;
}
