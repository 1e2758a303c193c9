// The checks vmctld makes of an image reference before the image store sees it: only
// what any reference must be to travel (present, bounded, no control characters or white
// space, ASCII for a registry reference as the OCI distribution grammar has it). The
// reference's grammar (name, tag, digest, transports) is the image store's to judge.
import { echo, ValidationError } from "@vmctl/core";

/** Longest reference, in UTF-8 bytes (an archive path may be as long as PATH_MAX). */
export const MAX_IMAGE_REFERENCE_BYTES = 4096;

/** Sources that name a file on the daemon's host, where a path may hold any Unicode. */
const PATH_TRANSPORTS = ["docker-archive:", "oci:"] as const;

// C0 and C1 controls (NUL, newline, ESC...), DEL; and any Unicode white space.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const WHITE_SPACE = /\s/u;
const NON_ASCII = /[^\x21-\x7e]/;

/** `reference` if it may go to the image store; else a ValidationError naming `field`. */
export function checkImageReference(reference: string | null | undefined, field: string): string {
  if (reference == null || reference === "") throw new ValidationError(field, "is required: an image reference (e.g. node:20)");
  const bytes = Buffer.byteLength(reference, "utf8");
  if (bytes > MAX_IMAGE_REFERENCE_BYTES) throw new ValidationError(field, `is too long (${bytes} bytes; at most ${MAX_IMAGE_REFERENCE_BYTES})`);
  if (CONTROL.test(reference)) throw new ValidationError(field, `${echo(reference)} must not contain control characters`);
  if (WHITE_SPACE.test(reference)) throw new ValidationError(field, `${echo(reference)} must not contain white space`);
  if (!PATH_TRANSPORTS.some((prefix) => reference.startsWith(prefix)) && NON_ASCII.test(reference)) {
    throw new ValidationError(field, `${echo(reference)} is not an image reference (a registry reference is ASCII)`);
  }
  return reference;
}
