// A typed promise client for vmctld over its unix socket.
import * as grpc from "@grpc/grpc-js";
import {
  createNetworkToProto,
  createRequestToProto,
  networkFromProto,
  eventFromProto,
  exitFromProto,
  filterToProto,
  imageFromProto,
  logChunkFromProto,
  OrchestratorClient,
  progressFromProto,
  prunedFromProto,
  pruneReportFromProto,
  removedFromProto,
  serviceFromProto,
  targetFromProto,
  type UnaryMethod,
  type vmctl,
} from "@vmctl/proto";
import { errorFromGrpc } from "./errors.js";
import { startExec } from "./exec-call.js";
import { execToEnd } from "@vmctl/core/target-kit";
import { DEFAULT_SOCKET, VmctlError, type SystemPruneReport } from "@vmctl/core/contract";
import type {
  CreateNetworkInput,
  CreateServiceInput,
  NetworkRecord,
  ExecProcess,
  ExecRequest,
  ExecResult,
  ExitInfo,
  Image,
  LogChunk,
  ProgressEvent,
  PrunedImages,
  RemovedImage,
  ServiceEvent,
  ServiceFilter,
  ServiceRecord,
  TargetInfo,
} from "./types.js";

/** Per-call options. */
export interface CallOptions {
  /** Fail with DEADLINE_EXCEEDED after this long; no deadline by default (create and wait may take long). */
  readonly timeoutMs?: number;
  /** Cancels the call (the promise rejects with CANCELLED). */
  readonly signal?: AbortSignal;
}

/** Options of a call that reports progress. */
export interface ProgressCallOptions extends CallOptions {
  /** Called with each progress event, in order, before the call resolves. A throw cancels the call (it rejects with what was thrown). */
  readonly onProgress?: (event: ProgressEvent) => void;
}

/** Where vmctld listens unless told otherwise. */
export { DEFAULT_SOCKET };

/** Connects to vmctld on `socketPath` (lazily: the first call opens the connection). */
export function connect(socketPath: string = DEFAULT_SOCKET): VmctlClient {
  return new VmctlClient(socketPath);
}

/**
 * vmctl.v1.Orchestrator as promises and async iterables of plain objects. Every failure
 * is a VmctlError (from @vmctl/core/contract) with the code and details the engine gave.
 */
/** ListServices' largest page (larger counts as this). */
const MAX_PAGE_SIZE = 1000;

export class VmctlClient {
  readonly #raw: OrchestratorClient;

