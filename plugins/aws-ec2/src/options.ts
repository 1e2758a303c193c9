// The target's options (`targets.aws-ec2` in the orchestrator config), checked strictly
// at init. Credentials are never an option: they come from the AWS SDK's standard chain.
import { ValidationError } from "@vmctl/core/contract";
import { bool, numberIn, record, refuseUnknown, str } from "@vmctl/core/target-kit";
import {
  bucket,
  imageId,
  instanceType,
  region,
  reportExpiry,
  shutdownBehavior,
  MAX_REPORT_EXPIRY_SECONDS,
  type ShutdownBehavior,
} from "./spec.js";

export interface Ec2TargetOptions {
  /** Default region; else the SDK chain (AWS_REGION, AWS_DEFAULT_REGION, ~/.aws/config). */
  readonly region?: string;
  /** API endpoint for both EC2 and S3 instead of AWS's (moto, localstack). */
  readonly endpoint?: string;
  /** A profile of ~/.aws/{config,credentials} instead of AWS_PROFILE / "default". */
  readonly profile?: string;
  /** Default bucket for output and exit status. */
  readonly logBucket?: string;
  /** Create the log bucket when it does not exist (default false: a missing bucket is an error). */
  readonly createLogBucket: boolean;
  /** Path-style S3 URLs (default: true when `endpoint` is set, else false). */
  readonly forcePathStyle: boolean;
  /** Default AMI when the spec names none. */
  readonly imageId?: string;
  readonly instanceType: string;
  readonly shutdownBehavior: ShutdownBehavior;
  /** How often state, wait, stop and follow look at EC2 and S3 again. */
  readonly pollIntervalMs: number;
  /** How often the guest uploads its output while the command runs (seconds, fractions allowed). */
  readonly logFlushSeconds: number;
  readonly reportExpirySeconds: number;
  /** How long destroy waits for "terminated" before deleting the output objects anyway. */
  readonly terminateWaitMs: number;
}

export const DEFAULT_INSTANCE_TYPE = "t3.micro";

const OPTION_FIELDS = [
  "region",
  "endpoint",
  "profile",
  "logBucket",
  "createLogBucket",
  "forcePathStyle",
  "imageId",
  "instanceType",
  "shutdownBehavior",
  "pollIntervalMs",
  "logFlushSeconds",
  "reportExpirySeconds",
  "terminateWaitMs",
];

/** Parses `targets.aws-ec2`; throws ValidationError naming the option. */
export function parseTargetOptions(input: Readonly<Record<string, unknown>>): Ec2TargetOptions {
  const obj = record(input, "options");
  refuseUnknown(obj, OPTION_FIELDS, "", "unknown option");
  const endpoint = obj.endpoint === undefined ? undefined : url(obj.endpoint, "endpoint");
  return {
    ...(obj.region === undefined ? {} : { region: region(obj.region, "region") }),
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(obj.profile === undefined ? {} : { profile: nonEmpty(obj.profile, "profile") }),
    ...(obj.logBucket === undefined ? {} : { logBucket: bucket(obj.logBucket, "logBucket") }),
    ...(obj.imageId === undefined ? {} : { imageId: imageId(obj.imageId, "imageId") }),
    createLogBucket: obj.createLogBucket === undefined ? false : bool(obj.createLogBucket, "createLogBucket"),
    forcePathStyle: obj.forcePathStyle === undefined ? endpoint !== undefined : bool(obj.forcePathStyle, "forcePathStyle"),
    instanceType: obj.instanceType === undefined ? DEFAULT_INSTANCE_TYPE : instanceType(obj.instanceType, "instanceType"),
    shutdownBehavior: obj.shutdownBehavior === undefined ? "stop" : shutdownBehavior(obj.shutdownBehavior, "shutdownBehavior"),
    pollIntervalMs: obj.pollIntervalMs === undefined ? 2000 : numberIn(obj.pollIntervalMs, "pollIntervalMs", 10, 60_000),
    logFlushSeconds: obj.logFlushSeconds === undefined ? 2 : numberIn(obj.logFlushSeconds, "logFlushSeconds", 0.05, 3600),
    reportExpirySeconds:
      obj.reportExpirySeconds === undefined ? MAX_REPORT_EXPIRY_SECONDS : reportExpiry(obj.reportExpirySeconds, "reportExpirySeconds"),
    terminateWaitMs: obj.terminateWaitMs === undefined ? 300_000 : numberIn(obj.terminateWaitMs, "terminateWaitMs", 0, 3_600_000),
  };
}

function nonEmpty(value: unknown, field: string): string {
  const text = str(value, field);
  if (text === "") throw new ValidationError(field, "must not be empty");
  return text;
}

function url(value: unknown, field: string): string {
  const text = nonEmpty(value, field);
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new ValidationError(field, `must be an http(s) URL, got ${JSON.stringify(text)}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new ValidationError(field, "must be an http(s) URL");
  return text.replace(/\/+$/, "");
}
