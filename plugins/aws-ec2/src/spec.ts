// The aws-ec2 target's spec: what a user may ask for, checked strictly. Unknown fields
// are refused so a typo never silently means "default". Pure: no AWS calls here (the
// factory probes the account at create time).
import { ValidationError } from "@vmctl/core/contract";
import { commandArgs, envVars, record, refuseUnknown, str } from "@vmctl/core/target-kit";

export type ShutdownBehavior = "stop" | "terminate";

/** A validated aws-ec2 spec: a type alias (not an interface) so it is a JsonValue. */
export type Ec2Spec = {
  /** The AMI to boot (`ami-...`); it needs `sh` and `curl`. Falls back to the target option `imageId`. */
  imageId?: string;
  /** The command and its arguments, run by the guest script with `exec`. */
  args: string[];
  /** Environment of the command. Names are shell identifiers (the guest script exports them). */
  env?: Record<string, string>;
  /** EC2 instance type (default: the target option, else t3.micro). */
  instanceType?: string;
  subnetId?: string;
  securityGroupIds?: string[];
  /** An EC2 key pair, for SSH access while debugging; vmctl itself never logs in. */
  keyName?: string;
  /** S3 bucket receiving output and the exit status (default: the target option `logBucket`). */
  logBucket?: string;
  /** AWS region (default: the target option, else the SDK's chain: AWS_REGION, ~/.aws/config). */
  region?: string;
  /** What the instance does when the guest powers off at the end (default "stop"). */
  shutdownBehavior?: ShutdownBehavior;
  /** Lifetime of the presigned upload URLs given to the guest, at most 7 days (604800). */
  reportExpirySeconds?: number;
};

/** SigV4 presigned URLs live at most 7 days. */
export const MAX_REPORT_EXPIRY_SECONDS = 7 * 24 * 3600;
/**
 * EC2 takes at most 16 KiB of user data. The URLs, the script around the command and
 * some slack take about 5 KiB; the rest is for args and env (checked exactly at start).
 */
export const MAX_COMMAND_BYTES = 11 * 1024;

const SPEC_FIELDS = [
  "imageId",
  "args",
  "env",
  "instanceType",
  "subnetId",
  "securityGroupIds",
  "keyName",
  "logBucket",
  "region",
  "shutdownBehavior",
  "reportExpirySeconds",
];

export const IMAGE_ID = /^ami-[0-9a-f]{8,17}$/;
const SUBNET_ID = /^subnet-[0-9a-f]{8,17}$/;
const SECURITY_GROUP_ID = /^sg-[0-9a-f]{8,17}$/;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\.[a-z0-9-]+$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;
/** S3 bucket naming rules (the common subset: no dots adjacent to dashes, no IP-address look). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Checks an untrusted spec and returns it typed, with nothing but known fields.
 * Defaults are not filled in (the record keeps what the user said). Throws
 * ValidationError naming the field path.
 */
export function parseEc2Spec(input: unknown): Ec2Spec {
  const obj = record(input, "");
  refuseUnknown(obj, SPEC_FIELDS);
  const spec: Ec2Spec = { args: commandArgs(obj.args) };
  if (obj.imageId !== undefined) spec.imageId = imageId(obj.imageId, "imageId");
  // The guest script exports them: names are shell identifiers.
  if (obj.env !== undefined) spec.env = envVars(obj.env, "env", { identifiers: true });
  if (obj.instanceType !== undefined) spec.instanceType = instanceType(obj.instanceType, "instanceType");
  if (obj.subnetId !== undefined) spec.subnetId = matching(obj.subnetId, "subnetId", SUBNET_ID, "a subnet id (subnet-...)");
  if (obj.securityGroupIds !== undefined) spec.securityGroupIds = securityGroups(obj.securityGroupIds);
  if (obj.keyName !== undefined) spec.keyName = keyName(obj.keyName);
  if (obj.logBucket !== undefined) spec.logBucket = bucket(obj.logBucket, "logBucket");
  if (obj.region !== undefined) spec.region = region(obj.region, "region");
  if (obj.shutdownBehavior !== undefined) spec.shutdownBehavior = shutdownBehavior(obj.shutdownBehavior, "shutdownBehavior");
  if (obj.reportExpirySeconds !== undefined) spec.reportExpirySeconds = reportExpiry(obj.reportExpirySeconds, "reportExpirySeconds");
  const size = commandBytes(spec);
  if (size > MAX_COMMAND_BYTES) {
    throw new ValidationError("args", `args and env take ${size} bytes of user data once quoted; at most ${MAX_COMMAND_BYTES} fit`);
  }
  return spec;
}

// ---- field checks, shared with the target options ----

export function imageId(value: unknown, field: string): string {
  return matching(value, field, IMAGE_ID, "an AMI id (ami- and 8 or 17 hex digits)");
}

export function instanceType(value: unknown, field: string): string {
  return matching(value, field, INSTANCE_TYPE, 'an instance type such as "t3.micro"');
}

export function region(value: unknown, field: string): string {
  return matching(value, field, REGION, 'a region name such as "us-east-1"');
}

export function bucket(value: unknown, field: string): string {
  const name = matching(value, field, BUCKET, "an S3 bucket name (3-63 of a-z, 0-9, '.', '-')");
  if (name.includes("..") || /^\d+\.\d+\.\d+\.\d+$/.test(name)) throw new ValidationError(field, "is not a valid S3 bucket name");
  return name;
}

export function shutdownBehavior(value: unknown, field: string): ShutdownBehavior {
  if (value !== "stop" && value !== "terminate") throw new ValidationError(field, 'must be "stop" or "terminate"');
  return value;
}

export function reportExpiry(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 60 || value > MAX_REPORT_EXPIRY_SECONDS) {
    throw new ValidationError(field, `must be an integer from 60 to ${MAX_REPORT_EXPIRY_SECONDS} (7 days, the SigV4 maximum)`);
  }
  return value;
}

function matching(value: unknown, field: string, pattern: RegExp, what: string): string {
  const text = str(value, field);
  if (!pattern.test(text)) throw new ValidationError(field, `must be ${what}, got ${JSON.stringify(text.slice(0, 80))}`);
  return text;
}

function securityGroups(value: unknown): string[] {
  if (!Array.isArray(value)) throw new ValidationError("securityGroupIds", "must be an array of security group ids");
  return value.map((item, i) => matching(item, `securityGroupIds[${i}]`, SECURITY_GROUP_ID, "a security group id (sg-...)"));
}

function keyName(value: unknown): string {
  const name = str(value, "keyName");
  if (name === "" || name.length > 255) throw new ValidationError("keyName", "must be 1 to 255 characters");
  return name;
}

/** Bytes args and env take in the guest script once shell-quoted (roughly: each byte plus quotes). */
function commandBytes(spec: Ec2Spec): number {
  let n = 0;
  for (const a of spec.args) n += Buffer.byteLength(a) + 4 + 3 * (a.split("'").length - 1);
  for (const [k, v] of Object.entries(spec.env ?? {})) n += k.length + Buffer.byteLength(v) + 12 + 3 * (v.split("'").length - 1);
  return n;
}
