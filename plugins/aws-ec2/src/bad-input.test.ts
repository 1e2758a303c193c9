// Bad setups fail at create time with a clear error and leave nothing on the target:
// an endpoint that is down, credentials moto refuses, a missing AMI, a missing bucket.
import test from "ava";
import { DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { MemoryLogger } from "@vmctl/plugin-conformance";
import { initAwsEc2 } from "./index.js";
import { ec2TestBed } from "./testing/context.js";
import { freePort, MOTO_CREDENTIALS, MOTO_REGION, startMoto } from "./testing/moto.js";

const bed = await ec2TestBed("vmctl-ec2-bad-");
test.after.always(() => bed.close());

function errorOf(err: unknown): { name?: string; code?: string; message: string } {
  return err as { name?: string; code?: string; message: string };
}

test("an endpoint with nothing listening: UNAVAILABLE at create, naming the endpoint", async (t) => {
  const endpoint = `http://127.0.0.1:${await freePort()}`;
  const factory = initAwsEc2({ stateDir: bed.dir, options: { endpoint, logBucket: "logs-1" }, log: new MemoryLogger() });
  const ctx = bed.context("down-1");
  const err = errorOf(await t.throwsAsync(factory.create("down-1", factory.validate({ imageId: bed.imageId, args: ["true"] }), ctx)));
  t.is(err.name, "VmctlError");
  t.is(err.code, "UNAVAILABLE");
  t.true(err.message.includes(endpoint), err.message);
  t.regex(err.message, /ECONNREFUSED/);
  t.deepEqual(ctx.resources.list(), []);
  await factory.close();
});

test("credentials refused (moto checking access keys): PERMISSION_DENIED at create, nothing made", async (t) => {
  const moto = await startMoto({ enforceAuth: true });
  t.teardown(() => moto.stop());
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  // Bogus keys through the SDK's standard chain, as a user with a wrong ~/.aws would have.
  process.env.AWS_ACCESS_KEY_ID = "AKIAIOSFODNN7BOGUS00";
  process.env.AWS_SECRET_ACCESS_KEY = "bogus-secret";
  const factory = initAwsEc2({ stateDir: bed.dir, options: { endpoint: moto.endpoint, logBucket: "logs-1", createLogBucket: true }, log: new MemoryLogger() });
  const ctx = bed.context("auth-1");
  try {
    const err = errorOf(await t.throwsAsync(factory.create("auth-1", factory.validate({ imageId: bed.imageId, args: ["true"] }), ctx)));
    t.is(err.code, "PERMISSION_DENIED");
    t.regex(err.message, /credentials were refused/);
    t.true(err.message.includes(moto.endpoint), err.message);
  } finally {
    process.env.AWS_ACCESS_KEY_ID = saved.id;
    process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    await factory.close();
  }
  t.deepEqual(ctx.resources.list(), []);
  // Look with checks off again: no instance, no bucket, no object.
  await moto.setAuthFreeRequests(Infinity);
  const ec2 = new EC2Client({ endpoint: moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS });
  const s3 = new S3Client({ endpoint: moto.endpoint, region: MOTO_REGION, credentials: MOTO_CREDENTIALS, forcePathStyle: true });
  t.teardown(() => (ec2.destroy(), s3.destroy()));
  const instances = await ec2.send(new DescribeInstancesCommand({}));
  t.deepEqual(instances.Reservations ?? [], []);
  await t.throwsAsync(s3.send(new ListObjectsV2Command({ Bucket: "logs-1" })), { name: "NoSuchBucket" });
});

test("an AMI the account does not have: NOT_FOUND at create", async (t) => {
  const factory = bed.factory();
  const err = errorOf(await t.throwsAsync(factory.create("img-1", factory.validate({ imageId: "ami-00000000", args: ["true"] }), bed.context("img-1"))));
  t.is(err.code, "NOT_FOUND");
  t.regex(err.message, /ami-00000000/);
});

test("a missing log bucket without createLogBucket: FAILED_PRECONDITION naming the bucket", async (t) => {
  const factory = bed.factory({ createLogBucket: false, logBucket: "no-such-bucket-here" });
  const err = errorOf(await t.throwsAsync(factory.create("bkt-1", factory.validate({ imageId: bed.imageId, args: ["true"] }), bed.context("bkt-1"))));
  t.is(err.code, "FAILED_PRECONDITION");
  t.regex(err.message, /no-such-bucket-here does not exist/);
  t.deepEqual(await bed.liveInstances("bkt-1"), []);
});
