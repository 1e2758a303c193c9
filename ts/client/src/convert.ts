// vmctl.v1 messages ↔ the client's plain types.
import { vmctl } from "@vmctl/proto";
import type { CreateServiceInput, ExitInfo, Image, LogChunk, ProgressEvent, PrunedImages, Readiness, ServiceEvent, ServiceFilter, ServicePhase, ServiceRecord, TargetInfo } from "./types.js";
import { jsonFromStruct, structFromJson } from "@vmctl/proto";

const pb = vmctl.v1;

/** uint64 fields decode as a number or, when the long library is installed, as a Long. */
function toNumber(value: number | { toNumber(): number } | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === "number" ? value : value.toNumber();
}

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
const EVENT_KINDS = new Map<number, ServiceEvent["kind"]>([
  [pb.ServiceEvent.Kind.KIND_SNAPSHOT, "snapshot"],
  [pb.ServiceEvent.Kind.KIND_CREATED, "created"],
  [pb.ServiceEvent.Kind.KIND_UPDATED, "updated"],
  [pb.ServiceEvent.Kind.KIND_DELETED, "deleted"],
]);
const STREAMS = new Map<number, LogChunk["stream"]>([
  [pb.LogChunk.Stream.STREAM_STDOUT, "stdout"],
  [pb.LogChunk.Stream.STREAM_STDERR, "stderr"],
  [pb.LogChunk.Stream.STREAM_CONSOLE, "console"],
]);

export function exitFromProto(e: vmctl.v1.IExitInfo): ExitInfo {
  return {
    code: e.code ?? null,
    ...(e.signal ? { signal: e.signal } : {}),
    reason: e.reason ?? "",
    ...(e.detail ? { detail: e.detail } : {}),
    at: new Date(toNumber(e.atUnixMs)),
  };
}

function readinessToProto(r: Readiness): vmctl.v1.IReadiness {
  const check = r.check;
  return {
    ...(check.kind === "tcp" ? { tcp: { host: check.host ?? "", port: check.port } } : {}),
    ...(check.kind === "http" ? { http: { url: check.url, expectStatus: check.expectStatus ?? 0 } } : {}),
    ...(check.kind === "command" ? { command: { args: [...check.args] } } : {}),
    intervalMs: r.intervalMs ?? 0,
    timeoutMs: r.timeoutMs ?? 0,
  };
}

function readinessFromProto(r: vmctl.v1.IReadiness | null | undefined): Readiness | undefined {
  if (!r) return undefined;
  const timing = { ...(r.intervalMs ? { intervalMs: r.intervalMs } : {}), ...(r.timeoutMs ? { timeoutMs: r.timeoutMs } : {}) };
  if (r.tcp) return { check: { kind: "tcp", port: r.tcp.port ?? 0, ...(r.tcp.host ? { host: r.tcp.host } : {}) }, ...timing };
  if (r.http) return { check: { kind: "http", url: r.http.url ?? "", ...(r.http.expectStatus ? { expectStatus: r.http.expectStatus } : {}) }, ...timing };
  if (r.command) return { check: { kind: "command", args: [...(r.command.args ?? [])] }, ...timing };
  return undefined;
}

export function serviceFromProto(s: vmctl.v1.IService): ServiceRecord {
  const readiness = readinessFromProto(s.readiness);
  return {
    id: s.id ?? "",
    name: s.name ?? "",
    target: s.target ?? "",
    labels: { ...(s.labels ?? {}) },
    spec: jsonFromStruct(s.spec) ?? {},
    dependsOn: [...(s.dependsOn ?? [])],
    ...(readiness === undefined ? {} : { readiness }),
    phase: PHASE_NAMES.get(s.phase ?? 0) ?? "created",
    ...(s.exit ? { exit: exitFromProto(s.exit) } : {}),
    ...(s.pid ? { pid: s.pid } : {}),
    ...(s.instance ? { instance: s.instance } : {}),
    addresses: [...(s.addresses ?? [])],
    ready: s.ready === true,
    ...(s.status ? { status: s.status } : {}),
    createdAt: new Date(toNumber(s.createdUnixMs)),
    updatedAt: new Date(toNumber(s.updatedUnixMs)),
  };
}

