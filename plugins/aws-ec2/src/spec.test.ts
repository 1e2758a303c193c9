// Spec and target-option validation: field paths, unknown fields, defaults left out.
import test from "ava";
import { parseEc2Spec, MAX_REPORT_EXPIRY_SECONDS } from "./spec.js";
import { parseTargetOptions } from "./options.js";
import { Ec2Factory } from "./factory.js";
import { MemoryLogger } from "@vmctl/plugin-conformance";

const base = { imageId: "ami-0123456789abcdef0", args: ["echo", "hi"] };

function fieldOf(t: import("ava").ExecutionContext, f: () => unknown): string | undefined {
  const err = t.throws(f) as { name?: string; field?: string; code?: string } | undefined;
  t.is(err?.name, "ValidationError");
  t.is(err?.code, "INVALID_ARGUMENT");
  return err?.field;
}

test("a full spec validates and keeps only what was given", (t) => {
  const spec = {
    ...base,
    env: { GREETING: "hello world", _X1: "" },
    instanceType: "c7g.large",
    subnetId: "subnet-0123abcd",
    securityGroupIds: ["sg-0123abcd", "sg-0123456789abcdef0"],
    keyName: "my key",
    logBucket: "my.log-bucket",
    region: "eu-west-3",
    shutdownBehavior: "terminate",
    reportExpirySeconds: MAX_REPORT_EXPIRY_SECONDS,
  };
  t.deepEqual(parseEc2Spec(spec), spec);
  t.deepEqual(parseEc2Spec({ args: ["true"] }), { args: ["true"] });
  t.deepEqual(parseEc2Spec(JSON.parse(JSON.stringify(parseEc2Spec(spec)))), spec);
});

test("each bad field is named by its path", (t) => {
  const cases: [unknown, string][] = [
    [null, ""],
    [{ ...base, bogus: 1 }, "bogus"],
    [{ ...base, args: "echo hi" }, "args"],
    [{ ...base, args: [] }, "args"],
    [{ ...base, args: [""] }, "args[0]"],
    [{ ...base, args: ["a", "b\0"] }, "args[1]"],
    [{ ...base, imageId: "ami-XYZ" }, "imageId"],
    [{ ...base, env: { "A-B": "x" } }, "env.A-B"],
    [{ ...base, env: { OK: 3 } }, "env.OK"],
    [{ ...base, instanceType: "big" }, "instanceType"],
    [{ ...base, subnetId: "vpc-12345678" }, "subnetId"],
    [{ ...base, securityGroupIds: "sg-12345678" }, "securityGroupIds"],
    [{ ...base, securityGroupIds: ["sg-12345678", "sg-nope"] }, "securityGroupIds[1]"],
    [{ ...base, keyName: "" }, "keyName"],
    [{ ...base, logBucket: "Upper_Case" }, "logBucket"],
    [{ ...base, logBucket: "192.168.1.1" }, "logBucket"],
    [{ ...base, region: "mars" }, "region"],
    [{ ...base, shutdownBehavior: "hibernate" }, "shutdownBehavior"],
    [{ ...base, reportExpirySeconds: MAX_REPORT_EXPIRY_SECONDS + 1 }, "reportExpirySeconds"],
    [{ ...base, reportExpirySeconds: 1.5 }, "reportExpirySeconds"],
    [{ ...base, args: ["x".repeat(12 * 1024)] }, "args"],
  ];
  for (const [spec, field] of cases) t.is(fieldOf(t, () => parseEc2Spec(spec)), field, JSON.stringify(spec).slice(0, 80));
});

test("the factory requires an image and a bucket unless the target gives defaults", (t) => {
  const bare = new Ec2Factory(parseTargetOptions({}), new MemoryLogger());
  t.is(fieldOf(t, () => bare.validate({ args: ["true"], logBucket: "logs-1" })), "imageId");
  t.is(fieldOf(t, () => bare.validate({ args: ["true"], imageId: base.imageId })), "logBucket");
  const defaults = new Ec2Factory(parseTargetOptions({ imageId: base.imageId, logBucket: "logs-1" }), new MemoryLogger());
  t.deepEqual(defaults.validate({ args: ["true"] }), { args: ["true"] });
});

test("specFromRun: the image is the AMI, the command the args, --spec wins, env merged", (t) => {
  const f = new Ec2Factory(parseTargetOptions({ logBucket: "logs-1" }), new MemoryLogger());
  const spec = f.specFromRun({ image: base.imageId, command: ["make", "test"], env: { CI: "1" }, mounts: [], copyOut: [], spec: { instanceType: "t3.large", env: { A: "b" } } });
  t.deepEqual(f.validate(spec), { imageId: base.imageId, args: ["make", "test"], instanceType: "t3.large", env: { A: "b", CI: "1" } });
  const run = { image: base.imageId, command: ["true"], env: {}, spec: {} };
  t.throws(() => f.specFromRun({ ...run, mounts: [{ source: "/tmp", destination: "/src" }], copyOut: [] }), { message: /^mounts: .*cannot mount this host's paths/ });
  t.throws(() => f.specFromRun({ ...run, mounts: [], copyOut: ["/out"] }), { message: /^copyOut: .*cannot copy files out/ });
});

test("target options: defaults, and each bad option named", (t) => {
  const o = parseTargetOptions({ endpoint: "http://127.0.0.1:5000/" });
  t.is(o.endpoint, "http://127.0.0.1:5000");
  t.true(o.forcePathStyle, "path-style by default with a custom endpoint");
  t.false(parseTargetOptions({}).forcePathStyle);
  t.is(o.instanceType, "t3.micro");
  t.is(o.shutdownBehavior, "stop");
  t.is(o.reportExpirySeconds, MAX_REPORT_EXPIRY_SECONDS);
  const cases: [Record<string, unknown>, string][] = [
    [{ endpoint: "127.0.0.1:5000" }, "endpoint"],
    [{ endpoint: "ftp://x" }, "endpoint"],
    [{ pollIntervalMs: 0 }, "pollIntervalMs"],
    [{ logFlushSeconds: "1" }, "logFlushSeconds"],
    [{ createLogBucket: "yes" }, "createLogBucket"],
    [{ accessKeyId: "AKIA..." }, "accessKeyId"],
    [{ region: "nowhere" }, "region"],
  ];
  for (const [options, field] of cases) t.is(fieldOf(t, () => parseTargetOptions(options)), field);
});