  constructor(readonly socketPath: string) {
    this.#raw = new OrchestratorClient(`unix://${socketPath}`, grpc.credentials.createInsecure(), {
      // One local daemon: fail fast when it is not there rather than retrying for long.
      "grpc.initial_reconnect_backoff_ms": 100,
      "grpc.max_reconnect_backoff_ms": 1000,
    });
  }

  #call<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, options: CallOptions = {}): Promise<Res> {
    const callOptions: Partial<grpc.CallOptions> = options.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs };
    return new Promise<Res>((resolve, reject) => {
      const call = method.call(this.#raw, request, new grpc.Metadata(), callOptions, (err, response) => {
        options.signal?.removeEventListener("abort", onAbort);
        if (err) reject(errorFromGrpc(err, this.socketPath));
        else resolve(response as Res);
      });
      const onAbort = (): void => call.cancel();
      if (options.signal?.aborted) call.cancel();
      else options.signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  async #stream<Res, Out>(stream: grpc.ClientReadableStream<Res>, convert: (m: Res) => Out, signal?: AbortSignal): Promise<AsyncGenerator<Out>> {
    const socketPath = this.socketPath;
    const onAbort = (): void => stream.cancel();
    if (signal?.aborted) stream.cancel();
    else signal?.addEventListener("abort", onAbort, { once: true });
    return (async function* () {
      try {
        for await (const message of stream) yield convert(message as Res);
      } catch (err) {
        const e = errorFromGrpc(err, socketPath);
        // Ended by the caller (abort, or leaving the loop): a normal end, not an error.
        if (e.code !== "CANCELLED" || !(signal?.aborted ?? false)) throw e;
      } finally {
        signal?.removeEventListener("abort", onAbort);
        stream.cancel();
      }
    })();
  }

  /**
   * A server-streaming call of progress events and one final message: each progress goes
   * to `onProgress`, the final one resolves the promise.
   */
  #progressCall<Event, Out>(
    open: (metadata: grpc.Metadata, callOptions: Partial<grpc.CallOptions>) => grpc.ClientReadableStream<Event>,
    read: (event: Event) => { progress: ProgressEvent } | { final: Out } | undefined,
    what: string,
    options: ProgressCallOptions,
  ): Promise<Out> {
    const callOptions: Partial<grpc.CallOptions> = options.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs };
    return new Promise<Out>((resolve, reject) => {
      const stream = open(new grpc.Metadata(), callOptions);
      let final: { value: Out } | undefined;
      let thrown: { err: unknown } | undefined;
      const onAbort = (): void => stream.cancel();
      const finish = (): void => options.signal?.removeEventListener("abort", onAbort);
      if (options.signal?.aborted) stream.cancel();
      else options.signal?.addEventListener("abort", onAbort, { once: true });
      stream.on("data", (event: Event) => {
        const got = read(event);
        if (got === undefined || thrown !== undefined) return;
        if ("final" in got) final = { value: got.final };
        else {
          try {
            options.onProgress?.(got.progress);
          } catch (err) {
            thrown = { err };
            stream.cancel();
          }
        }
      });
      stream.on("error", (err) => {
        finish();
        reject(thrown !== undefined ? thrown.err : errorFromGrpc(err, this.socketPath));
      });
      stream.on("end", () => {
        finish();
        if (thrown !== undefined) reject(thrown.err);
        else if (final !== undefined) resolve(final.value);
        else reject(new VmctlError("INTERNAL", `${what}: the stream ended without its result`));
      });
    });
  }

  /**
   * Records the service durably and prepares it (with `start`, starts it too). With
   * `onProgress`, the target's progress while it prepares (an image pull, say) is
   * reported as it comes (CreateServiceWithProgress; a daemon without it gets a plain
   * CreateService and reports none).
   */
  async create(input: CreateServiceInput, options: ProgressCallOptions = {}): Promise<ServiceRecord> {
    const request = createRequestToProto(input);
    if (options.onProgress === undefined) return serviceFromProto(await this.#call(this.#raw.createService, request, options));
    let sawAnything = false;
    try {
      return await this.#progressCall<vmctl.v1.CreateServiceEvent, ServiceRecord>(
        (metadata, callOptions) => this.#raw.createServiceWithProgress(request, metadata, callOptions),
        (event: vmctl.v1.CreateServiceEvent) => {
          sawAnything = true;
          if (event.service) return { final: serviceFromProto(event.service) };
          return event.progress ? { progress: progressFromProto(event.progress) } : undefined;
        },
        "CreateServiceWithProgress",
        options,
      );
    } catch (err) {
      // An older daemon: the same request (and request_id) without progress.
      if (err instanceof VmctlError && err.code === "UNIMPLEMENTED" && !sawAnything) {
        return serviceFromProto(await this.#call(this.#raw.createService, request, options));
      }
      throw err;
    }
  }

  async start(ref: string, options?: CallOptions): Promise<ServiceRecord> {
    return serviceFromProto(await this.#call(this.#raw.startService, { id: ref }, options));
  }

  /** Polite stop, forced after `stopTimeoutMs` (server default 10 s); `timeoutMs` bounds the call itself. */
  async stop(ref: string, options: CallOptions & { stopTimeoutMs?: number } = {}): Promise<ServiceRecord> {
    const request = { id: ref, ...(options.stopTimeoutMs === undefined ? {} : { timeoutMs: options.stopTimeoutMs }) };
    return serviceFromProto(await this.#call(this.#raw.stopService, request, options));
  }

  /** Frees everything the service owns and forgets it; a running one needs `force`. */
  async delete(ref: string, options: CallOptions & { force?: boolean } = {}): Promise<void> {
    await this.#call(this.#raw.deleteService, { id: ref, force: options.force === true }, options);
  }

  async get(ref: string, options?: CallOptions): Promise<ServiceRecord> {
    return serviceFromProto(await this.#call(this.#raw.getService, { id: ref }, options));
  }

  /**
   * Every matching service. The server answers in pages (each under the message size
   * limit however large the services); this follows them to the end, with the same
   * deadline (`timeoutMs` bounds the whole listing).
   */
  async list(filter: ServiceFilter = {}, options: CallOptions = {}): Promise<ServiceRecord[]> {
    const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
    const request = filterToProto(filter);
    const services: ServiceRecord[] = [];
    const seen = new Set<string>();
    for (let pageToken = ""; ; ) {
      const remaining = deadline === undefined ? undefined : Math.max(1, deadline - Date.now());
      // The largest page the server gives (docs/api-limits.md): fewest round trips.
      const response = await this.#call(this.#raw.listServices, { ...request, pageSize: MAX_PAGE_SIZE, pageToken }, { ...options, ...(remaining === undefined ? {} : { timeoutMs: remaining }) });
      services.push(...(response.services ?? []).map(serviceFromProto));
      pageToken = response.nextPageToken ?? "";
      if (pageToken === "") return services;
      // A server handing back a token it already gave would page forever.
      if (seen.has(pageToken)) throw new VmctlError("INTERNAL", "ListServices returned the same page token twice");
      seen.add(pageToken);
    }
  }

  /** Snapshot events for the matching services, then every change, until `signal` aborts or the loop is left. */
  watch(refs: readonly string[] = [], options: { signal?: AbortSignal } = {}): AsyncIterable<ServiceEvent> {
    const open = (): Promise<AsyncGenerator<ServiceEvent>> =>
      this.#stream(this.#raw.watchServices({ ids: [...refs] }), eventFromProto, options.signal);
    return lazyIterable(open);
  }

  /** Output so far; with `follow`, then live output until the service exits. */
  logs(ref: string, options: { follow?: boolean; signal?: AbortSignal } = {}): AsyncIterable<LogChunk> {
    const open = (): Promise<AsyncGenerator<LogChunk>> =>
      this.#stream(this.#raw.logs({ id: ref, follow: options.follow === true }), logChunkFromProto, options.signal);
    return lazyIterable(open);
  }

  /** Resolves when the service has exited. */
  async wait(ref: string, options?: CallOptions): Promise<ExitInfo> {
    return exitFromProto(await this.#call(this.#raw.waitService, { id: ref }, options));
  }

  /** Freezes a running service (FAILED_PRECONDITION when its target cannot pause). */
  async pause(ref: string, options?: CallOptions): Promise<ServiceRecord> {
    return serviceFromProto(await this.#call(this.#raw.pauseService, { id: ref }, options));
  }

  async resume(ref: string, options?: CallOptions): Promise<ServiceRecord> {
    return serviceFromProto(await this.#call(this.#raw.resumeService, { id: ref }, options));
  }

  /**
   * Runs a command inside a running service, resolving once it runs: read its output by
   * iterating (at your pace), write its stdin, resize its terminal, signal it; `exited`
   * settles after the output. `signal` (or `cancel()`) ends the command.
   */
  async exec(ref: string, request: ExecRequest, options: { signal?: AbortSignal } = {}): Promise<ExecProcess> {
    const process = await startExec(this.#raw.exec(), ref, request, this.socketPath);
    const onAbort = (): void => process.cancel();
    if (options.signal?.aborted) process.cancel();
    else options.signal?.addEventListener("abort", onAbort, { once: true });
    process.exited.finally(() => options.signal?.removeEventListener("abort", onAbort)).catch(() => undefined);
    return process;
  }

  /**
   * A tar stream of `path` (a file or a directory, under its own name) in a service whose
   * target claims `copy`, read at your pace: while it runs, and after it exited until it is
   * deleted. Leaving the loop (or `signal`) ends the copy.
   */
  copyOut(ref: string, path: string, options: { signal?: AbortSignal } = {}): AsyncIterable<Uint8Array> {
    const open = (): Promise<AsyncGenerator<Uint8Array>> =>
      this.#stream(this.#raw.copyOut({ id: ref, path }), (chunk) => chunk.data ?? new Uint8Array(0), options.signal);
    return lazyIterable(open);
  }

  /**
   * Runs `args` inside a running service and collects its exit and whole output (at most
   * `maxBytes`, 16 MiB by default: more fails with RESOURCE_EXHAUSTED; use exec() to stream).
   */
  async execToEnd(ref: string, args: readonly string[], options: { signal?: AbortSignal; maxBytes?: number } = {}): Promise<ExecResult> {
    return execToEnd(await this.exec(ref, { args }, options), options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes });
  }

  async targets(options?: CallOptions): Promise<TargetInfo[]> {
    const response = await this.#call(this.#raw.listTargets, {}, options);
    return (response.targets ?? []).map(targetFromProto);
  }

  /** Pulls `reference` into the daemon's image store (at once when it is there); `onProgress` gets each layer's progress. */
  pullImage(reference: string, options: ProgressCallOptions = {}): Promise<Image> {
    return this.#progressCall<vmctl.v1.PullImageEvent, Image>(
      (metadata, callOptions) => this.#raw.pullImage({ reference }, metadata, callOptions),
      (event: vmctl.v1.PullImageEvent) => {
        if (event.image) return { final: imageFromProto(event.image) };
        return event.progress ? { progress: progressFromProto(event.progress) } : undefined;
      },
      "PullImage",
      options,
    );
  }

  async listImages(options?: CallOptions): Promise<Image[]> {
    const response = await this.#call(this.#raw.listImages, {}, options);
    return (response.images ?? []).map(imageFromProto);
  }

  /** The image `reference` (or digest) names; NOT_FOUND when the store has none. */
  async inspectImage(reference: string, options?: CallOptions): Promise<Image> {
    return imageFromProto(await this.#call(this.#raw.inspectImage, { reference }, options));
  }

  /** Untags `reference`, deleting the image once no reference is left; an image services use needs `force`. */
  async removeImage(reference: string, options: CallOptions & { force?: boolean } = {}): Promise<RemovedImage> {
    return removedFromProto(await this.#call(this.#raw.removeImage, { reference, force: options.force === true }, options));
  }

  /** Removes dangling images (with `all`, every image no service uses). */
  async pruneImages(options: CallOptions & { all?: boolean } = {}): Promise<PrunedImages> {
    return prunedFromProto(await this.#call(this.#raw.pruneImages, { all: options.all === true }, options));
  }

  /**
   * Removes what the targets hold under this daemon's owner label for no service it knows
   * (with `dryRun`, only says what it would remove).
   */
  async pruneSystem(options: CallOptions & { dryRun?: boolean } = {}): Promise<SystemPruneReport> {
    return pruneReportFromProto(await this.#call(this.#raw.pruneSystem, { dryRun: options.dryRun === true }, options));
  }

  /** A named network (its bridge, subnet and NAT made on vmctld's host). */
  async createNetwork(input: CreateNetworkInput, options?: CallOptions): Promise<NetworkRecord> {
    return networkFromProto(await this.#call(this.#raw.createNetwork, createNetworkToProto(input), options));
  }

  async listNetworks(options?: CallOptions): Promise<NetworkRecord[]> {
    const response = await this.#call(this.#raw.listNetworks, {}, options);
    return (response.networks ?? []).map(networkFromProto);
  }

  /** NOT_FOUND when there is no such network. */
  async getNetwork(name: string, options?: CallOptions): Promise<NetworkRecord> {
    return networkFromProto(await this.#call(this.#raw.getNetwork, { name }, options));
  }

  /** FAILED_PRECONDITION while services are on it. */
  async deleteNetwork(name: string, options?: CallOptions): Promise<void> {
    await this.#call(this.#raw.deleteNetwork, { name }, options);
  }

  /** Resolves once vmctld answers (within `timeoutMs`); rejects with UNAVAILABLE or DEADLINE_EXCEEDED otherwise. */
  async ping(timeoutMs = 2000): Promise<void> {
    await this.#call(this.#raw.listTargets, {}, { timeoutMs });
  }

  close(): void {
    this.#raw.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** An iterable whose stream opens when iteration begins (so each loop gets its own call). */
function lazyIterable<T>(open: () => Promise<AsyncGenerator<T>>): AsyncIterable<T> {
  return {
    async *[Symbol.asyncIterator]() {
      yield* await open();
    },
  };
}
