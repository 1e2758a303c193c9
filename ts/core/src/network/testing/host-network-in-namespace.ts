// HostNetworkOps run inside a network namespace a test made: a child Node process started
// there (`ip netns exec`) runs createHostNetwork() and this side forwards each call to it.
// The rules and links it makes are that namespace's only, and the caller sees exactly the
// interface the orchestrator codes against, errors included (as VmctlErrors).
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { VmctlError, type ErrorCode, type ErrorDetails } from "../../errors.js";
import type { HostNetworkInventory, HostNetworkOps, NetworkAttachment, NetworkDefinition, ServiceRules } from "../types.js";
import { NetNamespace, waitForLine } from "./netns.js";

const CHILD = fileURLToPath(new URL("./host-network-child.ts", import.meta.url));

interface Reply {
  id: number;
  result?: unknown;
  ms?: number;
  error?: { code: ErrorCode; message: string; details: ErrorDetails };
}

export class HostNetworkInNamespace implements HostNetworkOps {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (r: Reply) => void }>();
  #next = 0;
  /** How long the last call took inside the child, in milliseconds (no IPC). */
  lastCallMs = 0;

  private constructor(child: ChildProcess) {
    this.#child = child;
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (!line.startsWith('{"id"')) return;
      const reply = JSON.parse(line) as Reply;
      this.#pending.get(reply.id)?.resolve(reply);
      this.#pending.delete(reply.id);
    });
  }

  /** Starts the child in `ns` (with tsx, so it runs the sources). */
  static async start(ns: NetNamespace): Promise<HostNetworkInNamespace> {
    const child = ns.spawn(process.execPath, ["--import=tsx", CHILD]);
    await waitForLine(child, JSON.stringify({ ready: true }), 30_000);
    return new HostNetworkInNamespace(child);
  }

  async #call<T>(op: keyof HostNetworkOps, ...args: unknown[]): Promise<T> {
    const id = ++this.#next;
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.#pending.set(id, { resolve });
      this.#child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`, (err) => err && reject(err));
    });
    this.lastCallMs = reply.ms ?? 0;
    if (reply.error !== undefined) throw new VmctlError(reply.error.code, reply.error.message, { details: reply.error.details });
    return reply.result as T;
  }

  ensureNetwork(network: NetworkDefinition): Promise<void> {
    return this.#call("ensureNetwork", network);
  }
  removeNetwork(network: NetworkDefinition): Promise<void> {
    return this.#call("removeNetwork", network);
  }
  applyService(rules: ServiceRules): Promise<void> {
    return this.#call("applyService", rules);
  }
  removeService(serviceId: string): Promise<void> {
    return this.#call("removeService", serviceId);
  }
  createTap(attachment: NetworkAttachment): Promise<void> {
    return this.#call("createTap", attachment);
  }
  deleteDevice(name: string): Promise<boolean> {
    return this.#call("deleteDevice", name);
  }
  inventory(): Promise<HostNetworkInventory> {
    return this.#call("inventory");
  }
  hostSubnets(): Promise<readonly string[]> {
    return this.#call("hostSubnets");
  }

  /** Ends the child (the namespace's `delete` also would). */
  close(): void {
    this.#child.stdin?.end();
  }
}
