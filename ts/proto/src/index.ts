// Public surface of @vmctl/proto: protobuf messages by package, service definitions
// for servers, and typed clients.
export { google, vmctl, vmm } from "./gen/protos.js";
export { OrchestratorClient, OrchestratorService, VmmClient, VmmService } from "./gen/services.js";
export { jsonFromStruct, jsonFromValue, structFromJson, valueFromJson } from "./struct.js";
export type { JsonValue } from "./struct.js";
export type {
  BidiStreamingMethod,
  ClientStreamingMethod,
  ServerStreamingMethod,
  UnaryMethod,
} from "./rpc-types.js";
