// vmctl.v1's service messages ↔ the orchestrator API's types (@vmctl/core/contract), each
// mapping once and both ways. The server encodes what the engine answers and decodes
// what a client sent; the client does the reverse. Decoders of client input
// (`createInputFromProto`, `filterFromProto`, `readinessFromProto`) validate, throwing a
// ValidationError that names the field; decoders of server answers are lenient (a value
// a newer server added reads as a default). Plain objects in and out: no protobufjs
// class leaves this module.
import {
  ValidationError,
  type CreateServiceInput,
  type ExitInfo,
  type JsonValue,
  type LogChunk,
  type Readiness,
  type ServiceEvent,
  type ServiceFilter,
  type ServiceRecord,
  type TargetInfo,
} from "@vmctl/core/contract";
import type { vmctl } from "../gen/protos.js";
import { jsonFromStruct, StructDepthError, structFromJson } from "../struct.js";
import { eventKind, logStream, servicePhase } from "./enums.js";
import { policyFromProto, policyToProto, portFromProto, portToProto, serviceNetworkFromProto, serviceNetworkToProto } from "./networks.js";
import { dateOf } from "./wire-numbers.js";

/** What a create request carries: the engine's input, with the spec as JSON (it crosses the wire). */
export interface CreateServiceRequestInput extends Omit<CreateServiceInput, "spec"> {
  readonly spec?: { readonly [key: string]: JsonValue };
}

// ---- ExitInfo

export function exitToProto(exit: ExitInfo): vmctl.v1.IExitInfo {
  return {
    ...(exit.code === null ? {} : { code: exit.code }),
    signal: exit.signal ?? "",
    reason: exit.reason,
    detail: exit.detail ?? "",
    atUnixMs: exit.at.getTime(),
  };
}

export function exitFromProto(e: vmctl.v1.IExitInfo): ExitInfo {
  return {
    code: e.code ?? null,
    ...(e.signal ? { signal: e.signal } : {}),
    reason: e.reason ?? "",
    ...(e.detail ? { detail: e.detail } : {}),
    at: dateOf(e.atUnixMs),
  };
}

// ---- Readiness

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

/** The readiness in `r`; undefined when there is none, or it has no check this side knows. */
function readinessOf(r: vmctl.v1.IReadiness | null | undefined): Readiness | undefined {
  if (r === null || r === undefined) return undefined;
  const timing = { ...(r.intervalMs ? { intervalMs: r.intervalMs } : {}), ...(r.timeoutMs ? { timeoutMs: r.timeoutMs } : {}) };
  if (r.tcp) return { check: { kind: "tcp", port: r.tcp.port ?? 0, ...(r.tcp.host ? { host: r.tcp.host } : {}) }, ...timing };
  if (r.http) {
    return { check: { kind: "http", url: r.http.url ?? "", ...(r.http.expectStatus ? { expectStatus: r.http.expectStatus } : {}) }, ...timing };
  }
  if (r.command) return { check: { kind: "command", args: [...(r.command.args ?? [])] }, ...timing };
  return undefined;
}

/** Client input: a readiness without a check is a ValidationError on "readiness.check". */
export function readinessFromProto(r: vmctl.v1.IReadiness | null | undefined): Readiness | undefined {
  const readiness = readinessOf(r);
  if (readiness === undefined && r !== null && r !== undefined) throw new ValidationError("readiness.check", "is required (tcp, http or command)");
  return readiness;
}

// ---- Service, ServiceEvent, LogChunk, Target

