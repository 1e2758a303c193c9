// Engine types ↔ vmctl.v1 messages. Plain objects in, plain objects out: no protobufjs
// classes leave this module's callers.
import type {
  CreateServiceInput,
  ExitInfo,
  JsonValue,
  LogChunk,
  Readiness,
  ServiceEvent,
  ServiceFilter,
  ServicePhase,
  ServiceRecord,
  TargetInfo,
} from "@vmctl/core";
import { ValidationError } from "@vmctl/core";
import { vmctl } from "@vmctl/proto";
import { jsonFromStruct, StructDepthError, structFromJson } from "@vmctl/proto";
import type { ImageRecordView, ItemProgressEvent } from "./image-store-api.js";

const pb = vmctl.v1;

const PHASES: Readonly<Record<ServicePhase, vmctl.v1.Phase>> = {
  created: pb.Phase.PHASE_CREATED,
  waiting: pb.Phase.PHASE_WAITING,
  starting: pb.Phase.PHASE_STARTING,
  running: pb.Phase.PHASE_RUNNING,
  paused: pb.Phase.PHASE_PAUSED,
  stopping: pb.Phase.PHASE_STOPPING,
  exited: pb.Phase.PHASE_EXITED,
};
const PHASE_NAMES = new Map<number, ServicePhase>(Object.entries(PHASES).map(([name, n]) => [n, name as ServicePhase]));

const EVENT_KINDS: Readonly<Record<ServiceEvent["kind"], vmctl.v1.ServiceEvent.Kind>> = {
  snapshot: pb.ServiceEvent.Kind.KIND_SNAPSHOT,
  created: pb.ServiceEvent.Kind.KIND_CREATED,
  updated: pb.ServiceEvent.Kind.KIND_UPDATED,
  deleted: pb.ServiceEvent.Kind.KIND_DELETED,
};

const STREAMS: Readonly<Record<LogChunk["stream"], vmctl.v1.LogChunk.Stream>> = {
  stdout: pb.LogChunk.Stream.STREAM_STDOUT,
  stderr: pb.LogChunk.Stream.STREAM_STDERR,
  console: pb.LogChunk.Stream.STREAM_CONSOLE,
};

export function phaseToProto(phase: ServicePhase): vmctl.v1.Phase {
  return PHASES[phase] ?? pb.Phase.PHASE_UNSPECIFIED;
}

export function phaseFromProto(phase: number, field: string): ServicePhase {
  const name = PHASE_NAMES.get(phase);
  if (name === undefined) throw new ValidationError(field, `unknown phase ${phase}`);
  return name;
}

export function exitToProto(exit: ExitInfo): vmctl.v1.IExitInfo {
  return {
    ...(exit.code === null ? {} : { code: exit.code }),
    signal: exit.signal ?? "",
    reason: exit.reason,
    detail: exit.detail ?? "",
    atUnixMs: exit.at.getTime(),
  };
}

export function readinessToProto(r: Readiness): vmctl.v1.IReadiness {
  const check = r.check;
  return {
    ...(check.kind === "tcp" ? { tcp: { host: check.host ?? "", port: check.port } } : {}),
    ...(check.kind === "http" ? { http: { url: check.url, expectStatus: check.expectStatus ?? 0 } } : {}),
    ...(check.kind === "command" ? { command: { args: [...check.args] } } : {}),
    intervalMs: r.intervalMs ?? 0,
    timeoutMs: r.timeoutMs ?? 0,
  };
}

export function readinessFromProto(r: vmctl.v1.IReadiness | null | undefined): Readiness | undefined {
  if (r === null || r === undefined) return undefined;
  const timing = { ...(r.intervalMs ? { intervalMs: r.intervalMs } : {}), ...(r.timeoutMs ? { timeoutMs: r.timeoutMs } : {}) };
  if (r.tcp) return { check: { kind: "tcp", port: r.tcp.port ?? 0, ...(r.tcp.host ? { host: r.tcp.host } : {}) }, ...timing };
  if (r.http) {
    return { check: { kind: "http", url: r.http.url ?? "", ...(r.http.expectStatus ? { expectStatus: r.http.expectStatus } : {}) }, ...timing };
  }
  if (r.command) return { check: { kind: "command", args: [...(r.command.args ?? [])] }, ...timing };
  throw new ValidationError("readiness.check", "is required (tcp, http or command)");
}

