// ListServices in pages. One answer holds at most page_size services (default
// LIMITS.pageSizeDefault, at most LIMITS.pageSizeMax) and is cut before its services pass
// LIMITS.pageBytes encoded, so it stays well under gRPC's 4 MiB message limit however
// many labels and how large a spec each service carries (`vmctl ps` failed for everyone
// once two services held 3 MB of labels).
//
// The page token is opaque to clients: base64url of JSON {v, c, i, f} — the position
// after the last service sent (its created time and id: the engine lists by (created,
// id), so the position survives services created or deleted between pages) and a hash
// of the filter, so a token is not reused with another filter.
import { createHash } from "node:crypto";
import { echo, LIMITS, ValidationError } from "@vmctl/core";
import type { ServiceFilter, ServiceRecord } from "@vmctl/core";
import { serviceToProto, vmctl } from "@vmctl/proto";

export interface PageRequest {
  /** 0 = the server's choice; above LIMITS.pageSizeMax counts as the maximum (AIP-158). */
  readonly pageSize: number;
  /** next_page_token of the previous answer; "" for the first page. */
  readonly pageToken: string;
}

export interface Page {
  readonly services: vmctl.v1.IService[];
  /** "" on the last page. */
  readonly nextPageToken: string;
}

interface Position {
  readonly createdMs: number;
  readonly id: string;
}

const TOKEN_VERSION = 1;
// A repeated message field costs its tag and a length prefix besides the message.
const FIELD_OVERHEAD = 1 + 4;

export function filterHash(filter: ServiceFilter): string {
  const canonical = JSON.stringify([[...(filter.labels ?? [])].sort(), filter.target ?? "", [...(filter.phases ?? [])].sort()]);
  return createHash("sha256").update(canonical).digest("base64url").slice(0, 16);
}

export function encodePageToken(position: Position, hash: string): string {
  return Buffer.from(JSON.stringify({ v: TOKEN_VERSION, c: position.createdMs, i: position.id, f: hash })).toString("base64url");
}

/** The position a token stands for; INVALID_ARGUMENT naming pageToken when it is not one of ours or belongs to another filter. */
export function decodePageToken(token: string, hash: string): Position {
  const refuse = (why: string): never => {
    throw new ValidationError("pageToken", `${echo(token)} ${why}`);
  };
  if (token.length > 512 || !/^[A-Za-z0-9_-]+$/.test(token)) return refuse("is not a page token from this server");
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    return refuse("is not a page token from this server");
  }
  const p = parsed as { v?: unknown; c?: unknown; i?: unknown; f?: unknown } | null;
  if (p === null || typeof p !== "object" || p.v !== TOKEN_VERSION || !Number.isSafeInteger(p.c) || typeof p.i !== "string" || typeof p.f !== "string") {
    return refuse("is not a page token from this server");
  }
  if (p.f !== hash) return refuse("belongs to a listing with other filters (labels, target, phases must stay the same from page to page)");
  return { createdMs: p.c as number, id: p.i };
}

function after(s: ServiceRecord, position: Position): boolean {
  const created = s.createdAt.getTime();
  return created > position.createdMs || (created === position.createdMs && s.id > position.id);
}

function byPosition(a: ServiceRecord, b: ServiceRecord): number {
  return a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The page of `services` (all that match `filter`) that `request` asks for. */
export function pageOf(services: readonly ServiceRecord[], filter: ServiceFilter, request: PageRequest): Page {
  const hash = filterHash(filter);
  const size = request.pageSize === 0 ? LIMITS.pageSizeDefault : Math.min(request.pageSize, LIMITS.pageSizeMax);
  const start = request.pageToken === "" ? undefined : decodePageToken(request.pageToken, hash);
  const remaining = [...services].sort(byPosition).filter((s) => start === undefined || after(s, start));
  const page: vmctl.v1.IService[] = [];
  let bytes = 0;
  let last: ServiceRecord | undefined;
  for (const record of remaining) {
    if (page.length === size) break;
    const message = serviceToProto(record);
    const encoded = vmctl.v1.Service.encode(message).finish().length + FIELD_OVERHEAD;
    // Always at least one, so a listing moves on even past a service larger than a page.
    if (page.length > 0 && bytes + encoded > LIMITS.pageBytes) break;
    page.push(message);
    bytes += encoded;
    last = record;
  }
  const more = last !== undefined && page.length < remaining.length;
  return {
    services: page,
    nextPageToken: more && last !== undefined ? encodePageToken({ createdMs: last.createdAt.getTime(), id: last.id }, hash) : "",
  };
}