function isObject(value: JsonValue): value is { [key: string]: JsonValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A service record on the wire; a spec that is not an object travels as `{ value: spec }` (a Struct holds only objects). */
export function serviceToProto(s: ServiceRecord): vmctl.v1.IService {
  return {
    id: s.id,
    name: s.name,
    target: s.target,
    labels: { ...s.labels },
    spec: isObject(s.spec) ? structFromJson(s.spec) : structFromJson({ value: s.spec }),
    dependsOn: [...s.dependsOn],
    phase: servicePhase.encode(s.phase),
    ...(s.exit === undefined ? {} : { exit: exitToProto(s.exit) }),
    pid: s.pid ?? 0,
    instance: s.instance ?? "",
    addresses: [...s.addresses],
    ready: s.ready,
    createdUnixMs: s.createdAt.getTime(),
    updatedUnixMs: s.updatedAt.getTime(),
    status: s.status ?? "",
    ...(s.readiness === undefined ? {} : { readiness: readinessToProto(s.readiness) }),
    ...(s.network === undefined ? {} : { network: serviceNetworkToProto(s.network) }),
  };
}

export function serviceFromProto(s: vmctl.v1.IService): ServiceRecord {
  const readiness = readinessOf(s.readiness);
  return {
    id: s.id ?? "",
    name: s.name ?? "",
    target: s.target ?? "",
    labels: { ...(s.labels ?? {}) },
    spec: jsonFromStruct(s.spec) ?? {},
    dependsOn: [...(s.dependsOn ?? [])],
    ...(readiness === undefined ? {} : { readiness }),
    phase: servicePhase.decode(s.phase, "created"),
    ...(s.exit ? { exit: exitFromProto(s.exit) } : {}),
    ...(s.pid ? { pid: s.pid } : {}),
    ...(s.instance ? { instance: s.instance } : {}),
    addresses: [...(s.addresses ?? [])],
    ready: s.ready === true,
    ...(s.status ? { status: s.status } : {}),
    ...(s.network ? { network: serviceNetworkFromProto(s.network) } : {}),
    createdAt: dateOf(s.createdUnixMs),
    updatedAt: dateOf(s.updatedUnixMs),
  };
}

export function eventToProto(e: ServiceEvent): vmctl.v1.IServiceEvent {
  return { kind: eventKind.encode(e.kind), service: serviceToProto(e.service), atUnixMs: e.at.getTime() };
}

export function eventFromProto(e: vmctl.v1.IServiceEvent): ServiceEvent {
  return { kind: eventKind.decode(e.kind, "updated"), service: serviceFromProto(e.service ?? {}), at: dateOf(e.atUnixMs) };
}

export function logChunkToProto(c: LogChunk): vmctl.v1.ILogChunk {
  return { stream: logStream.encode(c.stream), data: c.data, atUnixMs: c.time.getTime() };
}

export function logChunkFromProto(c: vmctl.v1.ILogChunk): LogChunk {
  return { stream: logStream.decode(c.stream, "stdout"), data: c.data ?? new Uint8Array(0), time: dateOf(c.atUnixMs) };
}

export function targetToProto(t: TargetInfo): vmctl.v1.ITarget {
  return { name: t.name, plugin: t.plugin, status: t.status, capabilities: { ...t.capabilities, copy: t.capabilities.copy === true } };
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
      copy: c.copy === true,
    },
  };
}

// ---- CreateServiceRequest, ListServicesRequest (client input)

export function createRequestToProto(input: CreateServiceRequestInput): vmctl.v1.ICreateServiceRequest {
  return {
    name: input.name ?? "",
    ...(input.requestId === undefined ? {} : { requestId: input.requestId }),
    target: input.target,
    ...(input.spec === undefined ? {} : { spec: structFromJson(input.spec) }),
    labels: { ...(input.labels ?? {}) },
    dependsOn: [...(input.dependsOn ?? [])],
    ...(input.readiness === undefined ? {} : { readiness: readinessToProto(input.readiness) }),
    start: input.start === true,
    ...(input.network === undefined ? {} : { network: input.network }),
    ...(input.ports === undefined ? {} : { ports: input.ports.map(portToProto) }),
    ...(input.networkPolicy === undefined ? {} : { networkPolicy: policyToProto(input.networkPolicy) }),
    ...(input.run === undefined
      ? {}
      : {
          run: {
            ...(input.run.image === undefined ? {} : { image: input.run.image }),
            command: [...(input.run.command ?? [])],
            env: { ...(input.run.env ?? {}) },
            mounts: (input.run.mounts ?? []).map((m) => ({ source: m.source, destination: m.destination, readOnly: m.readOnly === true })),
            copyOut: [...(input.run.copyOut ?? [])],
          },
        }),
  };
}

/** The spec as JSON; a Struct nested past what JSON conversion takes is a ValidationError naming where. */
function specFromProto(spec: vmctl.v1.ICreateServiceRequest["spec"]): { [key: string]: JsonValue } | undefined {
  try {
    return jsonFromStruct(spec);
  } catch (err) {
    if (err instanceof StructDepthError) throw new ValidationError(`spec${err.path}`, err.message.slice(err.message.indexOf(": ") + 2));
    throw err;
  }
}

/** Client input as the engine's: an unreadable spec or readiness is a ValidationError naming the field. */
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
    ...(req.network ? { network: req.network } : {}),
    ...(req.ports && req.ports.length > 0 ? { ports: req.ports.map(portFromProto) } : {}),
    ...(req.networkPolicy ? { networkPolicy: policyFromProto(req.networkPolicy, "networkPolicy") } : {}),
    ...(run
      ? {
          run: {
            ...(run.image != null ? { image: run.image } : {}),
            command: [...(run.command ?? [])],
            env: { ...(run.env ?? {}) },
            // Checked by the engine (the target kit's mount rules), like the rest of the shorthand.
            mounts: (run.mounts ?? []).map((m) => ({ source: m.source ?? "", destination: m.destination ?? "", ...(m.readOnly ? { readOnly: true } : {}) })),
            copyOut: [...(run.copyOut ?? [])],
          },
        }
      : {}),
  };
}

export function filterToProto(filter: ServiceFilter): vmctl.v1.IListServicesRequest {
  return {
    labels: [...(filter.labels ?? [])],
    target: filter.target ?? "",
    phases: (filter.phases ?? []).map((p) => servicePhase.encode(p)),
  };
}

/** Client input: a phase with no name is a ValidationError on "phases[i]". */
export function filterFromProto(req: vmctl.v1.IListServicesRequest): ServiceFilter {
  return {
    labels: [...(req.labels ?? [])],
    ...(req.target ? { target: req.target } : {}),
    phases: (req.phases ?? []).map((p, i) => servicePhase.parse(p, `phases[${i}]`)),
  };
}
