// The docker target: validates specs and makes controllers over one Docker daemon.
import { encodeLabel, type Capabilities, type ControllerRecord, type Logger, type OwnedThing, type RunInput, type ServiceFactory, type TargetContext } from "@vmctl/core/contract";
import { mountsFromRun } from "@vmctl/core/target-kit";
import { DockerController, type DockerRecord } from "./controller.js";
import { DockerEngine } from "./engine.js";
import { ImageResolver } from "./images.js";
import { CONTAINER_KIND, OWNER_LABEL, SERVICE_LABEL, containerNameFor, isServiceContainer, type ContainerResourceData } from "./naming.js";
import { ownedContainers, removeOwnedContainer } from "./owned.js";
import { parseDockerSpec, type DockerSpec } from "./spec.js";

export const DOCKER_CAPABILITIES: Capabilities = {
  exec: true,
  pause: true,
  // With spec.network naming a Docker network; the default "none" has loopback only.
  network: true,
  volumes: true,
  logsFollow: true,
  // copyOut(): Docker's archive of a path, while the container runs and after its exit.
  copy: true,
};

export class DockerFactory implements ServiceFactory<DockerSpec> {
  readonly target = "docker";
  readonly capabilities = DOCKER_CAPABILITIES;
  readonly engine: DockerEngine;
  readonly #images: ImageResolver;
  readonly #log: Logger;

  constructor(socket: string, log: Logger) {
    this.engine = new DockerEngine(socket);
    this.#images = new ImageResolver(this.engine);
    this.#log = log;
  }

  validate(spec: unknown): DockerSpec {
    return parseDockerSpec(spec);
  }

  /**
   * `vmctl run --target docker [-v SRC:DST[:ro]] IMAGE -- CMD...`: IMAGE is a local image
   * reference, or an absolute path of a `docker save` archive; the command becomes args,
   * the -v mounts bind mounts after the spec's own (the kit's mountsFromRun, as oci and lxc).
   * Explicit spec fields win. The run's copyOut needs nothing: a container's files stay
   * until destroy.
   */
  specFromRun(input: RunInput): unknown {
    const env = { ...(input.spec.env as Record<string, string> | undefined), ...input.env };
    const image = input.image === undefined ? {} : input.image.startsWith("/") ? { imageArchive: input.image } : { image: input.image };
    return {
      ...image,
      ...(input.command.length > 0 ? { args: input.command } : {}),
      ...input.spec,
      ...(Object.keys(env).length > 0 ? { env } : {}),
      ...mountsFromRun(input),
    };
  }

  /**
   * Makes nothing, but checks what can be checked cheaply now, so `vmctl run` fails at
   * once with a clear error: the daemon answers (UNAVAILABLE naming the socket), the
   * image exists (NOT_FOUND naming spec.image).
   */
  async create(id: string, spec: DockerSpec, ctx: TargetContext): Promise<DockerController> {
    const details = { serviceId: id, target: "docker" };
    await this.engine.ping(details);
    const image = spec.image !== undefined ? await this.#images.local(spec.image, details) : undefined;
    return new DockerController({
      id,
      spec,
      ctx,
      engine: this.engine,
      images: this.#images,
      name: containerNameFor(id, ctx.ownerLabels),
      ...(image ? { image } : {}),
    });
  }

  /**
   * Finds the service's container by the id in its record or ledger, else by name, else
   * by its labels — running, paused or exited. A container recorded but gone gives a
   * controller that reports "lost" and can be destroyed; nothing recorded and nothing
   * found gives undefined.
   */
  async adopt(record: ControllerRecord, ctx: TargetContext): Promise<DockerController | undefined> {
    const spec = record.spec as DockerSpec;
    const data = isDockerRecord(record.data) ? record.data : undefined;
    const name = containerNameFor(record.id, ctx.ownerLabels);
    const entries = [...record.resources, ...ctx.resources.list()].filter((r) => r.kind === CONTAINER_KIND);
    const recordedId = data?.containerId ?? entries.map((r) => (r.data as ContainerResourceData | undefined)?.id).find((i) => typeof i === "string");
    await this.engine.ping({ serviceId: record.id, target: "docker" });

    let info = recordedId !== undefined ? await this.engine.inspect(recordedId) : undefined;
    if (!info) {
      const byName = await this.engine.inspect(name);
      if (byName && isServiceContainer(byName.labels, record.id, ctx.ownerLabels)) info = byName;
    }
    if (!info) {
      const labels = [encodeLabel(SERVICE_LABEL, record.id), ...(ctx.ownerLabels[OWNER_LABEL] ? [encodeLabel(OWNER_LABEL, ctx.ownerLabels[OWNER_LABEL])] : [])];
      const [found] = await this.engine.containersLabelled(labels);
      if (found !== undefined) info = await this.engine.inspect(found);
    }
    if (!info && entries.length === 0 && recordedId === undefined) return undefined;
    const containerId = info?.id ?? recordedId;
    this.#log.debug("docker adopting", { serviceId: record.id, container: name, containerId, found: info !== undefined });
    const image = data?.image ? { id: data.image.id, source: data.image.source, loadedTags: data.image.loadedTags } : undefined;
    return new DockerController({
      id: record.id,
      spec,
      ctx,
      engine: this.engine,
      images: this.#images,
      name,
      ...(containerId !== undefined ? { containerId } : {}),
      ...(image ? { image } : {}),
    });
  }

  /** Containers labelled with `owner` (owned.ts). */
  owned(owner: string): Promise<OwnedThing[]> {
    return ownedContainers(this.engine, owner);
  }

  removeOwned(thing: OwnedThing): Promise<void> {
    return removeOwnedContainer(this.engine, thing);
  }

  async close(): Promise<void> {
    this.engine.close();
  }
}

function isDockerRecord(value: unknown): value is DockerRecord {
  const r = value as Partial<DockerRecord> | null | undefined;
  return typeof r === "object" && r !== null && typeof r.containerName === "string" && (r.containerId === null || typeof r.containerId === "string");
}

