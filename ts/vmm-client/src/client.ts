import * as grpc from "@grpc/grpc-js";
import { VmmClient as GeneratedClient, type UnaryMethod } from "@vmctl/proto";
import {
  bootSourceFromProto,
  bootSourceToProto,
  driveFromProto,
  driveToProto,
  machineConfigFromProto,
  machineConfigToProto,
  metricsFromProto,
  networkInterfaceFromProto,
  networkInterfaceToProto,
  vmmInfoFromProto,
  vmStateFromProto,
  vsockFromProto,
  vsockToProto,
} from "./convert.js";
import { VmctlError } from "@vmctl/core/contract";
import { fromGrpc } from "./errors.js";
import type { BootSource, Drive, MachineConfig, Metrics, NetworkInterface, VmmInfo, VmState, Vsock } from "./types.js";

/** Per-call options. */
export interface CallOptions {
  /** Fails the call with DEADLINE_EXCEEDED after this long (default 30 s). */
  readonly timeoutMs?: number;
}

/** A live console attachment: guest serial output, and a way to type into it. */
export interface ConsoleSession extends AsyncIterable<Buffer> {
  /** Sends bytes to the guest's serial port. */
  write(data: string | Uint8Array): void;
  /** Detaches; the output iteration ends. */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * For a channel to a local socket that may not be there yet (a VMM just spawned, a guest's
 * agent still booting): retried within tens of milliseconds. grpc-js's default first
 * backoff is 1 s, which showed up as a VMM that took 1.1 s instead of 0.1 s to answer its
 * first call in 2 of 7 nested boots.
 */
export const LOCAL_SOCKET_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 10,
  "grpc.max_reconnect_backoff_ms": 100,
};

/**
 * Promise-based client for one `vmctl-vmm` process, over its unix API socket.
 * Every failure is a VmctlError whose code is the gRPC status name and whose
 * details.field, for a refused configuration, is the VMM's field (`drive.path_on_host`).
 */
export class VmmClient {
  readonly #raw: GeneratedClient;

  constructor(readonly socketPath: string) {
    this.#raw = new GeneratedClient(`unix://${socketPath}`, grpc.credentials.createInsecure(), LOCAL_SOCKET_CHANNEL_OPTIONS);
  }

