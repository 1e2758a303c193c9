// An image VM's workload, run by the guest agent (vmctl-agent, PID 1 from its initramfs)
// and reached over the VM's vsock: a local unix socket relayed to the agent's port
// (relayVsock: grpc-js dials only unix sockets), an AgentConnection over it, the workload
// as one Exec session whose stdout and stderr are appended to two files in the service
// dir as they come (the service's logs), and its exit settled as the service's. Then the
// VM must end: the agent syncs and powers off; a VM still running a few seconds later
// (a kernel without a power-off path halts instead) is forced off through the VMM.
//
// The workspace: the spec's mounts are copied in before the workload starts
// (workspace-in.ts). With copyOut paths the workload runs with keepRunning, and when it
// ends those paths are kept in the service dir (workspace-out.ts) before the VM is told
// to power off and before the exit is settled, so whoever sees the exit can copy out.
//
// Across an orchestrator restart the relay and the connection are remade (exec, stop) and
// the workload attached to again: the agent holds its output while no orchestrator listens
// (the workload waits once its pipes are full), so the logs go on where they stopped and
// the exit is the workload's own.
import { createWriteStream, rmSync, type WriteStream } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { VmctlError, type ExecProcess, type ExecRequest, type ExitInfo, type ResourceLedger, type TargetContext } from "@vmctl/core/contract";
import { connectVsock, relayVsock, type VmmClient, type VsockRelay } from "@vmctl/vmm-client";
import { AgentConnection, type ExecSession } from "./agent/index.js";
import { errorDetails } from "./errors.js";
import { startExec } from "./exec-process.js";
import { ledger, type ServiceLayout } from "./layout.js";
import type { VmAgent } from "./vm-config.js";
import { endVm, POWER_OFF_GRACE_MS } from "./vm-power-off.js";
import { RPC } from "./vmm-connection.js";
import { consoleExcerpt, workloadExit } from "./workload-exit.js";
import { copyMountsIn } from "./workspace-in.js";
import { keepCopyOutPaths, keptCopy } from "./workspace-out.js";

/** How long a booting VM's agent gets to answer (a Linux boot; minutes under nesting's load). */
export const AGENT_READY_TIMEOUT_MS = 120_000;

/** What the workload needs of its controller. */
export interface WorkloadHost {
  readonly id: string;
  readonly ctx: TargetContext;
  readonly layout: ServiceLayout;
  settle(exit: ExitInfo): ExitInfo;
  exitKnown(): boolean;
  stopRequested(): boolean;
  /** The VMM's API client while connected. */
  vmmClient(): VmmClient | undefined;
}

export class AgentWorkload {
  #relay: VsockRelay | undefined;
  #agent: AgentConnection | undefined;
  /** The workload's session (its call to the agent) while followed. */
  #session: ExecSession | undefined;
  /** The workload's output being written to its files, then its exit settled. */
  #pump: Promise<void> | undefined;
  #pumping = false;
  /** The workload's exit has come (its copyOut paths may still be being kept). */
  #workloadEnded = false;

  constructor(private readonly host: WorkloadHost) {}

  /** Output is still being written to the log files. */
  get pumping(): boolean {
    return this.#pumping;
  }

  /** The files the workload's output goes to, as the service's log streams. */
  get logFiles(): { stream: "stdout" | "stderr"; path: string }[] {
    const l = this.host.layout;
    return [
      { stream: "stdout", path: l.stdoutFile },
      { stream: "stderr", path: l.stderrFile },
    ];
  }

  /**
   * After the VM started: the relay, the agent's first answer (UNAVAILABLE with the
   * console's last lines when it never comes, or FAILED_PRECONDITION when the VM ended
   * first), then the workload started (startWorkload).
   */
  async run(agent: VmAgent, timeoutMs = AGENT_READY_TIMEOUT_MS): Promise<void> {
    const conn = await this.connect(agent);
    await this.#waitForAgent(conn, agent, timeoutMs);
    await this.startWorkload(conn, agent);
  }

  /**
   * Once the agent answers: the mounts copied in (a failure names the mount and fails
   * the start), then the workload started — kept running after it ends when there are
   * copyOut paths to keep — and followed in the background.
   */
  async startWorkload(conn: AgentConnection, agent: VmAgent): Promise<void> {
    this.#agent = conn;
    await copyMountsIn(conn, agent.workspace?.mounts ?? [], this.host.id, this.host.ctx.log);
    const w = agent.workload;
    const session = await conn.exec({
      args: w.args,
      imageEnv: w.imageEnv,
      env: w.env,
      ...(w.cwd === undefined ? {} : { cwd: w.cwd }),
      ...(w.user === undefined ? {} : { user: w.user }),
      workload: true,
      keepRunning: (agent.workspace?.copyOut.length ?? 0) > 0,
    });
    this.#session = session;
    this.#pump = this.#follow(session, agent.workspace?.copyOut ?? []);
  }

