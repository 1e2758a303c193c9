// The vmctl.v1 enums ↔ the engine's names, each table written once and read both ways.
import { ValidationError, type EgressPolicy, type LogStream, type ServiceEvent, type ServicePhase } from "@vmctl/core/contract";
import { vmctl } from "../gen/protos.js";

const pb = vmctl.v1;

/** A closed set of names as a protobuf enum, both ways. */
export interface EnumCodec<Name extends string, Wire extends number> {
  /** The enum value of `name` (an unknown name is 0, UNSPECIFIED). */
  encode(name: Name): Wire;
  /** The name of `wire`, or `otherwise` for a value this side does not know (a newer peer's). */
  decode(wire: number | null | undefined, otherwise: Name): Name;
  /** The name of `wire` in client input: a value with no name is a ValidationError naming `field`. */
  parse(wire: number | null | undefined, field: string): Name;
}

function enumCodec<Name extends string, Wire extends number>(what: string, table: Readonly<Record<Name, Wire>>): EnumCodec<Name, Wire> {
  const names = new Map<number, Name>(Object.entries<Wire>(table).map(([name, n]) => [n, name as Name]));
  return {
    encode: (name) => table[name] ?? (0 as Wire),
    decode: (wire, otherwise) => names.get(wire ?? 0) ?? otherwise,
    parse: (wire, field) => {
      const name = names.get(wire ?? 0);
      if (name === undefined) throw new ValidationError(field, `unknown ${what} ${wire ?? 0}`);
      return name;
    },
  };
}

export const servicePhase: EnumCodec<ServicePhase, vmctl.v1.Phase> = enumCodec("phase", {
  created: pb.Phase.PHASE_CREATED,
  waiting: pb.Phase.PHASE_WAITING,
  starting: pb.Phase.PHASE_STARTING,
  running: pb.Phase.PHASE_RUNNING,
  paused: pb.Phase.PHASE_PAUSED,
  stopping: pb.Phase.PHASE_STOPPING,
  exited: pb.Phase.PHASE_EXITED,
});

export const eventKind: EnumCodec<ServiceEvent["kind"], vmctl.v1.ServiceEvent.Kind> = enumCodec("event kind", {
  snapshot: pb.ServiceEvent.Kind.KIND_SNAPSHOT,
  created: pb.ServiceEvent.Kind.KIND_CREATED,
  updated: pb.ServiceEvent.Kind.KIND_UPDATED,
  deleted: pb.ServiceEvent.Kind.KIND_DELETED,
});

export const logStream: EnumCodec<LogStream, vmctl.v1.LogChunk.Stream> = enumCodec("log stream", {
  stdout: pb.LogChunk.Stream.STREAM_STDOUT,
  stderr: pb.LogChunk.Stream.STREAM_STDERR,
  console: pb.LogChunk.Stream.STREAM_CONSOLE,
});

export const policyMode: EnumCodec<EgressPolicy["mode"], vmctl.v1.EgressPolicy.Mode> = enumCodec("policy mode", {
  "allow-all": pb.EgressPolicy.Mode.MODE_ALLOW_ALL,
  "deny-all": pb.EgressPolicy.Mode.MODE_DENY_ALL,
  allow: pb.EgressPolicy.Mode.MODE_ALLOW,
});
