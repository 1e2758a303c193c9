// The aws-ec2 target through vmctld and the CLI, against moto (and the instance
// simulator playing the guest, as moto runs none): target options come from the
// daemon's config file, credentials from the SDK's own chain (env vars).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { ec2TestBed, fastOptions, type Ec2TestBed } from "../../plugins/aws-ec2/src/testing/context.js";
import { Daemon, sandbox, teardown, vmctl, type Sandbox } from "./helpers/sandbox.js";

let bed: Ec2TestBed;
let sb: Sandbox;
let daemon: Daemon;

test.before(async () => {
  bed = await ec2TestBed("vmctl-e2e-ec2-");
  sb = sandbox("vmctl-e2e-ec2-daemon-");
  const config = join(sb.dir, "config.json");
  writeFileSync(config, JSON.stringify({ targets: { "aws-ec2": fastOptions(bed.sim.endpoint, bed.bucket) } }));
  daemon = await Daemon.start(sb, { extraArgs: ["--config", config] });
});

test.after.always(async () => {
  await teardown(sb, [daemon]);
  await bed?.close();
});

/** Instances vmctl made here (tagged with a service id) that are not terminated. */
async function liveVmctlInstances(): Promise<string[]> {
  const { DescribeInstancesCommand } = await import("@aws-sdk/client-ec2");
  const out = await bed.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "tag-key", Values: ["vmctl.io/service"] }] }));
  return (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).filter((i) => i.State?.Name !== "terminated").map((i) => i.InstanceId ?? "?");
}

test.serial("vmctl targets lists aws-ec2 with its capabilities", async (t) => {
  const result = await vmctl(sb, ["targets", "--json"]);
  t.is(result.code, 0, result.stderr);
  const targets = JSON.parse(result.stdout) as { name: string; status: string; capabilities: Record<string, boolean> }[];
  const ec2 = targets.find((x) => x.name === "aws-ec2");
  t.is(ec2?.status, "ready", result.stdout);
  t.true(ec2?.capabilities.logsFollow);
  t.false(ec2?.capabilities.exec);
});

test.serial("vmctl run --rm --target aws-ec2 AMI -- CMD prints the guest's output, exits with its code, and leaves nothing", async (t) => {
  const result = await vmctl(sb, ["run", "--rm", "--target", "aws-ec2", bed.imageId, "--", "sh", "-c", "echo from-ec2; echo to-stderr >&2; exit 5"]);
  t.is(result.code, 5, result.stderr);
  t.is(result.stdout, "from-ec2\n");
  t.true(result.stderr.includes("to-stderr"), result.stderr);
  t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout), []);
  t.deepEqual(await liveVmctlInstances(), []);
  t.deepEqual(await bed.objects(), []);
});

test.serial("an AMI that does not exist is refused at create in one line, and nothing is made", async (t) => {
  const result = await vmctl(sb, ["run", "--rm", "--target", "aws-ec2", "ami-0000000000000000f", "--", "true"]);
  t.not(result.code, 0);
  t.log(result.stderr.trim());
  t.is(result.stdout, "");
  t.is(result.stderr.trim().split("\n").length, 1, result.stderr);
  t.regex(result.stderr, /ami-0000000000000000f/);
  t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout), []);
  t.deepEqual(await liveVmctlInstances(), []);
});
