// Test fixtures for the aws-ec2 target: one moto server and one instance simulator per
// test file, the SDK's credential chain pointed at moto's test keys, factories with
// fast poll intervals, TargetContexts over a temp dir, and "what is left" queries.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DescribeImagesCommand, DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import type { OwnedResource } from "@vmctl/core/contract";
import { MemoryLogger, testTargetContext, type TestTargetContext } from "@vmctl/plugin-conformance";
import { initAwsEc2 } from "../index.js";
import type { Ec2Factory } from "../factory.js";
import { MOTO_CREDENTIALS, MOTO_REGION, startMoto, type MotoServer } from "./moto.js";
import { InstanceSimulator } from "./simulator.js";

export type TestContext = TestTargetContext;

/** The test keys and region through the SDK's own chain (env vars), as a user would set them. */
export function useMotoCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = MOTO_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = MOTO_CREDENTIALS.secretAccessKey;
  process.env.AWS_REGION = MOTO_REGION;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
}

/** Options the tests run the target with: fast polls and uploads, the simulator's endpoint. */
export function fastOptions(endpoint: string, bucket: string): Record<string, unknown> {
  return {
    endpoint,
    logBucket: bucket,
    createLogBucket: true,
    pollIntervalMs: 50,
    logFlushSeconds: 0.1,
    terminateWaitMs: 10_000,
  };
}

export interface Ec2TestBed {
  readonly dir: string;
  readonly moto: MotoServer;
  readonly sim: InstanceSimulator;
  readonly bucket: string;
  /** An AMI moto knows. */
  readonly imageId: string;
  /** Clients straight to moto (not through the simulator), for assertions. */
  readonly ec2: EC2Client;
  readonly s3: S3Client;
  factory(options?: Record<string, unknown>): Ec2Factory;
  context(serviceId: string, resources?: readonly OwnedResource[]): TestContext;
  /** Instances carrying `vmctl.io/service` = id that are not terminated. */
  liveInstances(serviceId: string): Promise<string[]>;
  objects(prefix?: string): Promise<string[]>;
  close(): Promise<void>;
}

export const TEST_OWNER = "aws-ec2-tests";

export async function ec2TestBed(prefix: string): Promise<Ec2TestBed> {
  useMotoCredentials();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const moto = await startMoto();
  const sim = await InstanceSimulator.start({ motoEndpoint: moto.endpoint, dir: join(dir, "guests") });
  const ec2 = new EC2Client({ endpoint: moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS });
  const s3 = new S3Client({ endpoint: moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, forcePathStyle: true });
  const images = await ec2.send(new DescribeImagesCommand({ Owners: ["amazon"] }));
  const imageId = images.Images?.find((i) => i.ImageId && /^ami-[0-9a-f]{8}$/.test(i.ImageId))?.ImageId;
  if (!imageId) throw new Error("moto lists no AMI");
  const bucket = "vmctl-test-logs";
  const factories: Ec2Factory[] = [];
  return {
    dir,
    moto,
    sim,
    bucket,
    imageId,
    ec2,
    s3,
    factory(options = {}) {
      const f = initAwsEc2({ stateDir: join(dir, "state"), options: { ...fastOptions(sim.endpoint, bucket), ...options }, log: new MemoryLogger() });
      factories.push(f);
      return f;
    },
    context: (serviceId, resources = []) => testTargetContext(dir, serviceId, { owner: TEST_OWNER, resources }),
    async liveInstances(serviceId) {
      const out = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "tag:vmctl.io/service", Values: [serviceId] }] }));
      return (out.Reservations ?? [])
        .flatMap((r) => r.Instances ?? [])
        .filter((i) => i.State?.Name !== "terminated")
        .map((i) => i.InstanceId ?? "");
    },
    async objects(prefix = "vmctl/") {
      try {
        const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
        return (out.Contents ?? []).map((o) => o.Key ?? "");
      } catch (err) {
        if ((err as { name?: string }).name === "NoSuchBucket") return [];
        throw err;
      }
    },
    async close() {
      await Promise.all(factories.map((f) => f.close()));
      await sim.close();
      await moto.stop();
      ec2.destroy();
      s3.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
