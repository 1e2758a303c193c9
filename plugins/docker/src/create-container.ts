// Making a service's container, so that a crash anywhere leaves something adopt() and
// destroy() can follow: the ledger entry is intended by name before the create and
// completed with the id after it; a create that failed may still have made the container
// (a 409 from an interrupted earlier prepare, a connection lost after the daemon acted),
// so the name is looked up before the entry is released.
import { VmctlError, type ErrorDetails, type TargetContext } from "@vmctl/core/contract";
import { containerConfig } from "./config.js";
import { httpStatusOf, type DockerEngine } from "./engine.js";
import type { ResolvedImage } from "./images.js";
import { CONTAINER_KIND, containerResource, isServiceContainer, labelsFor } from "./naming.js";
import type { DockerSpec } from "./spec.js";

export interface CreateRequest {
  readonly serviceId: string;
  readonly spec: DockerSpec;
  readonly ctx: TargetContext;
  readonly engine: DockerEngine;
  readonly name: string;
  readonly image: ResolvedImage;
  readonly details: ErrorDetails;
}

/** Creates the service's container (or takes the one an earlier attempt made); returns its id. */
export async function createContainer(r: CreateRequest): Promise<string> {
  const network = r.spec.network;
  if (network !== undefined && network !== "none" && !(await r.engine.networkExists(network))) {
    throw new VmctlError("FAILED_PRECONDITION", `spec.network: Docker network ${network} does not exist on ${r.engine.socket}`, {
      details: { ...r.details, field: "spec.network" },
    });
  }
  const resource = { socket: r.engine.socket, name: r.name };
  r.ctx.resources.intend(containerResource(resource));
  const config = containerConfig(r.spec, { image: r.image.id, labels: labelsFor(r.serviceId, r.ctx.ownerLabels) });
  let id: string;
  try {
    id = await r.engine.create(r.name, config);
  } catch (err) {
    id = await afterFailedCreate(r, err);
  }
  r.ctx.resources.intend(containerResource({ ...resource, id }));
  r.ctx.log.debug("docker container created", { container: r.name, id, image: r.image.id });
  return id;
}

/** Ours by its labels: take it. Nothing there: release the ledger entry, nothing is half-made. */
async function afterFailedCreate(r: CreateRequest, err: unknown): Promise<string> {
  const e = r.engine.error(err, `create container ${r.name}`, r.details);
  const existing = await r.engine.inspect(r.name).catch(() => "unknown" as const);
  if (existing === "unknown") throw e; // the daemon is gone: the ledger entry stays, adopt decides later
  if (existing && isServiceContainer(existing.labels, r.serviceId, r.ctx.ownerLabels)) return existing.id;
  r.ctx.resources.release(CONTAINER_KIND, r.name);
  if (existing) {
    throw new VmctlError("ALREADY_EXISTS", `a container named ${r.name} exists on ${r.engine.socket} and is not this service's`, {
      cause: err,
      details: r.details,
    });
  }
  if (httpStatusOf(err) === 400 || httpStatusOf(err) === 500) {
    throw new VmctlError("FAILED_PRECONDITION", `docker refused to create ${r.serviceId}: ${e.message}`, { cause: err, details: r.details });
  }
  throw e;
}
