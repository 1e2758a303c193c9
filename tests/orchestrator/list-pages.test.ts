// ListServices in pages against a real vmctld: 300 services with 16 KiB of labels each
// (4.8 MB, over gRPC's 4 MiB message limit in one answer — `vmctl ps` once failed for
// everyone past that) come back in pages under the limit; the client and `vmctl ps`
// follow them transparently.
import * as grpc from "@grpc/grpc-js";
import test from "ava";
import { LIMITS } from "@vmctl/core";
import { vmctl } from "@vmctl/proto";
import { Daemon, PROCESS_PLUGIN_FIXTURE, sandbox, teardown, vmctl as cli } from "./helpers/sandbox.js";
import { RawOrchestrator } from "./helpers/raw-client.js";

const COUNT = 300;

test("300 services of 16 KiB labels: pages under the limit, client.list and vmctl ps see them all", async (t) => {
  t.timeout(180_000);
  const sb = sandbox("vmctl-pages-");
  const daemon = await Daemon.start(sb, { plugins: [PROCESS_PLUGIN_FIXTURE] });
  const raw = new RawOrchestrator(sb.socket);
  try {
    const labels = Object.fromEntries(Array.from({ length: LIMITS.labelCount }, (_, i) => [`k${i}`, "v".repeat(250)]));
    const ids = new Set<string>();
    for (let i = 0; i < COUNT; i++) ids.add((await daemon.client.create({ name: `s${i}`, target: "process", spec: { args: ["true"] }, labels })).id);

    // one answer: a page under LIMITS.pageBytes, with a token to go on
    const first = await raw.call("listServices", Buffer.alloc(0), 30_000);
    t.is(first.code, grpc.status.OK, first.message);
    const page = vmctl.v1.ListServicesResponse.decode(first.responses[0] as Buffer);
    t.true(page.services.length > 0 && page.services.length < COUNT, `${page.services.length} services`);
    t.true((first.responses[0] as Buffer).length < LIMITS.pageBytes + 4096);
    t.not(page.nextPageToken, "");

    // page_size is honoured; a token from another filter is refused naming pageToken
    const small = await raw.call("listServices", Buffer.from(vmctl.v1.ListServicesRequest.encode({ pageSize: 7 }).finish()), 30_000);
    t.is(vmctl.v1.ListServicesResponse.decode(small.responses[0] as Buffer).services.length, 7);
    const wrongFilter = await raw.call("listServices", Buffer.from(vmctl.v1.ListServicesRequest.encode({ target: "oci", pageToken: page.nextPageToken }).finish()), 30_000);
    t.is(wrongFilter.code, grpc.status.INVALID_ARGUMENT);
    t.is(wrongFilter.details.field, "pageToken");

    const listed = await daemon.client.list();
    t.is(listed.length, COUNT);
    t.deepEqual(new Set(listed.map((s) => s.id)), ids);
    t.deepEqual(listed.map((s) => s.name), Array.from({ length: COUNT }, (_, i) => `s${i}`));

    const ps = await cli(sb, ["ps", "-a"], { timeoutMs: 60_000 });
    t.is(ps.code, 0, ps.stderr);
    t.is(ps.stdout.trim().split("\n").length, COUNT + 1);
  } finally {
    raw.close();
    await teardown(sb, [daemon]);
  }
});
