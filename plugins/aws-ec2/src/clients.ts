// The AWS SDK clients (EC2 and S3) for one region, and the one place AWS failures become
// VmctlErrors. Credentials and, unless configured, the region come from the SDK's
// standard chain (env vars, ~/.aws/config and credentials, SSO, instance roles...):
// nothing here reimplements it.
import { EC2Client } from "@aws-sdk/client-ec2";
import { S3Client } from "@aws-sdk/client-s3";
import { VmctlError, type ErrorCode } from "@vmctl/core/contract";

export interface ClientSettings {
  readonly region?: string;
  readonly endpoint?: string;
  readonly profile?: string;
  readonly forcePathStyle: boolean;
}

export interface AwsClients {
  readonly ec2: EC2Client;
  readonly s3: S3Client;
  /** For messages: the endpoint, or "AWS" and the region. */
  readonly where: string;
  destroy(): void;
}

export function makeClients(settings: ClientSettings): AwsClients {
  const common = {
    ...(settings.region === undefined ? {} : { region: settings.region }),
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    ...(settings.profile === undefined ? {} : { profile: settings.profile }),
  };
  const ec2 = new EC2Client(common);
  const s3 = new S3Client({
    ...common,
    forcePathStyle: settings.forcePathStyle,
    // Without this the SDK signs a CRC32 of the (empty) body into presigned PUT URLs,
    // and S3 would refuse the guest's upload of a different body.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const where = settings.endpoint ?? `AWS${settings.region ? ` (${settings.region})` : ""}`;
  return {
    ec2,
    s3,
    where,
    destroy() {
      ec2.destroy();
      s3.destroy();
    },
  };
}

const CREDENTIAL_ERRORS = new Set([
  "AuthFailure",
  "InvalidClientTokenId",
  "UnrecognizedClientException",
  "SignatureDoesNotMatch",
  "InvalidAccessKeyId",
  "ExpiredToken",
  "ExpiredTokenException",
  "RequestExpired",
]);
const DENIED_ERRORS = new Set(["UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "Forbidden"]);
const UNREACHABLE = new Set(["ECONNREFUSED", "ECONNRESET", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EPIPE"]);
const THROTTLED = new Set(["Throttling", "ThrottlingException", "RequestLimitExceeded", "SlowDown", "ServiceUnavailable", "InternalError"]);

interface AwsErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  cause?: unknown;
}

/** The AWS error's name ("AuthFailure", "InvalidAMIID.NotFound") or Node errno ("ECONNREFUSED"). */
export function awsErrorName(err: unknown): string | undefined {
  const e = err as AwsErrorShape | undefined;
  if (e?.code && /^E[A-Z]+$/.test(e.code)) return e.code;
  const cause = e?.cause as AwsErrorShape | undefined;
  if (cause?.code && /^E[A-Z]+$/.test(cause.code)) return cause.code;
  if (e?.name && e.name !== "Error" && e.name !== "Unknown") return e.name;
  return e?.code;
}

export function httpStatus(err: unknown): number | undefined {
  return (err as AwsErrorShape | undefined)?.$metadata?.httpStatusCode;
}

/**
 * A failed AWS call as a VmctlError saying what was attempted, where, and what to do:
 * refused credentials, an unreachable endpoint, a missing region are each named.
 */
export function awsError(err: unknown, action: string, where: string, serviceId?: string): VmctlError {
  if (err instanceof VmctlError) return err;
  const name = awsErrorName(err) ?? "";
  const message = (err as AwsErrorShape | undefined)?.message ?? String(err);
  const status = httpStatus(err);
  const details = { target: "aws-ec2", ...(serviceId === undefined ? {} : { serviceId }) };
  const fail = (code: ErrorCode, text: string) => new VmctlError(code, text, { cause: err, details });

  if (CREDENTIAL_ERRORS.has(name) || (status === 403 && action.startsWith("S3 ") && /Unknown|^$/.test(name))) {
    return fail(
      "PERMISSION_DENIED",
      `${action} at ${where}: the AWS credentials were refused (${name || `HTTP ${status}`}: ${message}). ` +
        "They come from the standard AWS chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ~/.aws/credentials, SSO, an instance role",
    );
  }
  if (name === "CredentialsProviderError" || /Could not load credentials/i.test(message)) {
    return fail("FAILED_PRECONDITION", `${action} at ${where}: no AWS credentials found in the standard chain (${message})`);
  }
  if (/Region is missing/i.test(message)) {
    return fail("FAILED_PRECONDITION", `${action}: no AWS region: set the spec's or the target's "region", or AWS_REGION`);
  }
  if (DENIED_ERRORS.has(name)) {
    return fail("PERMISSION_DENIED", `${action} at ${where}: not allowed for these credentials (${name}: ${message})`);
  }
  if (UNREACHABLE.has(name) || name === "TimeoutError" || name === "ETIMEDOUT") {
    return fail(name === "ETIMEDOUT" || name === "TimeoutError" ? "DEADLINE_EXCEEDED" : "UNAVAILABLE", `${action}: cannot reach ${where} (${name}: ${message})`);
  }
  if (THROTTLED.has(name) || (status !== undefined && status >= 500)) {
    return fail("UNAVAILABLE", `${action} at ${where}: the API is unavailable or throttling (${name || `HTTP ${status}`}: ${message})`);
  }
  if (/NotFound$/.test(name) || name === "NoSuchBucket" || name === "NoSuchKey") {
    return fail("NOT_FOUND", `${action} at ${where}: ${name}: ${message}`);
  }
  if (/^(InvalidParameter|InvalidParameterValue|InvalidParameterCombination|MissingParameter|Unsupported|InvalidUserData)/.test(name)) {
    return fail("INVALID_ARGUMENT", `${action} at ${where}: ${name}: ${message}`);
  }
  if (/^(InsufficientInstanceCapacity|InstanceLimitExceeded|VcpuLimitExceeded)/.test(name)) {
    return fail("RESOURCE_EXHAUSTED", `${action} at ${where}: ${name}: ${message}`);
  }
  if (name === "IncorrectInstanceState") return fail("FAILED_PRECONDITION", `${action} at ${where}: ${name}: ${message}`);
  return fail("INTERNAL", `${action} at ${where} failed: ${name ? `${name}: ` : ""}${message}`);
}

/** Runs `call`, turning any failure into `awsError(err, action, where)`. */
export async function aws<T>(action: string, where: string, call: () => Promise<T>, serviceId?: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw awsError(err, action, where, serviceId);
  }
}
