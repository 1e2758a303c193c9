// Public surface of @vmctl/proto: protobuf messages by package, service definitions
// for servers, and typed clients.
export { vmm } from "./gen/protos.js";
export { VmmClient, VmmService } from "./gen/services.js";
export type {
  BidiStreamingMethod,
  ClientStreamingMethod,
  ServerStreamingMethod,
  UnaryMethod,
} from "./rpc-types.js";
