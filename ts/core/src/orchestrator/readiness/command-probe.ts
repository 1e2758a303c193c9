// Ready when a host command exits 0.
import { spawn } from "node:child_process";
import type { ReadinessProbe } from "./readiness-probe.js";

export class CommandProbe implements ReadinessProbe {
  readonly description: string;

  constructor(readonly args: readonly string[]) {
    this.description = `command ${args.join(" ")}`;
  }

  probe(signal: AbortSignal): Promise<void> {
    const [command, ...rest] = this.args;
    return new Promise((resolve, reject) => {
      const child = spawn(command as string, rest, { stdio: "ignore", signal });
      child.once("error", reject);
      child.once("exit", (code, sig) => {
        if (code === 0) resolve();
        else reject(new Error(sig ? `killed by ${sig}` : `exit code ${code}`));
      });
    });
  }
}
