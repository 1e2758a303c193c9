// The orchestrator API's limits, in one place: the engine enforces them, the server
// and client size their messages by them, docs/api-limits.md lists them. Each keeps one
// careless (or hostile) client from hurting everyone else: a ListServices answer must
// stay under gRPC's 4 MiB default message size, an error must fit in a header.

export const LIMITS = {
  /** Service names: [a-z0-9][a-z0-9_.-]{0,62}, and not of the id form (16 hex digits). */
  nameLength: 63,
  /** A service reference (id or name) in any request. */
  refLength: 63,
  /** Labels per service. */
  labelCount: 64,
  /** A label key: [A-Za-z0-9]([A-Za-z0-9_./-]*[A-Za-z0-9])?, this long at most. */
  labelKeyLength: 253,
  /** A label value, in UTF-8 bytes; no control characters. */
  labelValueBytes: 1024,
  /** All of one service's labels (keys and values), in UTF-8 bytes. */
  labelsTotalBytes: 16 * 1024,
  /** A target name. */
  targetLength: 63,
  /** The spec (or the run shorthand), as JSON, in UTF-8 bytes. */
  specBytes: 256 * 1024,
  /** Nesting of objects and lists in a spec. */
  specDepth: 32,
  /** dependsOn entries. */
  dependsOnCount: 64,
  /** run.command and exec args: entries, and all of them in UTF-8 bytes. */
  argCount: 4096,
  argsTotalBytes: 256 * 1024,
  /** run.env entries. */
  envCount: 1024,
  /** run.mounts and run.copyOut entries, each. */
  runPathCount: 64,
  /** readiness.intervalMs: 1 ms .. 1 h. */
  readinessIntervalMs: 3_600_000,
  /** readiness.timeoutMs: 1 ms .. 24 h. */
  readinessTimeoutMs: 86_400_000,
  /** StopService timeout_ms: up to 24 h. */
  stopTimeoutMs: 86_400_000,
  /** request_id: 1-64 of [A-Za-z0-9_.:-]. */
  requestIdLength: 64,
  /** Label selectors in one ListServices. */
  selectorCount: 64,
  /** ListServices page_size; 0 means the default. */
  pageSizeMax: 1000,
  pageSizeDefault: 500,
  /** A ListServices answer is cut before it grows past this many bytes of services. */
  pageBytes: 2 * 1024 * 1024,
  /** Messages the server accepts (gRPC's default). */
  maxRequestBytes: 4 * 1024 * 1024,
  /** Characters of a client's value echoed back in an error message. */
  echoLength: 64,
} as const;

/** Service names (ids match it too, so one check covers any reference). */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/** Label keys (and the key of a label selector). */
export const LABEL_KEY_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9_./-]{0,251}[A-Za-z0-9])?$/;

/** Id of a service: 16 lowercase hex digits. A name of this form is refused so no name can shadow an id. */
export const SERVICE_ID_PATTERN = /^[0-9a-f]{16}$/;

/**
 * A map's entries in key order (UTF-16 code units). Checks that report the first bad entry
 * go through a map this way, so which one is named does not hang on the order it came in:
 * a protobuf map has none on the wire, and two clients (the Node CLI, the native front)
 * send the same map in different orders.
 */
export function entriesByKey<T>(map: { readonly [key: string]: T }): [string, T][] {
  return Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * A client's value quoted for an error message: JSON-escaped (control characters, NUL
 * and quotes visible), cut to LIMITS.echoLength characters with the full length given,
 * so no message ever carries a megabyte of what the client sent.
 */
export function echo(value: unknown): string {
  const text = typeof value === "string" ? value : String(value);
  const chars = [...text];
  if (chars.length <= LIMITS.echoLength) return JSON.stringify(text);
  return `${JSON.stringify(chars.slice(0, LIMITS.echoLength).join(""))}… (${chars.length} characters)`;
}
