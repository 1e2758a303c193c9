// Ready when a TCP connection to host:port succeeds.
import { connect } from "node:net";
import type { ReadinessProbe } from "./readiness-probe.js";

export class TcpProbe implements ReadinessProbe {
  readonly description: string;

  constructor(
    readonly host: string,
    readonly port: number,
  ) {
    this.description = `tcp ${host.includes(":") ? `[${host}]` : host}:${port}`;
  }

  probe(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.host, port: this.port });
      const onAbort = (): void => finish(new Error("attempt timed out"));
      const finish = (err?: Error): void => {
        signal.removeEventListener("abort", onAbort);
        socket.destroy();
        if (err) reject(err);
        else resolve();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      socket.once("connect", () => finish());
      socket.once("error", (err) => finish(err));
    });
  }
}
