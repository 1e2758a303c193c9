// A readiness probe makes one attempt: resolves when the service is ready, throws why
// it is not. `probeFor` picks the probe for a check (testcontainers' wait strategies).
import type { ReadinessCheck } from "../api.js";
import { CommandProbe } from "./command-probe.js";
import { HttpProbe } from "./http-probe.js";
import { TcpProbe } from "./tcp-probe.js";

export interface ReadinessProbe {
  /** For messages: "tcp 127.0.0.1:5432". */
  readonly description: string;
  /** One attempt; must give up when `signal` aborts. */
  probe(signal: AbortSignal): Promise<void>;
}

/** `defaultHost` is used by TCP checks without a host (the service's first address). */
export function probeFor(check: ReadinessCheck, defaultHost = "127.0.0.1"): ReadinessProbe {
  switch (check.kind) {
    case "tcp":
      return new TcpProbe(check.host ?? defaultHost, check.port);
    case "http":
      return new HttpProbe(check.url, check.expectStatus);
    case "command":
      return new CommandProbe(check.args);
  }
}
