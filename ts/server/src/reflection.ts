// gRPC server reflection (grpc.reflection.v1 and v1alpha, what grpcurl, grpcui and
// Python's grpcio-reflection speak), served from the descriptor set protoc compiled at
// build time (@vmctl/proto). @grpc/reflection is not used for the answers: it rebuilds
// descriptors through protobufjs, which renamed the file, dropped the import of
// google/protobuf/struct.proto, used relative type names and lost proto3 optional, so
// stock clients could not resolve google.protobuf.Struct. Its package still supplies
// reflection.proto, the protocol itself, read with proto-loader.
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { descriptorSet } from "@vmctl/proto";
import { DescriptorIndex } from "./descriptor-index.js";

/** The API file vmctld describes, as protoc names it. */
export const API_FILE = "vmctl/v1/vmctl.proto";
const VERSIONS = ["v1", "v1alpha"] as const;

/** ServerReflectionRequest as proto-loader gives it (keepCase, oneofs). */
interface ReflectionRequest {
  host?: string;
  message_request?: "file_by_filename" | "file_containing_symbol" | "file_containing_extension" | "all_extension_numbers_of_type" | "list_services";
  file_by_filename?: string;
  file_containing_symbol?: string;
  file_containing_extension?: { containing_type?: string; extension_number?: number };
  all_extension_numbers_of_type?: string;
  list_services?: string;
}

type ReflectionAnswer =
  | { file_descriptor_response: { file_descriptor_proto: Uint8Array[] } }
  | { all_extension_numbers_response: { base_type_name: string; extension_number: number[] } }
  | { list_services_response: { service: { name: string }[] } }
  | { error_response: { error_code: number; error_message: string } };

const MALFORMED = Symbol("malformed reflection request");

function notFound(what: string): ReflectionAnswer {
  return { error_response: { error_code: grpc.status.NOT_FOUND, error_message: what } };
}

/** The answer to one reflection request (the same for v1 and v1alpha: their messages are wire-identical). */
export function answer(index: DescriptorIndex, request: ReflectionRequest): ReflectionAnswer {
  const files = (found: Uint8Array[] | undefined, what: string): ReflectionAnswer =>
    found === undefined ? notFound(what) : { file_descriptor_response: { file_descriptor_proto: found } };
  switch (request.message_request) {
    case "list_services":
      return { list_services_response: { service: index.services.map((name) => ({ name })) } };
    case "file_by_filename":
      return files(index.fileByName(request.file_by_filename ?? ""), `no file ${JSON.stringify(request.file_by_filename ?? "")}`);
    case "file_containing_symbol":
      return files(index.fileContainingSymbol(request.file_containing_symbol ?? ""), `no symbol ${JSON.stringify(request.file_containing_symbol ?? "")}`);
    case "file_containing_extension":
      // The API declares no extensions.
      return notFound(`no extension ${request.file_containing_extension?.extension_number ?? 0} of ${JSON.stringify(request.file_containing_extension?.containing_type ?? "")}`);
    case "all_extension_numbers_of_type": {
      const type = request.all_extension_numbers_of_type ?? "";
      return index.isMessage(type) ? { all_extension_numbers_response: { base_type_name: type, extension_number: [] } } : notFound(`no message type ${JSON.stringify(type)}`);
    }
    default:
      return { error_response: { error_code: grpc.status.INVALID_ARGUMENT, error_message: "no message_request set" } };
  }
}

/** reflection.proto of `version`, from the @grpc/reflection package. */
function reflectionProto(version: (typeof VERSIONS)[number]): string {
  return createRequire(import.meta.url).resolve(`@grpc/reflection/build/proto/grpc/reflection/${version}/reflection.proto`);
}

export function addReflection(server: grpc.Server, index: DescriptorIndex = DescriptorIndex.fromSet(descriptorSet(API_FILE))): void {
  for (const version of VERSIONS) {
    const definition = loadSync(reflectionProto(version), { keepCase: true, oneofs: true, longs: Number, enums: Number, defaults: false });
    const service = definition[`grpc.reflection.${version}.ServerReflection`] as grpc.ServiceDefinition;
    const method = service.ServerReflectionInfo as grpc.MethodDefinition<ReflectionRequest, unknown>;
    // A request that does not decode ends the stream INVALID_ARGUMENT, not INTERNAL.
    const safe = {
      ServerReflectionInfo: {
        ...method,
        requestDeserialize: (bytes: Buffer): ReflectionRequest | typeof MALFORMED => {
          try {
            return method.requestDeserialize(bytes);
          } catch {
            return MALFORMED;
          }
        },
      },
    };
    server.addService(safe, {
      ServerReflectionInfo: (call: grpc.ServerDuplexStream<ReflectionRequest | typeof MALFORMED, unknown>) => {
        call.on("data", (request: ReflectionRequest | typeof MALFORMED) => {
          try {
            if (request === MALFORMED) {
              call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: `malformed grpc.reflection.${version}.ServerReflectionRequest` });
              return;
            }
            call.write({ valid_host: request.host ?? "", original_request: request, ...answer(index, request) });
          } catch (err) {
            call.emit("error", { code: grpc.status.INTERNAL, details: `reflection: ${err instanceof Error ? err.message : String(err)}` });
          }
        });
        call.on("end", () => call.end());
        call.on("error", () => {});
      },
    });
  }
}
