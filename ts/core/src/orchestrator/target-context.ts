// The per-service TargetContext: a private directory, owner labels, the durable ledger,
// and the image store seen as this service.
import { join } from "node:path";
import type { Logger, ServiceNetwork, TargetContext } from "../contract/target.js";
import type { ImageStore } from "../images/image-store.js";
import { childLogger } from "../log/logger.js";
import type { StateStore } from "../state/state-store.js";

import { OWNER_LABEL, SERVICE_LABEL } from "../contract/defaults.js";

export { OWNER_LABEL, SERVICE_LABEL };

/** Where each service's private directory lives: `<stateDir>/services/<id>`. */
export function servicesDir(stateDir: string): string {
  return join(stateDir, "services");
}

/** Where the image store lives: `<stateDir>/images`. */
export function imagesDir(stateDir: string): string {
  return join(stateDir, "images");
}

/** `network`: the service's, when it has one and its target claims `network`. */
export function serviceContext(store: StateStore, images: ImageStore, stateDir: string, id: string, target: string, log: Logger, network?: ServiceNetwork): TargetContext {
  return {
    ...(network === undefined ? {} : { network }),
    serviceId: id,
    serviceDir: join(servicesDir(stateDir), id),
    ownerLabels: { [OWNER_LABEL]: store.instanceId, [SERVICE_LABEL]: id },
    resources: store.ledger(id),
    log: childLogger(log, { service: id, target }),
    images: images.access(id),
  };
}
