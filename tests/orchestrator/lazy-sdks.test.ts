// vmctld loads every built-in target; the heavy SDKs behind docker (dockerode) and
// aws-ec2 (the AWS SDK, ~75 MiB) must load only when a service on them is made, so an
// idle daemon stays small on hosts that never use them. Checked in a fresh process:
// what require.cache holds (both SDKs are CommonJS) before and after a create().
import { spawnSync } from "node:child_process";
import test from "ava";
import { REPO_ROOT } from "./helpers/sandbox.js";

const CHILD = `
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const SDK = /node_modules\\/(@aws-sdk\\/client-ec2|@aws-sdk\\/client-s3|dockerode)\\//;
const loaded = () => [...new Set(Object.keys(require.cache).map((k) => SDK.exec(k)?.[1]).filter(Boolean))].sort();
const log = { debug() {}, info() {}, warn() {}, error() {} };
const ctx = (serviceId) => ({
  serviceId, serviceDir: "/nonexistent", ownerLabels: {}, log,
  resources: { intend() {}, release() {}, list: () => [] },
});
const docker = (await import("vmctl-plugin-docker")).default.targets[0];
const ec2 = (await import("vmctl-plugin-aws-ec2")).default.targets[0];
const dockerFactory = await docker.init({ stateDir: "/nonexistent", options: { socket: "/nonexistent/docker.sock" }, log });
const ec2Factory = await ec2.init({ stateDir: "/nonexistent", options: { endpoint: "http://127.0.0.1:9", logBucket: "vmctl-logs", region: "us-east-1" }, log });
dockerFactory.validate({ image: "busybox:1", args: ["true"] });
ec2Factory.validate({ imageId: "ami-12345678", args: ["true"] });
const idle = loaded();
const errors = [];
await dockerFactory.create("svc-d", dockerFactory.validate({ image: "busybox:1", args: ["true"] }), ctx("svc-d")).catch((e) => errors.push(e.code));
await ec2Factory.create("svc-e", ec2Factory.validate({ imageId: "ami-12345678", args: ["true"] }), ctx("svc-e")).catch((e) => errors.push(e.code));
await dockerFactory.close?.();
await ec2Factory.close?.();
console.log(JSON.stringify({ idle, used: loaded(), errors }));
`;

test("the docker and aws-ec2 targets load dockerode and the AWS SDK only on their first create", (t) => {
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", CHILD], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, AWS_ACCESS_KEY_ID: "testing", AWS_SECRET_ACCESS_KEY: "testing", AWS_MAX_ATTEMPTS: "1" },
  });
  t.is(child.status, 0, child.stderr);
  const result = JSON.parse(child.stdout.trim().split("\n").at(-1) ?? "{}") as { idle: string[]; used: string[]; errors: string[] };
  t.deepEqual(result.idle, [], "loaded at init/validate");
  // Both creates fail (nothing answers), but they had to load their SDK to find out.
  t.deepEqual(result.errors, ["UNAVAILABLE", "UNAVAILABLE"]);
  t.deepEqual(result.used, ["@aws-sdk/client-ec2", "@aws-sdk/client-s3", "dockerode"]);
});