export function eventFromProto(e: vmctl.v1.IServiceEvent): ServiceEvent {
  return {
    kind: EVENT_KINDS.get(e.kind ?? 0) ?? "updated",
    service: serviceFromProto(e.service ?? {}),
    at: new Date(toNumber(e.atUnixMs)),
  };
}

export function logChunkFromProto(c: vmctl.v1.ILogChunk): LogChunk {
  const data = c.data ?? new Uint8Array(0);
  return { stream: STREAMS.get(c.stream ?? 0) ?? "stdout", data, time: new Date(toNumber(c.atUnixMs)) };
}

export function targetFromProto(t: vmctl.v1.ITarget): TargetInfo {
  const c = t.capabilities ?? {};
  return {
    name: t.name ?? "",
    plugin: t.plugin ?? "",
    status: t.status ?? "",
    capabilities: {
      exec: c.exec === true,
      pause: c.pause === true,
      network: c.network === true,
      volumes: c.volumes === true,
      logsFollow: c.logsFollow === true,
    },
  };
}

export function createRequestToProto(input: CreateServiceInput): vmctl.v1.ICreateServiceRequest {
  return {
    name: input.name ?? "",
    ...(input.requestId === undefined ? {} : { requestId: input.requestId }),
    target: input.target,
    ...(input.spec === undefined ? {} : { spec: structFromJson(input.spec) }),
    labels: { ...(input.labels ?? {}) },
    dependsOn: [...(input.dependsOn ?? [])],
    ...(input.readiness === undefined ? {} : { readiness: readinessToProto(input.readiness) }),
    start: input.start === true,
    ...(input.run === undefined
      ? {}
      : {
          run: {
            ...(input.run.image === undefined ? {} : { image: input.run.image }),
            command: [...(input.run.command ?? [])],
            env: { ...(input.run.env ?? {}) },
          },
        }),
  };
}

export function filterToProto(filter: ServiceFilter): vmctl.v1.IListServicesRequest {
  return {
    labels: [...(filter.labels ?? [])],
    target: filter.target ?? "",
    phases: (filter.phases ?? []).map((p) => PHASES[p] ?? pb.Phase.PHASE_UNSPECIFIED),
  };
}

export function progressFromProto(p: vmctl.v1.IProgress): ProgressEvent {
  return {
    phase: p.phase ?? "",
    ...(p.item ? { item: p.item } : {}),
    ...(p.message ? { message: p.message } : {}),
    ...(p.current == null ? {} : { current: toNumber(p.current) }),
    ...(p.total == null ? {} : { total: toNumber(p.total) }),
  };
}

export function imageFromProto(i: vmctl.v1.IImage): Image {
  const c = i.config ?? {};
  return {
    digest: i.digest ?? "",
    references: [...(i.references ?? [])],
    configDigest: i.configDigest ?? "",
    config: {
      entrypoint: [...(c.entrypoint ?? [])],
      cmd: [...(c.cmd ?? [])],
      env: [...(c.env ?? [])],
      workingDir: c.workingDir ?? "",
      user: c.user ?? "",
      labels: { ...(c.labels ?? {}) },
    },
    layers: (i.layers ?? []).map((l) => ({ digest: l.digest ?? "", size: toNumber(l.size), mediaType: l.mediaType ?? "" })),
    diskBytes: toNumber(i.diskBytes),
    pulledAt: new Date(toNumber(i.pulledAtUnixMs)),
    usedBy: [...(i.usedBy ?? [])],
    ...(i.createdUnixMs == null ? {} : { created: new Date(toNumber(i.createdUnixMs)) }),
  };
}

export function prunedFromProto(p: vmctl.v1.IPruneImagesResponse): PrunedImages {
  return { removed: [...(p.removed ?? [])], reclaimedBytes: toNumber(p.reclaimedBytes) };
}
