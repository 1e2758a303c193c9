// An image reference as the image RPCs (PullImage, InspectImage, RemoveImage) receive it:
// the request field is `reference`, and the rule is core's (checkReference, one rule for
// every place a reference arrives). The reference's grammar (name, tag, digest,
// transports) is the image store's to judge.
import { checkReference, MAX_REFERENCE_BYTES } from "@vmctl/core";

/** The request field of the image RPCs that carries the reference: what their errors name. */
export const REFERENCE_FIELD = "reference";

/** Longest reference, in UTF-8 bytes: core's limit (an archive path may be as long as PATH_MAX). */
export const MAX_IMAGE_REFERENCE_BYTES = MAX_REFERENCE_BYTES;

/** `reference` if it may go to the image store; else a ValidationError naming `field` (default `reference`). */
export function checkImageReference(reference: string | null | undefined, field: string = REFERENCE_FIELD): string {
  return checkReference(reference, field);
}
