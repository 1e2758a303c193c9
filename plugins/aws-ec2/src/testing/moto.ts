// A moto server (the AWS API stand-in from PyPI, installed by scripts/setup) on a free
// loopback port, for one test file. Throws — never skips — when moto is missing.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** Credentials moto accepts (when it checks none); tests put them in the SDK's env chain. */
export const MOTO_CREDENTIALS = { accessKeyId: "testing", secretAccessKey: "testing" } as const;
export const MOTO_REGION = "us-east-1";

export function motoServerBinary(): string {
  const venv = process.env.VMCTL_MOTO_VENV ?? "/var/cache/vmctl/moto";
  const binary = join(venv, "bin", "moto_server");
  if (!existsSync(binary)) throw new Error(`moto_server not found at ${binary}: run scripts/setup (npm run setup)`);
  return binary;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface MotoServer {
  readonly endpoint: string;
  /** POST /moto-api/reset-auth: from now on, `count` requests pass without credential checks (Infinity: all). */
  setAuthFreeRequests(count: number): Promise<void>;
  stop(): Promise<void>;
}

export interface MotoOptions {
  /** Check access keys from the first request on (INITIAL_NO_AUTH_ACTION_COUNT=0). */
  readonly enforceAuth?: boolean;
}

export async function startMoto(options: MotoOptions = {}): Promise<MotoServer> {
  const binary = motoServerBinary();
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(binary, ["-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...(options.enforceAuth ? { INITIAL_NO_AUTH_ACTION_COUNT: "0" } : {}) },
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${stderr}`);
    try {
      const r = await fetch(`${endpoint}/moto-api/`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`moto_server did not answer on ${endpoint} within 20 s: ${stderr}`);
    }
    await sleep(50);
  }
  return {
    endpoint,
    async setAuthFreeRequests(count: number) {
      const r = await fetch(`${endpoint}/moto-api/reset-auth`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: Number.isFinite(count) ? String(count) : "inf",
      });
      if (!r.ok) throw new Error(`moto reset-auth failed: HTTP ${r.status}`);
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 2000);
      await exited;
      clearTimeout(killer);
    },
  };
}