  /**
   * adopt(): follows the running workload again, from where the agent held its output,
   * through to its exit. False when there is none to attach to (its session is over, or
   * the agent does not answer): the exit is then learned from the VM's end.
   */
  async attach(conn: AgentConnection, agent: VmAgent): Promise<boolean> {
    let session: ExecSession;
    try {
      session = await conn.exec({ args: [], workload: true, attach: true });
    } catch (err) {
      this.host.ctx.log.warn("could not attach to the workload: its exit will be learned from the VM's end", { serviceId: this.host.id, error: String(err) });
      return false;
    }
    this.#session = session;
    this.#pump = this.#follow(session, agent.workspace?.copyOut ?? []);
    return true;
  }

  /** The relay and a connection to the agent (adopt: the VM already runs). */
  async connect(agent: VmAgent): Promise<AgentConnection> {
    const l = this.host.layout;
    this.host.ctx.resources.intend(ledger.socket(l.relayPath));
    this.#relay ??= await relayVsock(l.relayPath, agent.vsock.udsPath, agent.port);
    this.#agent ??= new AgentConnection(l.relayPath);
    return this.#agent;
  }

  /** stop(): SIGTERM to the workload; true once it has ended (its exit settled) within `graceMs`. */
  async terminate(graceMs: number): Promise<boolean> {
    const agent = this.#agent;
    if (!agent) return false;
    // Ended already, its copyOut paths being kept: nothing to signal, the exit comes after them.
    if (!this.#workloadEnded) {
      try {
        await agent.signal("workload", "SIGTERM", { timeoutMs: Math.min(graceMs, 5000) || 1000 });
      } catch (err) {
        this.host.ctx.log.warn("could not signal the workload", { error: String(err) });
        return false;
      }
    }
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && !this.host.exitKnown()) await sleep(50);
    return this.host.exitKnown();
  }

  /** The contract's exec: a further command, with the workload's env, cwd and user; its output streamed (exec-process.ts). */
  async exec(request: ExecRequest, vmAgent: VmAgent | undefined): Promise<ExecProcess> {
    const details = errorDetails(this.host.id);
    if (request.args.length === 0) throw new VmctlError("INVALID_ARGUMENT", `args: exec into ${this.host.id} needs a command`, { details: { ...details, field: "args" } });
    if (!vmAgent) throw new VmctlError("FAILED_PRECONDITION", `${this.host.id} has no guest agent: exec needs an image VM`, { details });
    if (this.host.exitKnown()) throw new VmctlError("FAILED_PRECONDITION", `${this.host.id} has exited: exec needs it running`, { details });
    return startExec(await this.#answeringAgent("exec"), request, vmAgent.workload);
  }

  /**
   * The contract's copyOut: a tar stream of `path` from the running VM's agent; after the
   * exit, what was kept of the spec's copyOut paths (workspace-out.ts).
   */
  async *copyOut(path: string, vmAgent: VmAgent | undefined): AsyncGenerator<Uint8Array> {
    if (!vmAgent) throw new VmctlError("FAILED_PRECONDITION", `${this.host.id} has no guest agent: copying files out needs an image VM`, { details: errorDetails(this.host.id) });
    if (this.host.exitKnown()) {
      yield* keptCopy(this.host.layout, path, vmAgent.workspace?.copyOut ?? [], this.host.id);
      return;
    }
    for await (const chunk of (await this.#answeringAgent("copy files out")).copyOut(path)) yield chunk as Buffer;
  }

  /** The agent's connection, unless the VM is paused (its agent cannot answer: the call would hang until resume()). */
  async #answeringAgent(what: string): Promise<AgentConnection> {
    const details = errorDetails(this.host.id);
    const vm = await this.host.vmmClient()?.getState(RPC).catch(() => undefined);
    if (vm?.phase === "paused") throw new VmctlError("FAILED_PRECONDITION", `${this.host.id} is paused: resume it to ${what}`, { details });
    const agent = this.#agent;
    if (!agent) throw new VmctlError("FAILED_PRECONDITION", `${this.host.id}: no connection to its guest agent`, { details });
    return agent;
  }

  /** Closes the connection and the relay (the VM runs on); waits for the output files to be let go. */
  async disconnect(): Promise<void> {
    // Ending the call lets the workload run on (the agent holds its output for the next
    // orchestrator); a closed channel alone would leave the call, and the pump, running.
    this.#session?.cancel();
    this.#session = undefined;
    await this.#closeChannels();
    await this.#pump?.catch(() => undefined);
  }

  async #closeChannels(): Promise<void> {
    this.#agent?.close();
    this.#agent = undefined;
    const relay = this.#relay;
    this.#relay = undefined;
    await relay?.close();
  }

  /**
   * Until the agent listens on its vsock port (probed with a bare CONNECT: a gRPC channel
   * would back off further after each refusal), then its first answer. Fails early when
   * the VM ends first.
   */
  async #waitForAgent(conn: AgentConnection, agent: VmAgent, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const { socket } = await connectVsock(agent.vsock.udsPath, agent.port, { timeoutMs: Math.min(2000, Math.max(1, deadline - Date.now())) });
        socket.destroy();
        await conn.waitReady(Math.max(1000, Math.min(10_000, deadline - Date.now())));
        return;
      } catch (err) {
        last = err;
      }
      // No client any more: the follower retired the VMM after the VM ended.
      const client = this.host.vmmClient();
      const vm = await client?.getState(RPC).catch(() => undefined);
      const tail = () => consoleExcerpt(this.host.layout.consoleFile);
      const details = errorDetails(this.host.id);
      if (!client || vm?.phase === "exited") {
        throw new VmctlError("FAILED_PRECONDITION", `the VM of ${this.host.id} ended before its guest agent answered; the console:\n${tail()}`, { cause: last, details });
      }
      if (Date.now() >= deadline) {
        const why = last instanceof Error ? ` (${last.message})` : "";
        throw new VmctlError("UNAVAILABLE", `the guest agent of ${this.host.id} did not answer within ${timeoutMs} ms${why}; the console:\n${tail()}`, { cause: last, details });
      }
      await sleep(100);
    }
  }

  /**
   * The workload's output into its files, then its exit settled and the VM made to end.
   * With `copyOut` paths (the workload was kept running for them): they are kept first,
   * then the agent told to power off, and only then is the exit settled.
   */
  async #follow(session: ExecSession, copyOut: readonly string[]): Promise<void> {
    this.#pumping = true;
    const files = { stdout: this.#open(this.host.layout.stdoutFile), stderr: this.#open(this.host.layout.stderrFile) };
    let exit: ExitInfo;
    try {
      for await (const { stream, data } of session) {
        const file = files[stream];
        if (!file.write(data)) await new Promise<void>((resolve) => file.once("drain", () => resolve()));
      }
      const ended = await session.exited;
      await Promise.all(Object.values(files).map((f) => new Promise<void>((resolve) => f.end(() => resolve()))));
      exit = workloadExit(ended, this.host.stopRequested());
      this.#workloadEnded = true;
      if (copyOut.length === 0) this.host.settle(exit);
    } catch (err) {
      // The connection went (detach, destroy) or the VM died under it: the VM's end says how.
      this.host.ctx.log.debug("stopped following the workload", { error: String(err) });
      for (const f of Object.values(files)) f.end();
      return;
    } finally {
      this.#pumping = false;
    }
    let graceMs = POWER_OFF_GRACE_MS;
    const agent = this.#agent;
    if (copyOut.length > 0 && agent) {
      // Each path's failure is recorded in its place; this is the service dir failing (disk full):
      // the exit must still come, and the VM end.
      await keepCopyOutPaths(agent, copyOut, this.host.layout, this.host.ctx.resources, this.host.ctx.log).catch((err: unknown) => {
        this.host.ctx.log.warn("could not keep the copyOut paths", { error: String(err) });
      });
      // Cut off meanwhile (detach, destroy): as above, the VM's end says how it ended.
      if (this.#agent !== agent) return;
      if (!(await this.#powerOff(agent))) graceMs = 0;
      this.host.settle(exit);
    }
    await endVm(() => this.host.vmmClient(), this.host.layout.consoleFile, this.host.ctx.log, graceMs);
    // Nothing more to ask of this agent: the VM is ending.
    await this.#closeChannels();
  }

  /** The agent's Shutdown (sync, power off); false when it did not take it (the VM is then forced at once). */
  async #powerOff(agent: AgentConnection): Promise<boolean> {
    try {
      await agent.shutdown("power-off", { timeoutMs: 5000 });
      return true;
    } catch (err) {
      this.host.ctx.log.warn("the guest agent did not take Shutdown; forcing the VM off", { error: String(err) });
      return false;
    }
  }

  #open(path: string): WriteStream {
    this.host.ctx.resources.intend(ledger.file(path));
    const stream = createWriteStream(path, { flags: "a" });
    stream.on("error", (err) => this.host.ctx.log.warn("could not write the workload's output", { path, error: String(err) }));
    return stream;
  }

}

/** The agent's sockets gone and released (the VMM removes its vsock socket itself when it exits cleanly). */
export function releaseAgentSockets(resources: ResourceLedger, l: ServiceLayout): void {
  for (const path of [l.relayPath, l.vsockPath]) {
    rmSync(path, { force: true });
    resources.release("socket", path);
  }
}
