// What the suite knows exists: every service a CreateService or CreateServiceWithProgress
// acknowledged (OK), less every one a DeleteService acknowledged. After each case the
// daemon must list exactly these, with exactly these service directories on disk — a
// create that failed or a delete that was refused leaves nothing half-made. Images: none,
// ever (nothing the suite sends can be pulled), so the daemon lists none and its image
// store holds no file: a pull that fails before it fetches anything leaves nothing behind.
// Networks: every one a CreateNetwork acknowledged, less every one a DeleteNetwork did; the
// daemon lists exactly these, and its namespace holds exactly their bridges.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { vmctl } from "@vmctl/proto";
import type { RawOutcome } from "../helpers/raw-client.js";
import { acknowledgedService } from "./accepted.js";
import type { HostileRequest, MethodName } from "./requests.js";

/** The methods that change which services exist: a batch sends them one after another, in order. */
export const MODEL_METHODS: ReadonlySet<MethodName> = new Set<MethodName>(["createService", "createServiceWithProgress", "deleteService", "createNetwork", "deleteNetwork"]);

export class ServiceModel {
  /** id → name of every acknowledged, undeleted service. */
  readonly #services = new Map<string, string>();
  /** name → subnet of every acknowledged, undeleted network. */
  readonly #networks = new Map<string, string>();

  constructor(private readonly stateDir: string) {}

  get size(): number {
    return this.#services.size;
  }

  ids(): string[] {
    return [...this.#services.keys()].sort();
  }

  /** Names of the acknowledged networks. */
  networks(): string[] {
    return [...this.#networks.keys()].sort();
  }

  /** Subnets of the acknowledged networks but `except`. */
  subnets(except?: string): string[] {
    return [...this.#networks].filter(([name]) => name !== except).map(([, subnet]) => subnet);
  }

  forgetNetwork(name: string): void {
    this.#networks.delete(name);
  }

  /** Takes in what an answered request did. */
  record(request: HostileRequest, outcome: RawOutcome): void {
    if (outcome.code !== grpc.status.OK) return;
    if (request.method === "createService" || request.method === "createServiceWithProgress") {
      const service = acknowledgedService(request, outcome);
      this.#services.set(service.id, service.name);
    } else if (request.method === "createNetwork") {
      const network = vmctl.v1.Network.decode(outcome.responses.at(-1) ?? Buffer.alloc(0));
      this.#networks.set(network.name, network.subnet);
    } else if (request.method === "deleteNetwork") {
      this.#networks.delete(vmctl.v1.NetworkRef.decode(request.bytes).name);
    } else if (request.method === "deleteService") {
      // The request decoded (the daemon said OK), so it decodes here too.
      this.forget(vmctl.v1.DeleteServiceRequest.decode(request.bytes).id);
    }
  }

  /** A service deleted by reference (its id, else its name). */
  forget(ref: string): void {
    if (this.#services.delete(ref)) return;
    for (const [id, name] of this.#services) if (name === ref) this.#services.delete(id);
  }

  /** Service directories under the state dir. */
  serviceDirs(): string[] {
    try {
      return readdirSync(join(this.stateDir, "services")).sort();
    } catch {
      return [];
    }
  }

  /** Files (not directories) in the image store, `<stateDir>/images`: blobs, disks, scratch. */
  imageFiles(): string[] {
    try {
      return readdirSync(join(this.stateDir, "images"), { recursive: true, withFileTypes: true })
        .filter((entry) => !entry.isDirectory())
        .map((entry) => join(entry.parentPath ?? entry.path, entry.name))
        .sort();
    } catch {
      return [];
    }
  }
}