function isObject(value: JsonValue): value is { [key: string]: JsonValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function serviceToProto(s: ServiceRecord): vmctl.v1.IService {
  return {
    id: s.id,
    name: s.name,
    target: s.target,
    labels: { ...s.labels },
    spec: isObject(s.spec) ? structFromJson(s.spec) : structFromJson({ value: s.spec }),
    dependsOn: [...s.dependsOn],
    phase: phaseToProto(s.phase),
    ...(s.exit === undefined ? {} : { exit: exitToProto(s.exit) }),
    pid: s.pid ?? 0,
    instance: s.instance ?? "",
    addresses: [...s.addresses],
    ready: s.ready,
    createdUnixMs: s.createdAt.getTime(),
    updatedUnixMs: s.updatedAt.getTime(),
    status: s.status ?? "",
    ...(s.readiness === undefined ? {} : { readiness: readinessToProto(s.readiness) }),
  };
}

export function eventToProto(e: ServiceEvent): vmctl.v1.IServiceEvent {
  return { kind: EVENT_KINDS[e.kind], service: serviceToProto(e.service), atUnixMs: e.at.getTime() };
}

export function logChunkToProto(c: LogChunk): vmctl.v1.ILogChunk {
  return { stream: STREAMS[c.stream] ?? pb.LogChunk.Stream.STREAM_UNSPECIFIED, data: c.data, atUnixMs: c.time.getTime() };
}

export function targetToProto(t: TargetInfo): vmctl.v1.ITarget {
  return { name: t.name, plugin: t.plugin, status: t.status, capabilities: { ...t.capabilities } };
}

/** The spec as JSON; a Struct nested past what JSON conversion takes is INVALID_ARGUMENT naming where. */
function specFromProto(spec: vmctl.v1.ICreateServiceRequest["spec"]): { [key: string]: JsonValue } | undefined {
  try {
    return jsonFromStruct(spec);
  } catch (err) {
    if (err instanceof StructDepthError) throw new ValidationError(`spec${err.path}`, err.message.slice(err.message.indexOf(": ") + 2));
    throw err;
  }
}

export function createInputFromProto(req: vmctl.v1.ICreateServiceRequest): CreateServiceInput {
  const readiness = readinessFromProto(req.readiness);
  const run = req.run;
  return {
    ...(req.name ? { name: req.name } : {}),
    ...(req.requestId ? { requestId: req.requestId } : {}),
    target: req.target ?? "",
    spec: specFromProto(req.spec) ?? (run ? {} : undefined),
    labels: { ...(req.labels ?? {}) },
    dependsOn: [...(req.dependsOn ?? [])],
    ...(readiness === undefined ? {} : { readiness }),
    start: req.start === true,
    ...(run
      ? {
          run: {
            ...(run.image != null ? { image: run.image } : {}),
            command: [...(run.command ?? [])],
            env: { ...(run.env ?? {}) },
          },
        }
      : {}),
  };
}

export function filterFromProto(req: vmctl.v1.IListServicesRequest): ServiceFilter {
  return {
    labels: [...(req.labels ?? [])],
    ...(req.target ? { target: req.target } : {}),
    phases: (req.phases ?? []).map((p, i) => phaseFromProto(p, `phases[${i}]`)),
  };
}

/** A progress event on the wire; numbers that are not whole, finite and non-negative are left out. */
export function progressToProto(e: ItemProgressEvent): vmctl.v1.IProgress {
  const count = (n: number | undefined): number | undefined => (typeof n === "number" && Number.isSafeInteger(n) && n >= 0 ? n : undefined);
  const current = count(e.current);
  const total = count(e.total);
  return {
    phase: e.phase,
    item: e.item ?? "",
    ...(current === undefined ? {} : { current }),
    ...(total === undefined ? {} : { total }),
    message: e.message ?? "",
  };
}

/** An RFC 3339 time as Unix ms, or undefined when it is absent or not a time. */
function unixMsOf(rfc3339: string | undefined): number | undefined {
  if (rfc3339 === undefined || rfc3339 === "") return undefined;
  const ms = Date.parse(rfc3339);
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

export function imageToProto(image: ImageRecordView): vmctl.v1.IImage {
  const created = unixMsOf(image.created);
  return {
    digest: image.digest,
    references: [...image.references],
    configDigest: image.configDigest,
    config: {
      entrypoint: [...image.config.entrypoint],
      cmd: [...image.config.cmd],
      env: [...image.config.env],
      workingDir: image.config.workingDir,
      user: image.config.user,
      labels: { ...image.config.labels },
    },
    layers: image.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
    diskBytes: image.diskBytes,
    pulledAtUnixMs: image.pulledAt.getTime(),
    usedBy: [...image.usedBy],
    ...(created === undefined ? {} : { createdUnixMs: created }),
  };
}
