// The compiled descriptors of the API files, as protoc wrote them at build time: what
// server reflection serves (grpcurl, Python's grpcio-reflection...). Served as they are,
// never re-serialised, so file names, imports and type names stay protoc's.
import { DESCRIPTOR_SETS } from "./gen/descriptor-sets.js";

/** API files that declare a service ("vmctl/v1/vmctl.proto", "vmm/v1/vmm.proto"). */
export const API_FILES: readonly string[] = Object.keys(DESCRIPTOR_SETS).sort();

/** The serialized google.protobuf.FileDescriptorSet of `file`, its imports first (protoc --include_imports). */
export function descriptorSet(file: string): Uint8Array {
  const base64 = DESCRIPTOR_SETS[file];
  if (base64 === undefined) throw new Error(`no descriptor set for ${file} (have: ${API_FILES.join(", ")})`);
  return Buffer.from(base64, "base64");
}
