// What the suite knows exists: every service a CreateService acknowledged (OK), less
// every one a DeleteService acknowledged. After each case the daemon must list exactly
// these, with exactly these service directories on disk — a create that failed or a
// delete that was refused leaves nothing half-made.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { vmctl } from "@vmctl/proto";
import type { RawOutcome } from "../helpers/raw-client.js";
import type { HostileRequest } from "./requests.js";

export class ServiceModel {
  /** id → name of every acknowledged, undeleted service. */
  readonly #services = new Map<string, string>();

  constructor(private readonly stateDir: string) {}

  get size(): number {
    return this.#services.size;
  }

  ids(): string[] {
    return [...this.#services.keys()].sort();
  }

  /** Takes in what an answered request did. */
  record(request: HostileRequest, outcome: RawOutcome): void {
    if (outcome.code !== grpc.status.OK) return;
    if (request.method === "createService") {
      const service = vmctl.v1.Service.decode(outcome.responses[0] ?? Buffer.alloc(0));
      this.#services.set(service.id, service.name);
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
}
