// The plugin conformance kit against the aws-ec2 target: moto in server mode on loopback
// for the AWS API, the instance simulator (testing/simulator.ts) playing the guests.
import test from "ava";
import { builtPluginPath, conformanceTests } from "@vmctl/plugin-conformance";
import { startMoto, MOTO_REGION } from "./testing/moto.js";
import { InstanceSimulator } from "./testing/simulator.js";
import { fastOptions, useMotoCredentials } from "./testing/context.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DescribeImagesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { MOTO_CREDENTIALS } from "./testing/moto.js";

// Built and current, or this file fails here saying what to build (never skipped).
const pluginPath = builtPluginPath(new URL("..", import.meta.url));

useMotoCredentials();
const dir = mkdtempSync(join(tmpdir(), "vmctl-ec2-conformance-"));
const moto = await startMoto();
const sim = await InstanceSimulator.start({ motoEndpoint: moto.endpoint, dir: join(dir, "guests"), graceMs: 500 });
const ec2 = new EC2Client({ endpoint: moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS });
const imageId = (await ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] }))).Images?.find((i) => /^ami-[0-9a-f]{8}$/.test(i.ImageId ?? ""))?.ImageId;
ec2.destroy();
if (!imageId) throw new Error("moto lists no AMI");

const sh = (script: string) => ({ imageId, args: ["sh", "-c", script] });

conformanceTests(
  test,
  {
    // The package directory (its built dist, loaded as vmctld loads it): the restart checks
    // then run the first orchestrator in a fresh process, adopt/interrupted-start included.
    pluginPath,
    options: { targetOptions: fastOptions(sim.endpoint, "vmctl-conformance") },
    fixtures: {
      specs: {
        exitsWith: (code) => ({ spec: sh(`echo "conformance exit ${code}"; exit ${code}`), line: `conformance exit ${code}` }),
        runsUntilStopped: () => ({ spec: sh("while :; do echo tick; sleep 0.05; done"), line: "tick" }),
        ignoresPoliteStop: () => ({ spec: sh("trap '' TERM INT; echo ignoring; while :; do sleep 0.05; done"), line: "ignoring" }),
        invalid: [
          { spec: { imageId: "ubuntu", args: ["true"] }, field: "imageId" },
          { spec: { imageId, args: [] }, field: "args" },
          { spec: { imageId, args: ["sh", 1] }, field: "args[1]" },
          { spec: { imageId, args: ["true"], env: { "NOT-AN-IDENTIFIER": "x" } }, field: "env.NOT-AN-IDENTIFIER" },
          { spec: { imageId, args: ["true"], securityGroupIds: ["sg-12345678", "default"] }, field: "securityGroupIds[1]" },
          { spec: { imageId, args: ["true"], reportExpirySeconds: 8 * 24 * 3600 }, field: "reportExpirySeconds" },
          { spec: { imageId, args: ["true"], bogus: true }, field: "bogus" },
        ],
      },
    },
  },
  { title: "aws-ec2 conformance: " },
);

test.after.always(async () => {
  await sim.close();
  await moto.stop();
  rmSync(dir, { recursive: true, force: true });
});
