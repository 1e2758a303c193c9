// Mapping between rows of the `services` table and ServiceRecord.
import type { ExitInfo, JsonValue } from "../contract/types.js";
import type { Readiness, ServicePhase, ServiceRecord } from "../orchestrator/api.js";

export type Lifecycle = "creating" | "active" | "deleting";

/** A service as stored: the public record plus where it is in create/delete. */
export interface StoredService extends ServiceRecord {
  readonly lifecycle: Lifecycle;
  /** The client's idempotency key, when it gave one, and the hash of its request. */
  readonly requestId?: string;
  readonly requestHash?: string;
  /** Set while a stop is in progress: when it is forced (ms since the epoch). */
  readonly stopDeadline?: number;
}

/** The stored service without the store's own bookkeeping: what the API reports. */
export function publicRecord(service: StoredService): ServiceRecord {
  const { lifecycle: _lifecycle, requestId: _requestId, requestHash: _requestHash, stopDeadline: _stopDeadline, ...record } = service;
  return record;
}

export interface ServiceRow {
  id: string;
  name: string;
  target: string;
  lifecycle: Lifecycle;
  labels: string;
  spec: string;
  depends_on: string;
  readiness: string | null;
  phase: string;
  exit: string | null;
  pid: number | null;
  instance: string | null;
  addresses: string;
  ready: number;
  status: string | null;
  created_at: number;
  updated_at: number;
  request_id: string | null;
  request_hash: string | null;
  stop_deadline: number | null;
}

interface StoredExit {
  code: number | null;
  signal?: string;
  reason: string;
  detail?: string;
  at: number;
}

export function rowToService(row: ServiceRow): StoredService {
  const service: {
    -readonly [K in keyof StoredService]: StoredService[K];
  } = {
    id: row.id,
    name: row.name,
    target: row.target,
    lifecycle: row.lifecycle,
    labels: JSON.parse(row.labels) as Record<string, string>,
    spec: JSON.parse(row.spec) as JsonValue,
    dependsOn: JSON.parse(row.depends_on) as string[],
    phase: row.phase as ServicePhase,
    addresses: JSON.parse(row.addresses) as string[],
    ready: row.ready === 1,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
  if (row.readiness !== null) service.readiness = JSON.parse(row.readiness) as Readiness;
  if (row.exit !== null) service.exit = decodeExit(row.exit);
  if (row.pid !== null) service.pid = row.pid;
  if (row.instance !== null) service.instance = row.instance;
  if (row.status !== null) service.status = row.status;
  if (row.request_id !== null) service.requestId = row.request_id;
  if (row.request_hash !== null) service.requestHash = row.request_hash;
  if (row.stop_deadline !== null) service.stopDeadline = row.stop_deadline;
  return service;
}

export function encodeExit(exit: ExitInfo): string {
  const stored: StoredExit = { code: exit.code, reason: exit.reason, at: exit.at.getTime() };
  if (exit.signal !== undefined) stored.signal = exit.signal;
  if (exit.detail !== undefined) stored.detail = exit.detail;
  return JSON.stringify(stored);
}

function decodeExit(text: string): ExitInfo {
  const stored = JSON.parse(text) as StoredExit;
  const exit: { -readonly [K in keyof ExitInfo]: ExitInfo[K] } = {
    code: stored.code,
    reason: stored.reason,
    at: new Date(stored.at),
  };
  if (stored.signal !== undefined) exit.signal = stored.signal;
  if (stored.detail !== undefined) exit.detail = stored.detail;
  return exit;
}
