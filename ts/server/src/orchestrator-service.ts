// vmctl.v1.Orchestrator handlers over the engine (OrchestratorApi and its image store,
// see image-store-api.ts). Each handler converts the request, calls the engine, converts
// the answer (the conversions are @vmctl/proto's codec); the shared plumbing (malformed
// requests, cancellation, errors through grpc-status.ts) is in rpc-handlers.ts.
import type * as grpc from "@grpc/grpc-js";
import { VmctlError, type Logger } from "@vmctl/core";
import {
  createInputFromProto,
  createNetworkFromProto,
  networkToProto,
  eventToProto,
  exitToProto,
  filterFromProto,
  imageToProto,
  logChunkToProto,
  progressToProto,
  prunedToProto,
  pruneReportToProto,
  removedToProto,
  serviceToProto,
  targetToProto,
  type vmctl,
} from "@vmctl/proto";
import { serveExec } from "./exec-stream.js";
import { checkImageReference, REFERENCE_FIELD } from "./image-requests.js";
import type { ImageStoreApi, ServedEngine } from "./image-store-api.js";
import { pageOf } from "./list-pages.js";
import { progressStream } from "./progress-stream.js";
import { CallTracker, RpcHandlers, type Streaming, type Unary } from "./rpc-handlers.js";

export { CallTracker };

/** Largest CopyOut message: well under the client's 4 MiB message limit. */
const COPY_CHUNK_BYTES = 1024 * 1024;

export function orchestratorHandlers(engine: ServedEngine, log: Logger, calls: CallTracker): grpc.UntypedServiceImplementation {
  const rpc = new RpcHandlers(log, calls);
  const unary = <Req, Res>(method: string, fn: Unary<Req, Res>) => rpc.unary(method, fn);
  const streaming = <Req, Res>(method: string, fn: Streaming<Req, Res>) => rpc.streaming(method, fn);
  const images = (): ImageStoreApi => {
    if (engine.images === undefined) throw new VmctlError("UNIMPLEMENTED", "this vmctld has no image store");
    return engine.images;
  };

  return {
    createService: unary<vmctl.v1.CreateServiceRequest, vmctl.v1.IService>("CreateService", async (req) =>
      serviceToProto(await engine.create(createInputFromProto(req))),
    ),
    startService: unary<vmctl.v1.ServiceRef, vmctl.v1.IService>("StartService", async (req) => serviceToProto(await engine.start(req.id))),
    // The call's signal ends only this call's wait when the client goes away; the stop goes on.
    stopService: unary<vmctl.v1.StopServiceRequest, vmctl.v1.IService>("StopService", async (req, signal) =>
      serviceToProto(await engine.stop(req.id, req.timeoutMs == null ? { signal } : { timeoutMs: req.timeoutMs, signal })),
    ),
    deleteService: unary<vmctl.v1.DeleteServiceRequest, vmctl.v1.IDeleteServiceResponse>("DeleteService", async (req) => {
      await engine.delete(req.id, { force: req.force });
      return {};
    }),
    getService: unary<vmctl.v1.ServiceRef, vmctl.v1.IService>("GetService", (req) => serviceToProto(engine.get(req.id))),
    listServices: unary<vmctl.v1.ListServicesRequest, vmctl.v1.IListServicesResponse>("ListServices", (req) => {
      const filter = filterFromProto(req);
      return pageOf(engine.list(filter), filter, { pageSize: req.pageSize ?? 0, pageToken: req.pageToken ?? "" });
    }),
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
    // Read from the target only as the client takes it; a client that goes away ends the copy.
    copyOut: streaming<vmctl.v1.CopyOutRequest, vmctl.v1.ICopyOutChunk>("CopyOut", async function* (req) {
      for await (const data of engine.copyOut(req.id, req.path)) {
        for (let offset = 0; offset < data.byteLength; offset += COPY_CHUNK_BYTES) yield { data: data.subarray(offset, offset + COPY_CHUNK_BYTES) };
      }
    }),
    // The command ends with the call: its exit, the client going away, or a bad message.
    exec: rpc.duplex<vmctl.v1.ExecInput, vmctl.v1.IExecOutput>("Exec", (requests, signal) => serveExec(engine, requests, signal)),
    // A client that goes away ends its stream; the create goes on (as CreateService's does).
    createServiceWithProgress: streaming<vmctl.v1.CreateServiceRequest, vmctl.v1.ICreateServiceEvent>("CreateServiceWithProgress", async function* (req, signal) {
      const input = createInputFromProto(req);
      for await (const event of progressStream((progress) => engine.create(input, { progress }), signal)) {
        yield "progress" in event ? { progress: progressToProto(event.progress) } : { service: serviceToProto(event.result) };
      }
    }),
    // A client that goes away ends its stream; the pull goes on in the background, so the
    // next pull or run of the image finds it (or joins it).
    pullImage: streaming<vmctl.v1.PullImageRequest, vmctl.v1.IPullImageEvent>("PullImage", async function* (req, signal) {
      const reference = checkImageReference(req.reference);
      const store = images();
      for await (const event of progressStream((progress) => store.pull(reference, { progress, field: REFERENCE_FIELD }), signal)) {
        yield "progress" in event ? { progress: progressToProto(event.progress) } : { image: imageToProto(event.result) };
      }
    }),
    listImages: unary<vmctl.v1.ListImagesRequest, vmctl.v1.IListImagesResponse>("ListImages", () => ({ images: images().list().map(imageToProto) })),
    inspectImage: unary<vmctl.v1.ImageRef, vmctl.v1.IImage>("InspectImage", (req) => {
      const reference = checkImageReference(req.reference);
      return imageToProto(images().inspect(reference, { field: REFERENCE_FIELD }));
    }),
    removeImage: unary<vmctl.v1.RemoveImageRequest, vmctl.v1.IRemoveImageResponse>("RemoveImage", async (req) => {
      const reference = checkImageReference(req.reference);
      return removedToProto(await images().remove(reference, { force: req.force === true, field: REFERENCE_FIELD }));
    }),
    pruneImages: unary<vmctl.v1.PruneImagesRequest, vmctl.v1.IPruneImagesResponse>("PruneImages", async (req) => {
      return prunedToProto(await images().prune({ all: req.all === true }));
    }),
    pruneSystem: unary<vmctl.v1.PruneSystemRequest, vmctl.v1.IPruneSystemResponse>("PruneSystem", async (req) => {
      if (engine.prune === undefined) throw new VmctlError("UNIMPLEMENTED", "this vmctld cannot prune");
      return pruneReportToProto(await engine.prune({ dryRun: req.dryRun === true }));
    }),
    createNetwork: unary<vmctl.v1.CreateNetworkRequest, vmctl.v1.INetwork>("CreateNetwork", async (req) =>
      networkToProto(await engine.createNetwork(createNetworkFromProto(req))),
    ),
    listNetworks: unary<vmctl.v1.ListNetworksRequest, vmctl.v1.IListNetworksResponse>("ListNetworks", () => ({
      networks: engine.listNetworks().map(networkToProto),
    })),
    getNetwork: unary<vmctl.v1.NetworkRef, vmctl.v1.INetwork>("GetNetwork", (req) => networkToProto(engine.getNetwork(req.name))),
    deleteNetwork: unary<vmctl.v1.NetworkRef, vmctl.v1.IDeleteNetworkResponse>("DeleteNetwork", async (req) => {
      await engine.deleteNetwork(req.name);
      return {};
    }),
  };
}
