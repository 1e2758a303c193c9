// Image references as users type them: checked before anything else, and normalised the
// way the native engine (and docker) names them, so that `node:20` finds the image the
// engine recorded as `docker.io/library/node:20`.
import { echo, LIMITS } from "../contract/limits.js";
import { ValidationError } from "../errors.js";
import { hasControlCharacter, utf8Bytes } from "../orchestrator/request-checks.js";

/** The request field a bad reference is reported against. */
export const IMAGE_FIELD = "image";
/** Longest reference accepted, in UTF-8 bytes. */
export const MAX_REFERENCE_BYTES = 4096;
/** Shortest digest prefix (hex digits) that names an image. */
export const MIN_DIGEST_PREFIX = 12;

/** The built-in image (Debian's static busybox, built locally), and the names that mean it. */
export const DEFAULT_IMAGE = "localhost/vmctl/default:latest";
const DEFAULT_ALIASES: ReadonlySet<string> = new Set(["default", "default:latest", "builtin:default", DEFAULT_IMAGE]);

/** What the native engine is asked to prepare for a reference: the built-in source for the default image's names. */
export function engineSource(reference: string): string {
  return DEFAULT_ALIASES.has(reference) ? "builtin:default" : reference;
}

/** A full image digest, the store's identity of an image. */
export const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;
const DIGEST_PREFIX_PATTERN = new RegExp(`^(sha256:)?([0-9a-f]{${MIN_DIGEST_PREFIX},64})$`);
/** Sources that are files to import, not names to look up (see PrepareImageRequest.source). */
const ARCHIVE_TRANSPORTS = ["docker-archive:", "oci:"] as const;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Any Unicode white space (space, no-break space, line separator, ideographic space...). */
const WHITE_SPACE = /\s/u;
const NON_ASCII = /[^\x00-\x7f]/;

// The grammar of github.com/distribution/reference.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:localhost|(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;

/** Which request field a reference arrived in, so that its errors name what the caller sent. */
export interface ReferenceOptions {
  /** Default IMAGE_FIELD (the spec field `image`); the image RPCs pass "reference". */
  readonly field?: string;
}

/**
 * A reference from a user, checked before it goes anywhere — the one rule for image
 * references, whoever receives them (the image RPCs, a target's spec, the image store):
 * - a non-empty string of at most MAX_REFERENCE_BYTES bytes of UTF-8;
 * - no control characters (C0, DEL, C1: NUL, newline, escape...) and no white space;
 * - well-formed Unicode (no lone surrogate);
 * - ASCII, unless it is a `docker-archive:` or `oci:` source, whose path is a file on the
 *   daemon's host and may hold any Unicode (a registry reference is ASCII by grammar).
 * Anything else is INVALID_ARGUMENT naming `field`. Whether it names a real image is the
 * engine's to say.
 */
export function checkReference(reference: unknown, field: string = IMAGE_FIELD): string {
  if (reference === undefined || reference === null || reference === "") {
    throw new ValidationError(field, "is required: an image reference (name:tag, name@sha256:…, a digest, oci:DIR[:TAG] or docker-archive:FILE)");
  }
  if (typeof reference !== "string") throw new ValidationError(field, "must be a string: an image reference");
  // Every UTF-16 unit is at least one UTF-8 byte: a long string is refused before it is measured.
  if (reference.length > MAX_REFERENCE_BYTES || utf8Bytes(reference) > MAX_REFERENCE_BYTES) {
    throw new ValidationError(field, `is too long (${utf8Bytes(reference)} bytes); at most ${MAX_REFERENCE_BYTES}`);
  }
  if (hasControlCharacter(reference)) throw new ValidationError(field, `${echo(reference)} must not contain control characters`);
  if (WHITE_SPACE.test(reference)) throw new ValidationError(field, `${echo(reference)} must not contain white space`);
  if (LONE_SURROGATE.test(reference)) throw new ValidationError(field, `${echo(reference)} is not well-formed Unicode`);
  if (NON_ASCII.test(reference) && !isArchiveSource(reference)) {
    throw new ValidationError(field, `${echo(reference)} is not an image reference: a registry reference is ASCII (only an oci: or docker-archive: path may hold other characters)`);
  }
  return reference;
}

/** A checked reference as it may appear in a message: itself when short, else quoted and cut. */
export function shown(reference: string): string {
  return reference.length <= LIMITS.echoLength && !/\s/.test(reference) ? reference : echo(reference);
}

/** True for `docker-archive:PATH[:NAME]` and `oci:PATH[:TAG]`: imported from files, never looked up by name. */
export function isArchiveSource(reference: string): boolean {
  return ARCHIVE_TRANSPORTS.some((prefix) => reference.startsWith(prefix));
}

/** The hex digits of a digest or a digest prefix (`sha256:abc…` or `abc…`, ≥ 12 digits), else undefined. */
export function digestPrefix(reference: string): { readonly hex: string; readonly explicit: boolean } | undefined {
  const match = DIGEST_PREFIX_PATTERN.exec(reference);
  return match === null ? undefined : { hex: match[2] as string, explicit: match[1] !== undefined };
}

/**
 * A registry reference in its normalised form, as docker and the native engine name it:
 * `node:20` → `docker.io/library/node:20`, `alpine` → `docker.io/library/alpine:latest`,
 * `127.0.0.1:5000/app` → `127.0.0.1:5000/app:latest`; a `docker://` prefix is dropped, a
 * digest kept (`name@sha256:…`); `default` is the built-in image's name. Undefined for archives and for what is not a reference
 * (the engine then says what is wrong with it).
 */
export function normaliseReference(reference: string): string | undefined {
  if (DEFAULT_ALIASES.has(reference)) return DEFAULT_IMAGE;
  if (isArchiveSource(reference)) return undefined;
  let rest = reference.startsWith("docker://") ? reference.slice("docker://".length) : reference;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_PATTERN.test(digest)) return undefined;
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return undefined;
  }
  let domain = "docker.io";
  let path = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase()) {
      domain = first === "index.docker.io" ? "docker.io" : first;
      path = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN.test(domain)) return undefined;
  if (domain === "docker.io" && !path.includes("/")) path = `library/${path}`;
  if (path.length === 0 || domain.length + 1 + path.length > 255 || !path.split("/").every((c) => PATH_COMPONENT.test(c))) return undefined;
  if (tag === undefined && digest === undefined) tag = "latest";
  return `${domain}/${path}${tag === undefined ? "" : `:${tag}`}${digest === undefined ? "" : `@${digest}`}`;
}

/** The `sha256:…` digest a reference pins (`name@sha256:…`), if it pins one. */
export function pinnedDigest(reference: string): string | undefined {
  const at = reference.lastIndexOf("@");
  if (at < 0) return undefined;
  const digest = reference.slice(at + 1);
  return DIGEST_PATTERN.test(digest) ? digest : undefined;
}
