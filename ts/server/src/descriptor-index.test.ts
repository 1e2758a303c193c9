import test from "ava";
import { descriptorSet } from "@vmctl/proto";
import { DescriptorIndex } from "./descriptor-index.js";

const index = DescriptorIndex.fromSet(descriptorSet("vmctl/v1/vmctl.proto"));
const names = (files: Uint8Array[] | undefined): string[] =>
  (files ?? []).map((bytes) => {
    // field 1 of a FileDescriptorProto is its name, written first by protoc
    const length = bytes[1] as number;
    return Buffer.from(bytes.subarray(2, 2 + length)).toString("utf8");
  });

test("files by name come with their imports, as protoc wrote them", (t) => {
  t.deepEqual(names(index.fileByName("vmctl/v1/vmctl.proto")), ["vmctl/v1/vmctl.proto", "google/protobuf/struct.proto"]);
  t.deepEqual(names(index.fileByName("google/protobuf/struct.proto")), ["google/protobuf/struct.proto"]);
  t.is(index.fileByName("vmctl_v1.proto"), undefined);
  // the very bytes of the set, not a re-encoding
  const set = Buffer.from(descriptorSet("vmctl/v1/vmctl.proto"));
  for (const file of index.fileByName("vmctl/v1/vmctl.proto") ?? []) t.true(set.includes(Buffer.from(file)));
});

test("every kind of symbol resolves to its file, fully qualified, with or without a leading dot", (t) => {
  for (const symbol of [
    "vmctl.v1.Orchestrator",
    "vmctl.v1.Orchestrator.ListTargets",
    "vmctl.v1.CreateServiceRequest",
    "vmctl.v1.CreateServiceRequest.labels",
    "vmctl.v1.CreateServiceRequest.LabelsEntry",
    "vmctl.v1.Phase",
    "vmctl.v1.PHASE_RUNNING",
    "vmctl.v1.ServiceEvent.Kind",
    "vmctl.v1.ServiceEvent.KIND_CREATED",
    "vmctl.v1.Readiness.check",
    ".vmctl.v1.ServiceRef",
  ]) {
    t.deepEqual(names(index.fileContainingSymbol(symbol)), ["vmctl/v1/vmctl.proto", "google/protobuf/struct.proto"], symbol);
  }
  t.deepEqual(names(index.fileContainingSymbol("google.protobuf.Struct")), ["google/protobuf/struct.proto"]);
  t.is(index.fileContainingSymbol("Struct"), undefined);
  t.is(index.fileContainingSymbol("vmctl.v1.Nope"), undefined);
  t.deepEqual(index.services, ["vmctl.v1.Orchestrator"]);
  t.true(index.isMessage("google.protobuf.Value"));
  t.false(index.isMessage("vmctl.v1.Phase"));
});
