// Server reflection as a stock client sees it: Python's grpcio-reflection (pinned, in the
// venv scripts/setup makes) describes every method of vmctl.v1.Orchestrator, fetches
// vmctl/v1/vmctl.proto by name, resolves google.protobuf.Struct, and calls ListTargets
// with messages built from reflection alone. Before vmctld served protoc's descriptors it
// failed with "couldn't resolve name 'google.protobuf.Struct'".
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import test from "ava";
import { silentLogger } from "@vmctl/core";
import { startVmctld } from "@vmctl/server";

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));
const CLIENT = here("../support/stock-reflection-client.py");
const PROCESS_PLUGIN = here("../fixtures/vmctl-plugin-process");
const PROTO = here("../../proto/vmctl/v1/vmctl.proto");

/** The venv's python; throws (never skips) when scripts/setup has not made it. */
function stockPython(): string {
  const python = join(process.env.VMCTL_GRPC_VENV ?? "/var/cache/vmctl/grpc", "bin", "python");
  if (!existsSync(python)) throw new Error(`${python} is missing: run scripts/setup (it installs grpcio and grpcio-reflection)`);
  return python;
}

interface Described {
  services: string[];
  v1_services: string[];
  methods: Record<string, { input: string; output: string; server_streaming: boolean; client_streaming: boolean }>;
  messages: Record<string, { map_entry: boolean; fields: { name: string; number: number; type: string | number; optional: boolean }[] }>;
  file: { name: string; package: string; dependency: string[]; syntax: string };
  struct_file: string;
  targets: { name: string; status: string; exec: boolean }[];
  missing_file: string;
}

test("a stock Python client describes every method from reflection alone and calls ListTargets", async (t) => {
  t.timeout(60_000);
  const python = stockPython();
  const dir = mkdtempSync(join(tmpdir(), "vmctl-reflection-"));
  const daemon = await startVmctld({ stateDir: join(dir, "state"), socketPath: join(dir, "d.sock"), builtins: false, plugins: [PROCESS_PLUGIN], log: silentLogger });
  try {
    const { stdout } = await promisify(execFile)(python, [CLIENT, `unix://${daemon.socketPath}`], { timeout: 45_000 });
    const found = JSON.parse(stdout) as Described;

    t.deepEqual(found.services, ["vmctl.v1.Orchestrator"]);
    t.deepEqual(found.v1_services, ["vmctl.v1.Orchestrator"]);
    // every rpc in the .proto, with its types fully qualified
    const rpcs = [...readFileSync(PROTO, "utf8").matchAll(/^\s*rpc (\w+)\((stream )?(\w+)\) returns \((stream )?(\w+)\)/gm)];
    t.true(rpcs.length >= 13, `${rpcs.length} rpcs`);
    t.deepEqual(Object.keys(found.methods).sort(), rpcs.map((m) => m[1]).sort());
    for (const [, name, inStream, input, outStream, output] of rpcs) {
      t.deepEqual(found.methods[name as string], { input: `vmctl.v1.${input}`, output: `vmctl.v1.${output}`, server_streaming: outStream !== undefined, client_streaming: inStream !== undefined }, name);
    }
    // the real file, with its import; Struct resolved from google/protobuf/struct.proto
    t.deepEqual(found.file, { name: "vmctl/v1/vmctl.proto", package: "vmctl.v1", dependency: ["google/protobuf/struct.proto"], syntax: "proto3" });
    t.is(found.struct_file, "google/protobuf/struct.proto");
    t.truthy(found.messages["google.protobuf.Struct"]);
    t.truthy(found.messages["google.protobuf.Value"]);
    t.deepEqual(found.messages["google.protobuf.Value"]?.fields.map((f) => f.name), ["null_value", "number_value", "string_value", "bool_value", "struct_value", "list_value"]);
    // map entries as protoc names them; proto3 optional kept
    const labels = found.messages["vmctl.v1.CreateServiceRequest"]?.fields.find((f) => f.name === "labels");
    t.is(labels?.type, "vmctl.v1.CreateServiceRequest.LabelsEntry");
    t.true(found.messages["vmctl.v1.CreateServiceRequest.LabelsEntry"]?.map_entry);
    t.true(found.messages["vmctl.v1.StopServiceRequest"]?.fields.find((f) => f.name === "timeout_ms")?.optional);
    t.false(found.messages["vmctl.v1.StopServiceRequest"]?.fields.find((f) => f.name === "id")?.optional);
    // the call, built from reflected descriptors only
    t.deepEqual(found.targets, daemon.engine.targets().map((x) => ({ name: x.name, status: x.status, exec: x.capabilities.exec })));
    t.is(found.targets[0]?.name, "process");
    t.is(found.missing_file, "not found");
  } finally {
    await daemon.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
