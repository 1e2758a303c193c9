// The S3 side of the guest's reports: where a service's output and exit status live
// (`s3://<logBucket>/vmctl/<serviceId>/{stdout,stderr,exit}`), the presigned PUT URLs the
// guest script uploads them with, and reading and deleting them.
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { VmctlError } from "@vmctl/core/contract";
import { aws, awsError, awsErrorName, httpStatus } from "./clients.js";
import type { ReportLocation } from "./naming.js";
import type { ReportUrls } from "./user-data.js";

export type ReportStream = "stdout" | "stderr";


export class Reports {
  readonly #s3: S3Client;
  readonly #where: string;
  readonly location: ReportLocation;

  constructor(s3: S3Client, where: string, location: ReportLocation) {
    this.#s3 = s3;
    this.#where = where;
    this.location = location;
  }

  /** The object holding `name` (stdout, stderr, exit). */
  key(name: ReportStream | "exit"): string {
    return `${this.location.prefix}${name}`;
  }

  /** The s3:// URL of the prefix, for messages and the ledger. */
  get url(): string {
    return `s3://${this.location.bucket}/${this.location.prefix}`;
  }

  /** Presigned PUT URLs for the guest; they stop working after `expiresIn` seconds. */
  async presign(expiresIn: number): Promise<ReportUrls> {
    const sign = (name: ReportStream | "exit") =>
      aws("S3 presign", this.#where, () =>
        getSignedUrl(this.#s3, new PutObjectCommand({ Bucket: this.location.bucket, Key: this.key(name) }), { expiresIn }),
      );
    const [stdout, stderr, exit] = await Promise.all([sign("stdout"), sign("stderr"), sign("exit")]);
    return { stdout, stderr, exit };
  }

  /** The exit status the guest reported, or undefined while there is none. */
  async readExit(): Promise<{ code: number; at: Date } | undefined> {
    const got = await this.#get("exit", 0);
    if (!got) return undefined;
    const text = new TextDecoder().decode(got.data).trim();
    if (!/^\d{1,3}$/.test(text)) return undefined;
    return { code: Number(text), at: got.modified ?? new Date() };
  }

  /** The bytes of `stream` after `offset` (empty when there are none yet). */
  async readFrom(stream: ReportStream, offset: number): Promise<Uint8Array> {
    return (await this.#get(stream, offset))?.data ?? new Uint8Array();
  }

  /** Deletes every object under the prefix. Idempotent. */
  async deleteAll(): Promise<void> {
    const listed = await aws("S3 ListObjectsV2", this.#where, () =>
      this.#s3.send(new ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: this.location.prefix })),
    );
    const keys = new Set([this.key("stdout"), this.key("stderr"), this.key("exit")]);
    for (const o of listed.Contents ?? []) if (o.Key) keys.add(o.Key);
    for (const key of keys) {
      await aws(`S3 DeleteObject ${key}`, this.#where, () => this.#s3.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key: key })));
    }
  }

  /** Keys under the prefix (for tests and diagnostics). */
  async list(): Promise<string[]> {
    const listed = await aws("S3 ListObjectsV2", this.#where, () =>
      this.#s3.send(new ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: this.location.prefix })),
    );
    return (listed.Contents ?? []).flatMap((o) => (o.Key ? [o.Key] : []));
  }

  async #get(name: ReportStream | "exit", offset: number): Promise<{ data: Uint8Array; modified?: Date } | undefined> {
    try {
      const out = await this.#s3.send(
        new GetObjectCommand({ Bucket: this.location.bucket, Key: this.key(name), ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}) }),
      );
      const body = out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
      // A server that ignores Range sends the whole object.
      const data = offset > 0 && out.ContentRange === undefined ? body.subarray(offset) : body;
      return { data, ...(out.LastModified ? { modified: out.LastModified } : {}) };
    } catch (err) {
      const error = awsErrorName(err);
      if (error === "NoSuchKey" || error === "NotFound") return undefined;
      if (error === "InvalidRange" || httpStatus(err) === 416) return { data: new Uint8Array() };
      throw awsError(err, `S3 GetObject ${this.key(name)}`, this.#where);
    }
  }
}

/**
 * Makes sure the log bucket is there: HeadBucket, and CreateBucket when it is missing and
 * `create` allows it. A clear error otherwise, before anything is made for a service.
 */
export async function ensureBucket(s3: S3Client, bucket: string, create: boolean, where: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return;
  } catch (err) {
    const status = httpStatus(err);
    const name = awsErrorName(err);
    if (status === 403) {
      throw new VmctlError(
        "PERMISSION_DENIED",
        `S3 HeadBucket ${bucket} at ${where}: access denied (HTTP 403): the AWS credentials were refused, or the bucket belongs to another account`,
        { cause: err, details: { target: "aws-ec2", field: "logBucket" } },
      );
    }
    if (status !== 404 && name !== "NotFound" && name !== "NoSuchBucket") throw awsError(err, `S3 HeadBucket ${bucket}`, where);
  }
  if (!create) {
    throw new VmctlError(
      "FAILED_PRECONDITION",
      `the log bucket ${bucket} does not exist at ${where}: create it, or set the target option createLogBucket: true`,
      { details: { target: "aws-ec2", field: "logBucket" } },
    );
  }
  const region = await s3.config.region();
  await aws(`S3 CreateBucket ${bucket}`, where, async () => {
    try {
      await s3.send(
        new CreateBucketCommand({
          Bucket: bucket,
          // us-east-1 is the one region that refuses a location constraint naming itself.
          ...(region === "us-east-1" ? {} : { CreateBucketConfiguration: { LocationConstraint: region as never } }),
        }),
      );
    } catch (err) {
      // Made meanwhile by a concurrent create: fine.
      if (awsErrorName(err) !== "BucketAlreadyOwnedByYou") throw err;
    }
  });
}