  #call<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, options?: CallOptions): Promise<Res> {
    const deadline = Date.now() + (options?.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    return new Promise<Res>((resolve, reject) => {
      method.call(this.#raw, request, new grpc.Metadata(), { deadline }, (err, response) => {
        if (err) reject(fromGrpc(err));
        else if (response === undefined) reject(new VmctlError("INTERNAL", "empty response from the VMM"));
        else resolve(response);
      });
    });
  }

  async getInfo(options?: CallOptions): Promise<VmmInfo> {
    return vmmInfoFromProto(await this.#call(this.#raw.getInfo, {}, options));
  }

  async putMachineConfig(config: MachineConfig, options?: CallOptions): Promise<Required<MachineConfig>> {
    return machineConfigFromProto(await this.#call(this.#raw.putMachineConfig, machineConfigToProto(config), options));
  }

  async getMachineConfig(options?: CallOptions): Promise<Required<MachineConfig>> {
    return machineConfigFromProto(await this.#call(this.#raw.getMachineConfig, {}, options));
  }

  async putBootSource(source: BootSource, options?: CallOptions): Promise<BootSource> {
    return bootSourceFromProto(await this.#call(this.#raw.putBootSource, bootSourceToProto(source), options));
  }

  async putDrive(drive: Drive, options?: CallOptions): Promise<Required<Drive>> {
    return driveFromProto(await this.#call(this.#raw.putDrive, driveToProto(drive), options));
  }

  async listDrives(options?: CallOptions): Promise<Required<Drive>[]> {
    const response = await this.#call(this.#raw.listDrives, {}, options);
    return (response.drives ?? []).map(driveFromProto);
  }

  /** Sets the VM's vsock device (one per VM: a second call before Start replaces it). */
  async putVsock(vsock: Vsock, options?: CallOptions): Promise<Vsock> {
    return vsockFromProto(await this.#call(this.#raw.putVsock, vsockToProto(vsock), options));
  }

  /** The configured vsock device; undefined when there is none. */
  async getVsock(options?: CallOptions): Promise<Vsock | undefined> {
    const response = await this.#call(this.#raw.getVsock, {}, options);
    return response.vsock ? vsockFromProto(response.vsock) : undefined;
  }

  /**
   * Adds a virtio-net device on an existing TAP (checked now, attached at Start).
   * ALREADY_EXISTS for an id, TAP, descriptor or MAC already in use.
   */
  async putNetworkInterface(iface: NetworkInterface, options?: CallOptions): Promise<NetworkInterface> {
    return networkInterfaceFromProto(await this.#call(this.#raw.putNetworkInterface, networkInterfaceToProto(iface), options));
  }

  /** The configured network interfaces, in the guest's device order. */
  async listNetworkInterfaces(options?: CallOptions): Promise<NetworkInterface[]> {
    const response = await this.#call(this.#raw.listNetworkInterfaces, {}, options);
    return (response.networkInterfaces ?? []).map(networkInterfaceFromProto);
  }

  async start(options?: CallOptions): Promise<VmState> {
    return vmStateFromProto(await this.#call(this.#raw.start, {}, options));
  }

  async pause(options?: CallOptions): Promise<VmState> {
    return vmStateFromProto(await this.#call(this.#raw.pause, {}, options));
  }

  async resume(options?: CallOptions): Promise<VmState> {
    return vmStateFromProto(await this.#call(this.#raw.resume, {}, options));
  }

  async sendCtrlAltDel(options?: CallOptions): Promise<VmState> {
    return vmStateFromProto(await this.#call(this.#raw.sendCtrlAltDel, {}, options));
  }

  /** Ctrl-Alt-Del, then a forced stop after `graceMs` (default 5000); resolves to the final state. */
  async shutdown(graceMs = 5000, options?: CallOptions): Promise<VmState> {
    const timeoutMs = Math.max(options?.timeoutMs ?? DEFAULT_TIMEOUT_MS, graceMs + 5000);
    return vmStateFromProto(await this.#call(this.#raw.shutdown, { timeoutMs: graceMs }, { timeoutMs }));
  }

  async getState(options?: CallOptions): Promise<VmState> {
    return vmStateFromProto(await this.#call(this.#raw.getState, {}, options));
  }

  async getMetrics(options?: CallOptions): Promise<Metrics> {
    return metricsFromProto(await this.#call(this.#raw.getMetrics, {}, options));
  }

  /** The current state, then every change; ends after the VM has exited. */
  async *watchState(): AsyncGenerator<VmState> {
    const stream = this.#raw.watchState({});
    try {
      for await (const message of stream) yield vmStateFromProto(message);
    } catch (err) {
      throw fromGrpc(err);
    } finally {
      stream.cancel();
    }
  }

  /** Resolves when the VM has exited, with its final state. */
  async waitExit(): Promise<VmState> {
    let last: VmState | undefined;
    for await (const state of this.watchState()) last = state;
    if (last?.phase !== "exited") throw new VmctlError("UNAVAILABLE", "state stream ended before the VM exited");
    return last;
  }

  /**
   * Attaches to the serial console. With `replay`, output printed before attaching
   * (the VMM keeps the most recent 64 KiB) comes first.
   */
  console(options: { replay?: boolean } = {}): ConsoleSession {
    const stream = this.#raw.console();
    // Until someone iterates, a stream error (e.g. CANCELLED after close()) has no
    // listener and would crash the process: keep it for the iterator instead.
    let failure: VmctlError | undefined;
    stream.on("error", (err: unknown) => {
      const e = fromGrpc(err);
      if (e.code !== "CANCELLED") failure ??= e;
    });
    stream.write({ data: new Uint8Array(0), replay: options.replay ?? false });
    return {
      write: (data) => {
        stream.write({ data: typeof data === "string" ? Buffer.from(data) : data });
      },
      close: () => stream.cancel(),
      async *[Symbol.asyncIterator]() {
        try {
          for await (const message of stream) {
            const data = (message as { data?: Uint8Array }).data;
            if (data && data.length > 0) yield Buffer.from(data.buffer, data.byteOffset, data.byteLength);
          }
        } catch (err) {
          const e = fromGrpc(err);
          if (e.code !== "CANCELLED") throw e;
        } finally {
          stream.end();
        }
        if (failure) throw failure;
      },
    };
  }

  /** Closes the channel; calls in flight fail with CANCELLED. */
  close(): void {
    this.#raw.close();
  }
}
