// gRPC server reflection (grpcurl, grpcui...) from the same .proto files the API is
// generated from: shipped in dist/proto by the build, read from the repository in dev.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";

const API_FILE = "vmctl/v1/vmctl.proto";

/** The directory holding vmctl/v1/vmctl.proto. */
export function protoDir(): string {
  const candidates = [new URL("./proto/", import.meta.url), new URL("../../../proto/", import.meta.url)];
  for (const url of candidates) {
    const dir = fileURLToPath(url);
    if (existsSync(`${dir}${API_FILE}`)) return dir;
  }
  throw new Error(`cannot find ${API_FILE} next to ${fileURLToPath(import.meta.url)} (rebuild @vmctl/server)`);
}

export function addReflection(server: grpc.Server): void {
  const definition = loadSync(API_FILE, { includeDirs: [protoDir()], keepCase: true });
  new ReflectionService(definition).addToServer(server);
}
