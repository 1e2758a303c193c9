// The host's connection to one guest agent (proto/agent/v1/agent.proto): gRPC over a unix
// socket. In a VM that socket is a relay to the guest's vsock port (the VMM's hybrid
// vsock); in tests it is the agent's own (`vmctl-agent --listen unix:PATH`). Every failure
// is a VmctlError: a gRPC status read by @vmctl/proto's errorFromStatus (through the VMM
// client's fromGrpc, the one rule for both), anything else by VmctlError.from.
import type { Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { VmctlError } from "@vmctl/core/contract";
import { AgentClient, type UnaryMethod } from "@vmctl/proto";
import { fromGrpc, LOCAL_SOCKET_CHANNEL_OPTIONS } from "@vmctl/vmm-client";
import { agentInfoFromProto, execStartToProto, shutdownActionToProto } from "./convert.js";
import { copyIn, copyOut } from "./copy.js";
import { ExecSession } from "./exec-session.js";
import type { AgentCallOptions, AgentInfo, CopyInResult, ExecStart, ShutdownAction } from "./types.js";

const DEFAULT_TIMEOUT_MS = 30_000;

/** How long one readiness probe may take, and the pause between two. */
const PROBE_TIMEOUT_MS = 1000;
const PROBE_INTERVAL_MS = 20;

/** A client for the agent behind `socketPath`. Connecting is lazy: the first call does it. */
export class AgentConnection {
  readonly #client: AgentClient;

  constructor(readonly socketPath: string) {
    this.#client = new AgentClient(`unix://${socketPath}`, grpc.credentials.createInsecure(), LOCAL_SOCKET_CHANNEL_OPTIONS);
  }

  /** What the agent is. UNAVAILABLE when nothing answers on the socket. */
  async info(options?: AgentCallOptions): Promise<AgentInfo> {
    return agentInfoFromProto((await this.#unary(this.#client.getInfo, {}, options)) ?? {});
  }

  /**
   * Asks until the agent answers (it starts with the VM): its info, or UNAVAILABLE once
   * `timeoutMs` has passed without an answer, with the last failure as the cause. Any
   * other failure (the agent answered, with an error) is thrown at once.
   */
  async waitReady(timeoutMs: number): Promise<AgentInfo> {
    const deadline = Date.now() + timeoutMs;
    let last: VmctlError | undefined;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        return await this.info({ timeoutMs: Math.min(left, PROBE_TIMEOUT_MS) });
      } catch (err) {
        last = VmctlError.from(err);
        if (last.code !== "UNAVAILABLE" && last.code !== "DEADLINE_EXCEEDED") throw last;
      }
      await delay(Math.max(0, Math.min(PROBE_INTERVAL_MS, deadline - Date.now())));
    }
    const why = last ? `: ${last.message}` : "";
    throw new VmctlError("UNAVAILABLE", `guest agent at ${this.socketPath}: no answer within ${timeoutMs} ms${why}`, { cause: last });
  }

  /** Starts a command; resolves once the agent has started it (or found it cannot run). */
  exec(start: ExecStart): Promise<ExecSession> {
    return ExecSession.open(this.#client.exec(), execStartToProto(start));
  }

  /** Sends a signal to a process the agent started, by pid, or to the workload. */
  async signal(target: number | "workload", signal: string, options?: AgentCallOptions): Promise<void> {
    const request = target === "workload" ? { workload: true, signal } : { pid: target, signal };
    await this.#unary(this.#client.signal, request, options);
  }

  /** Unpacks a tar stream into `destination` in the guest (see ./copy.ts). */
  copyIn(destination: string, tar: AsyncIterable<Uint8Array>): Promise<CopyInResult> {
    return copyIn(this.#client, destination, tar);
  }

  /** The tar stream of a file or directory of the guest (see ./copy.ts). */
  copyOut(path: string): Readable {
    return copyOut(this.#client, path);
  }

  /** Syncs and powers off (or reboots) the guest; the agent answers before it goes down. */
  async shutdown(action: ShutdownAction = "power-off", options?: AgentCallOptions): Promise<void> {
    await this.#unary(this.#client.shutdown, { action: shutdownActionToProto(action) }, options);
  }

  /** Closes the channel; calls in flight fail with CANCELLED. */
  close(): void {
    this.#client.close();
  }

  #unary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, options?: AgentCallOptions): Promise<Res | undefined> {
    const deadline = Date.now() + (options?.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    return new Promise((resolve, reject) => {
      method.call(this.#client, request, new grpc.Metadata(), { deadline }, (err, response) => (err ? reject(fromGrpc(err)) : resolve(response)));
    });
  }
}
