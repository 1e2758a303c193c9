// Request decoding for servers that never throws. grpc-js answers INTERNAL ("Error
// deserializing request", naming nothing) when a service's deserializer throws, yet a
// request that does not decode — garbage bytes, a truncated message, invalid UTF-8 in a
// string (refused as protoc-generated servers refuse it), nesting past protobuf's
// recursion limit — is the client's mistake. So the generated service definitions decode
// through here, and a failure comes back as a MalformedMessage value the handler answers
// with INVALID_ARGUMENT naming the message type and, when it can be found, the field.
import { WIRE_SCHEMA } from "./gen/wire-schema.js";
import { diagnose } from "./wire-diagnosis.js";

/** A request that could not be decoded, in place of the message. */
export class MalformedMessage {
  constructor(
    /** Full name of the message type, e.g. "vmctl.v1.CreateServiceRequest". */
    readonly typeName: string,
    /** Path of the offending field ("labels.tier", "spec.a[2]"), when it can be told. */
    readonly field: string | undefined,
    readonly problem: string,
  ) {}

  /** One line naming the field (when known), the problem and the message type. */
  get message(): string {
    return this.field === undefined
      ? `malformed ${this.typeName}: ${this.problem}`
      : `${this.field}: ${this.problem} (malformed ${this.typeName})`;
  }
}

interface Decoder<T> {
  decode(bytes: Uint8Array): T;
}

export function decodeRequest<T>(type: Decoder<T>, typeName: string, bytes: Uint8Array): T | MalformedMessage {
  try {
    return type.decode(bytes);
  } catch (err) {
    // protobufjs says what but not where; the wire walk finds where. Should the two ever
    // disagree, protobufjs's own words are still better than nothing.
    const found = diagnose(WIRE_SCHEMA, typeName, bytes);
    if (found !== undefined) return new MalformedMessage(typeName, found.field, found.problem);
    const why = err instanceof Error ? err.message : String(err);
    return new MalformedMessage(typeName, undefined, why.length > 200 ? `${why.slice(0, 200)}…` : why);
  }
}
