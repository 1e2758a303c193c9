// Public surface of @vmctl/proto: protobuf messages by package (`agent` is the guest
// agent's agent.v1; google.rpc's error model), service definitions for servers, typed
// clients (AgentClient, OrchestratorClient, VmmClient), the compiled descriptors, and the
// codec (src/codec/): vmctl.v1 messages and error details ↔ the orchestrator API's types.
export { agent, google, vmctl, vmm } from "./gen/protos.js";
export { AgentClient, AgentService, OrchestratorClient, OrchestratorService, VmmClient, VmmService } from "./gen/services.js";
export { jsonFromStruct, jsonFromValue, MAX_JSON_DEPTH, structFromJson, StructDepthError, valueFromJson } from "./struct.js";
export type { JsonValue } from "./struct.js";
export { decodeRequest, MalformedMessage } from "./decode-request.js";
export { MAX_MESSAGE_DEPTH } from "./wire-diagnosis.js";
export type { MapWireField, WireField, WireSchema, WireValue } from "./wire-diagnosis.js";
export { WIRE_SCHEMA } from "./gen/wire-schema.js";
export { API_FILES, descriptorSet } from "./descriptors.js";
export type {
  BidiStreamingMethod,
  ClientStreamingMethod,
  ServerStreamingMethod,
  UnaryMethod,
} from "./rpc-types.js";
export { decodeRichStatus, encodeRichStatus, STATUS_DETAILS_KEY } from "./rich-status.js";
export type { FieldViolation, RichStatus } from "./rich-status.js";
export { eventKind, logStream, policyMode, servicePhase } from "./codec/enums.js";
export {
  createNetworkFromProto,
  createNetworkToProto,
  networkFromProto,
  networkToProto,
  policyFromProto,
  policyToProto,
  portFromProto,
  portToProto,
  serviceNetworkFromProto,
  serviceNetworkToProto,
} from "./codec/networks.js";
export type { EnumCodec } from "./codec/enums.js";
export {
  createInputFromProto,
  createRequestToProto,
  eventFromProto,
  eventToProto,
  exitFromProto,
  exitToProto,
  filterFromProto,
  filterToProto,
  logChunkFromProto,
  logChunkToProto,
  readinessFromProto,
  readinessToProto,
  serviceFromProto,
  serviceToProto,
  targetFromProto,
  targetToProto,
} from "./codec/services.js";
export type { CreateServiceRequestInput } from "./codec/services.js";
export { execInputFromProto, execOutputFromProto, execOutputToProto, execStartToProto } from "./codec/exec.js";
export type { ExecInputMessage, ExecOutputMessage } from "./codec/exec.js";
export {
  imageFromProto,
  imageToProto,
  progressFromProto,
  progressToProto,
  prunedFromProto,
  prunedToProto,
  removedFromProto,
  removedToProto,
} from "./codec/images.js";
export type { Image, ImageSource, PrunedImages, RemovedImage } from "./codec/images.js";
export { pruneReportFromProto, pruneReportToProto } from "./codec/system-prune.js";
export { errorFromStatus, isServiceError } from "./codec/status-error.js";
export { boundedText, decodeErrorDetails, DETAIL_METADATA_KEYS, encodeErrorDetails, ERROR_DOMAIN } from "./codec/error-details.js";
export type { ErrorDetailsSource } from "./codec/error-details.js";
