// vmctl.v1's image messages and progress ↔ plain objects, each mapping once and both
// ways: the server encodes what its image store answers, the client decodes it.
import type { ImageLayer, ImageRecord, ImageRunConfig, ProgressEvent } from "@vmctl/core/contract";
import type { vmctl } from "../gen/protos.js";
import { countOf, dateOf, toNumber, unixMsOf } from "./wire-numbers.js";

/** The image fields that go on the wire, as the store holds them (ImageRecord of @vmctl/core has these and more). */
export type ImageSource = Pick<ImageRecord, "digest" | "references" | "configDigest" | "layers" | "diskBytes" | "config" | "created" | "pulledAt" | "usedBy">;

/** An image in the daemon's store, as a client sees it. */
export interface Image {
  /** The manifest's digest (`sha256:…`): the image's identity. */
  readonly digest: string;
  /** Every reference naming it; empty when dangling. */
  readonly references: readonly string[];
  readonly configDigest: string;
  readonly config: ImageRunConfig;
  readonly layers: readonly ImageLayer[];
  /** Size of its read-only base disk. */
  readonly diskBytes: number;
  readonly pulledAt: Date;
  /** Ids of the services using it. */
  readonly usedBy: readonly string[];
  /** When the image says it was built. */
  readonly created?: Date;
}

export interface RemovedImage {
  readonly untagged: readonly string[];
  readonly deleted: readonly string[];
}

export interface PrunedImages {
  readonly removed: readonly string[];
  readonly reclaimedBytes: number;
}

/** A progress event on the wire; counts that are not whole, finite and non-negative are left out. */
export function progressToProto(e: ProgressEvent): vmctl.v1.IProgress {
  const current = countOf(e.current);
  const total = countOf(e.total);
  return {
    phase: e.phase,
    item: e.item ?? "",
    ...(current === undefined ? {} : { current }),
    ...(total === undefined ? {} : { total }),
    message: e.message ?? "",
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

/** An image on the wire; a creation time that is not an RFC 3339 time is left unset. */
export function imageToProto(image: ImageSource): vmctl.v1.IImage {
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
    pulledAt: dateOf(i.pulledAtUnixMs),
    usedBy: [...(i.usedBy ?? [])],
    ...(i.createdUnixMs == null ? {} : { created: dateOf(i.createdUnixMs) }),
  };
}

export function removedToProto(r: RemovedImage): vmctl.v1.IRemoveImageResponse {
  return { untagged: [...r.untagged], deleted: [...r.deleted] };
}

export function removedFromProto(r: vmctl.v1.IRemoveImageResponse): RemovedImage {
  return { untagged: [...(r.untagged ?? [])], deleted: [...(r.deleted ?? [])] };
}

export function prunedToProto(p: PrunedImages): vmctl.v1.IPruneImagesResponse {
  return { removed: [...p.removed], reclaimedBytes: p.reclaimedBytes };
}

export function prunedFromProto(p: vmctl.v1.IPruneImagesResponse): PrunedImages {
  return { removed: [...(p.removed ?? [])], reclaimedBytes: toNumber(p.reclaimedBytes) };
}
