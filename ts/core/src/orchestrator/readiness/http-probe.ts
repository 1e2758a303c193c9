// Ready when GET url answers with the expected status (any 2xx by default).
import type { ReadinessProbe } from "./readiness-probe.js";

export class HttpProbe implements ReadinessProbe {
  readonly description: string;

  constructor(
    readonly url: string,
    readonly expectStatus?: number,
  ) {
    this.description = `http ${url}`;
  }

  async probe(signal: AbortSignal): Promise<void> {
    const response = await fetch(this.url, { signal, redirect: "manual" });
    await response.body?.cancel();
    const ok = this.expectStatus === undefined ? response.status >= 200 && response.status < 300 : response.status === this.expectStatus;
    if (!ok) throw new Error(`status ${response.status}, want ${this.expectStatus ?? "2xx"}`);
  }
}
