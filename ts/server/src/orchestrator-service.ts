// vmctl.v1.Orchestrator handlers over an OrchestratorApi. Each handler converts the
// request, calls the engine, converts the answer; errors go through grpc-status.ts.
import { once } from "node:events";
import * as grpc from "@grpc/grpc-js";
import type { Logger, OrchestratorApi } from "@vmctl/core";
import type { vmctl } from "@vmctl/proto";
import { createInputFromProto, eventToProto, exitToProto, filterFromProto, logChunkToProto, serviceToProto, targetToProto } from "./convert.js";
import { toServiceError } from "./grpc-status.js";

type Unary<Req, Res> = (request: Req, signal: AbortSignal) => Promise<Res> | Res;
type Streaming<Req, Res> = (request: Req, signal: AbortSignal) => AsyncIterable<Res>;

/** Open calls, so shutdown can end streams that would otherwise run forever. */
export class CallTracker {
  readonly #open = new Set<AbortController>();

  track(): AbortController {
    const abort = new AbortController();
    this.#open.add(abort);
    return abort;
  }

  done(abort: AbortController): void {
    this.#open.delete(abort);
  }

  abortAll(): void {
    for (const abort of this.#open) abort.abort();
  }
}

export function orchestratorHandlers(engine: OrchestratorApi, log: Logger, calls: CallTracker): grpc.UntypedServiceImplementation {
  const report = (method: string, err: unknown): ReturnType<typeof toServiceError> => {
    const status = toServiceError(err);
    if (status.code === grpc.status.INTERNAL || status.code === grpc.status.UNKNOWN) log.error("request failed", { method, err });
    else log.debug("request refused", { method, code: grpc.status[status.code], message: status.details });
    return status;
  };

  const unary =
    <Req, Res>(method: string, fn: Unary<Req, Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, callback) => {
      const abort = calls.track();
      call.on("cancelled", () => abort.abort());
      Promise.resolve()
        .then(() => fn(call.request, abort.signal))
        .then(
          (response) => callback(null, response),
          (err: unknown) => callback(report(method, err)),
        )
        .finally(() => calls.done(abort));
    };

  const streaming =
    <Req, Res>(method: string, fn: Streaming<Req, Res>): grpc.handleServerStreamingCall<Req, Res> =>
    async (call) => {
      const abort = calls.track();
      // The client went away (or shutdown): the engine's iterator ends on this signal.
      call.on("cancelled", () => abort.abort());
      try {
        for await (const message of fn(call.request, abort.signal)) {
          if (abort.signal.aborted) break;
          if (!call.write(message)) await Promise.race([once(call, "drain"), once(abort.signal, "abort")]);
        }
        if (!call.cancelled) call.end();
      } catch (err) {
        if (!call.cancelled) call.emit("error", report(method, err));
      } finally {
        calls.done(abort);
      }
    };

  return {
    createService: unary<vmctl.v1.CreateServiceRequest, vmctl.v1.IService>("CreateService", async (req) =>
      serviceToProto(await engine.create(createInputFromProto(req))),
    ),
    startService: unary<vmctl.v1.ServiceRef, vmctl.v1.IService>("StartService", async (req) => serviceToProto(await engine.start(req.id))),
    stopService: unary<vmctl.v1.StopServiceRequest, vmctl.v1.IService>("StopService", async (req) =>
      serviceToProto(await engine.stop(req.id, req.timeoutMs == null ? {} : { timeoutMs: req.timeoutMs })),
    ),
    deleteService: unary<vmctl.v1.DeleteServiceRequest, vmctl.v1.IDeleteServiceResponse>("DeleteService", async (req) => {
      await engine.delete(req.id, { force: req.force });
      return {};
    }),
    getService: unary<vmctl.v1.ServiceRef, vmctl.v1.IService>("GetService", (req) => serviceToProto(engine.get(req.id))),
    listServices: unary<vmctl.v1.ListServicesRequest, vmctl.v1.IListServicesResponse>("ListServices", (req) => ({
      services: engine.list(filterFromProto(req)).map(serviceToProto),
    })),
    watchServices: streaming<vmctl.v1.WatchServicesRequest, vmctl.v1.IServiceEvent>("WatchServices", async function* (req, signal) {
      for await (const event of engine.watch(req.ids ?? [], signal)) yield eventToProto(event);
    }),
    logs: streaming<vmctl.v1.LogsRequest, vmctl.v1.ILogChunk>("Logs", async function* (req, signal) {
      for await (const chunk of engine.logs(req.id, { follow: req.follow, signal })) yield logChunkToProto(chunk);
    }),
    waitService: unary<vmctl.v1.ServiceRef, vmctl.v1.IExitInfo>("WaitService", async (req, signal) =>
      exitToProto(await engine.wait(req.id, signal)),
    ),
    listTargets: unary<vmctl.v1.ListTargetsRequest, vmctl.v1.IListTargetsResponse>("ListTargets", () => ({
      targets: engine.targets().map(targetToProto),
    })),
    pauseService: unary<vmctl.v1.ServiceRef, vmctl.v1.IService>("PauseService", async (req) => serviceToProto(await engine.pause(req.id))),
    resumeService: unary<vmctl.v1.ServiceRef, vmctl.v1.IService>("ResumeService", async (req) => serviceToProto(await engine.resume(req.id))),
    execService: unary<vmctl.v1.ExecServiceRequest, vmctl.v1.IExecServiceResponse>("ExecService", async (req) => {
      const result = await engine.exec(req.id, req.args ?? []);
      return { ...(result.code === null ? {} : { code: result.code }), stdout: result.stdout, stderr: result.stderr };
    }),
  };
}
