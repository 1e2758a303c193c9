// An image VM's workload, run by the guest agent (vmctl-agent, PID 1 from its initramfs)
// and reached over the VM's vsock: a local unix socket relayed to the agent's port
// (relayVsock: grpc-js dials only unix sockets), an AgentConnection over it, the workload
// as one Exec session whose stdout and stderr are appended to two files in the service
// dir as they come (the service's logs), and its exit settled as the service's. Then the
// VM must end: the agent syncs and powers off; a VM still running a few seconds later
// (a kernel without a power-off path halts instead) is forced off through the VMM.
//
// Across an orchestrator restart the relay and the connection are remade (exec, stop), but
// the agent cannot re-attach a workload's output or exit to a new client: output printed
// after the restart is dropped by the agent, and the exit is learned from the VM's end.
import { closeSync, createWriteStream, fstatSync, openSync, readSync, rmSync, type WriteStream } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { VmctlError, type ExecProcess, type ExecRequest, type ExitInfo, type ResourceLedger, type TargetContext } from "@vmctl/core/contract";
import { connectVsock, relayVsock, type VmmClient, type VsockRelay } from "@vmctl/vmm-client";
import { AgentConnection, type ExecSession } from "./agent/index.js";
import { errorDetails } from "./errors.js";
import { startExec } from "./exec-process.js";
import { ledger, type ServiceLayout } from "./layout.js";
import type { VmAgent } from "./vm-config.js";
import { RPC } from "./vmm-connection.js";
import { consoleExcerpt, workloadExit } from "./workload-exit.js";

/** How long a booting VM's agent gets to answer (a Linux boot; minutes under nesting's load). */
export const AGENT_READY_TIMEOUT_MS = 120_000;
/** After the workload's exit: how long the VM gets to power itself off before it is forced. */
const POWER_OFF_GRACE_MS = 5000;

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
  /** The workload's output being written to its files, then its exit settled. */
  #pump: Promise<void> | undefined;
  #pumping = false;

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
   * first), then the workload started and its output followed in the background.
   */
  async run(agent: VmAgent, timeoutMs = AGENT_READY_TIMEOUT_MS): Promise<void> {
    const conn = await this.connect(agent);
    await this.#waitForAgent(conn, agent, timeoutMs);
    const w = agent.workload;
    const session = await conn.exec({
      args: w.args,
      imageEnv: w.imageEnv,
      env: w.env,
      ...(w.cwd === undefined ? {} : { cwd: w.cwd }),
      ...(w.user === undefined ? {} : { user: w.user }),
      workload: true,
    });
    this.#pump = this.#follow(session);
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
    try {
      await agent.signal("workload", "SIGTERM", { timeoutMs: Math.min(graceMs, 5000) || 1000 });
    } catch (err) {
      this.host.ctx.log.warn("could not signal the workload", { error: String(err) });
      return false;
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
    // A paused VM's agent cannot answer: the exec would hang until resume().
    const vm = await this.host.vmmClient()?.getState(RPC).catch(() => undefined);
    if (vm?.phase === "paused") throw new VmctlError("FAILED_PRECONDITION", `${this.host.id} is paused: resume it to exec`, { details });
    const agent = this.#agent;
    if (!agent) throw new VmctlError("FAILED_PRECONDITION", `${this.host.id}: no connection to its guest agent`, { details });
    return startExec(agent, request, vmAgent.workload);
  }

  /** Closes the connection and the relay (the VM runs on); waits for the output files to be let go. */
  async disconnect(): Promise<void> {
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

  /** The workload's output into its files, then its exit settled and the VM made to end. */
  async #follow(session: ExecSession): Promise<void> {
    this.#pumping = true;
    const files = { stdout: this.#open(this.host.layout.stdoutFile), stderr: this.#open(this.host.layout.stderrFile) };
    try {
      for await (const { stream, data } of session) {
        const file = files[stream];
        if (!file.write(data)) await new Promise<void>((resolve) => file.once("drain", () => resolve()));
      }
      const exit = await session.exited;
      await Promise.all(Object.values(files).map((f) => new Promise<void>((resolve) => f.end(() => resolve()))));
      this.host.settle(workloadExit(exit, this.host.stopRequested()));
    } catch (err) {
      // The connection went (detach, destroy) or the VM died under it: the VM's end says how.
      this.host.ctx.log.debug("stopped following the workload", { error: String(err) });
      for (const f of Object.values(files)) f.end();
      return;
    } finally {
      this.#pumping = false;
    }
    await this.#endVm();
    // Nothing more to ask of this agent: the VM is ending.
    await this.#closeChannels();
  }

  #open(path: string): WriteStream {
    this.host.ctx.resources.intend(ledger.file(path));
    const stream = createWriteStream(path, { flags: "a" });
    stream.on("error", (err) => this.host.ctx.log.warn("could not write the workload's output", { path, error: String(err) }));
    return stream;
  }

  /**
   * The agent syncs and powers the VM off after the workload. Linux without a power-off
   * handler (no ACPI here) turns that into a halt (`reboot: System halted`): the vCPU
   * halts and the VM never ends on its own. Once that line (or `reboot: Power down`) is on
   * the console the disks are flushed, and the VM is forced off at once; a VM that says
   * nothing is forced after POWER_OFF_GRACE_MS.
   */
  async #endVm(): Promise<void> {
    const deadline = Date.now() + POWER_OFF_GRACE_MS;
    while (Date.now() < deadline) {
      const client = this.host.vmmClient();
      const vm = await client?.getState(RPC).catch(() => undefined);
      if (!client || vm === undefined || vm.phase === "exited") return;
      if (poweredDown(this.host.layout.consoleFile)) break;
      await sleep(50);
    }
    this.host.ctx.log.debug("forcing the VM off after its workload");
    await this.host
      .vmmClient()
      ?.shutdown(0, { timeoutMs: 5000 })
      .catch(() => undefined);
  }
}

/**
 * The kernel said it powers down or, with no power-off handler (Linux then turns a power
 * off into a halt), that it halted: both after the devices' shutdown.
 */
function poweredDown(consoleFile: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(consoleFile, "r");
    const size = fstatSync(fd).size;
    const tail = Buffer.alloc(Math.min(size, 8192));
    readSync(fd, tail, 0, tail.length, size - tail.length);
    return /reboot: (Power down|System halted)/.test(tail.toString("latin1"));
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The agent's sockets gone and released (the VMM removes its vsock socket itself when it exits cleanly). */
export function releaseAgentSockets(resources: ResourceLedger, l: ServiceLayout): void {
  for (const path of [l.relayPath, l.vsockPath]) {
    rmSync(path, { force: true });
    resources.release("socket", path);
  }
}
