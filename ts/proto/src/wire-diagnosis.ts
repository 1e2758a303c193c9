// Finds where a protobuf message that failed to decode goes wrong, in terms a client can
// act on: the field path ("readiness.tcp.host", "dependsOn[2]", "spec.a.b[3]") and the
// problem (truncated, not UTF-8, nested too deeply, a bad tag). protobufjs only says
// "index out of range: 7 + 10 > 12"; this walks the same bytes with the schema the
// generator wrote (gen/wire-schema.ts) and reports the first field it cannot read. It
// runs only after a decode has failed, so it costs nothing on the good path.
import { isUtf8 } from "node:buffer";

/** What the wire holds in one field (or a map's key or value). */
export type WireValue =
  | { readonly kind: "scalar"; readonly wire: number }
  | { readonly kind: "string" }
  | { readonly kind: "bytes" }
  | { readonly kind: "message"; readonly type: string };

export type WireField = (WireValue & { readonly name: string; readonly repeated: boolean }) | MapWireField;

export interface MapWireField {
  readonly kind: "map";
  readonly name: string;
  readonly repeated: boolean;
  readonly key: WireValue;
  readonly value: WireValue;
}

/** Message full name (e.g. "vmctl.v1.ServiceRef") → field number → field. */
export type WireSchema = Readonly<Record<string, Readonly<Record<string, WireField>>>>;

export interface WireProblem {
  /** Path of the offending field; undefined when the message itself is broken (a bad tag at top level). */
  readonly field?: string;
  readonly problem: string;
}

/**
 * protobuf's default recursion limit (protoc's CodedInputStream, and protobufjs's): the
 * top-level message is depth 0, each nested message one more, map entries not counted.
 */
export const MAX_MESSAGE_DEPTH = 100;

// JSON-like containers whose own field names mean nothing to a client: a path through a
// Struct reads as the JSON it carries (spec.a.b[3]), not as fields.value.struct_value.
const TRANSPARENT = new Set(["google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"]);
const KEY_IN_PATH_MAX = 64;

class Cursor {
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  /** A varint as a number (exact up to 2^53), or undefined when truncated or longer than 10 bytes. */
  varint(): number | undefined {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) return undefined;
      const byte = this.buf[this.pos++] as number;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return value;
      scale *= 128;
    }
    return undefined;
  }

  skip(n: number): boolean {
    if (n > this.end - this.pos) return false;
    this.pos += n;
    return true;
  }
}

function join(path: string, name: string): string {
  return path === "" ? name : `${path}.${name}`;
}

function at(path: string): string | undefined {
  return path === "" ? undefined : path;
}

/** The first problem in `bytes` read as message `typeName`, or undefined when none is found. */
export function diagnose(schema: WireSchema, typeName: string, bytes: Uint8Array): WireProblem | undefined {
  return walkMessage(schema, typeName, new Cursor(bytes, 0, bytes.length), "", 0);
}

const tooDeep = (path: string): WireProblem => ({ field: at(path), problem: `nested more than ${MAX_MESSAGE_DEPTH} messages deep` });

/** The next field's number and wire type, or what is wrong with its tag. */
function readTag(c: Cursor, path: string): { number: number; wire: number } | WireProblem {
  const tag = c.varint();
  if (tag === undefined) return { field: at(path), problem: "truncated (a field tag runs past the end)" };
  const number = Math.floor(tag / 8);
  if (number === 0) return { field: at(path), problem: "invalid tag (field number 0)" };
  return { number, wire: tag % 8 };
}

function walkMessage(schema: WireSchema, typeName: string, c: Cursor, path: string, depth: number): WireProblem | undefined {
  if (depth > MAX_MESSAGE_DEPTH) return tooDeep(path);
  const fields = schema[typeName] ?? {};
  const transparent = TRANSPARENT.has(typeName);
  const seen = new Map<number, number>();
  while (c.pos < c.end) {
    const tag = readTag(c, path);
    if ("problem" in tag) return tag;
    const { number, wire } = tag;
    const field = fields[number];
    const index = seen.get(number) ?? 0;
    seen.set(number, index + 1);
    let fieldPath = path;
    if (field !== undefined && !transparent) fieldPath = join(path, field.name);
    if (field !== undefined && field.repeated && field.kind !== "map") fieldPath = `${fieldPath}[${index}]`;
    const expected = field === undefined ? undefined : field.kind === "scalar" ? field.wire : 2;
    // A known field with the wire type it declares is read as that field; anything else
    // (unknown numbers, a mismatched wire type, a packed scalar) is skipped as protobuf
    // parsers skip unknown fields.
    if (field !== undefined && wire === 2 && expected === 2) {
      const problem = walkLengthDelimited(schema, field, c, fieldPath, transparent ? path : undefined, depth);
      if (problem !== undefined) return problem;
      continue;
    }
    const problem = skipValue(c, wire, number, field === undefined ? at(path) : at(fieldPath), depth);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function walkLengthDelimited(
  schema: WireSchema,
  field: WireField,
  c: Cursor,
  fieldPath: string,
  transparentParent: string | undefined,
  depth: number,
): WireProblem | undefined {
  const length = c.varint();
  if (length === undefined || length > c.end - c.pos) return { field: at(fieldPath), problem: "truncated (its length runs past the end of the message)" };
  const inner = new Cursor(c.buf, c.pos, c.pos + length);
  c.pos += length;
  if (field.kind === "map") return walkMapEntry(schema, field, inner, fieldPath, transparentParent, depth);
  return walkValue(schema, field, inner, fieldPath, depth);
}

function walkValue(schema: WireSchema, value: WireValue, c: Cursor, path: string, depth: number): WireProblem | undefined {
  switch (value.kind) {
    case "string":
      return isUtf8(c.buf.subarray(c.pos, c.end)) ? undefined : { field: at(path), problem: "is not valid UTF-8" };
    case "message":
      return walkMessage(schema, value.type, c, path, depth + 1);
    default:
      // bytes, or a packed run of scalars: any content is readable
      return undefined;
  }
}

/**
 * A map entry: key = 1, value = 2, read inline as protobufjs does (the entry is no level
 * of depth). The path names the key when it can be read: `labels.tier`, or for a Struct
 * (`transparentParent`) the JSON path `spec.a`.
 */
function walkMapEntry(
  schema: WireSchema,
  field: MapWireField,
  c: Cursor,
  fieldPath: string,
  transparentParent: string | undefined,
  depth: number,
): WireProblem | undefined {
  let path = fieldPath;
  const keyed = (key: string): string => {
    const shown = key.length > KEY_IN_PATH_MAX ? `${key.slice(0, KEY_IN_PATH_MAX)}…` : key;
    return transparentParent === undefined ? `${fieldPath}.${shown}` : join(transparentParent, shown);
  };
  while (c.pos < c.end) {
    const tag = readTag(c, path);
    if ("problem" in tag) return tag;
    const { number, wire } = tag;
    const slot = number === 1 ? field.key : number === 2 ? field.value : undefined;
    const expected = slot === undefined ? undefined : slot.kind === "scalar" ? slot.wire : 2;
    if (slot !== undefined && wire === 2 && expected === 2) {
      const length = c.varint();
      if (length === undefined || length > c.end - c.pos) return { field: at(path), problem: "truncated (its length runs past the end of the message)" };
      const inner = new Cursor(c.buf, c.pos, c.pos + length);
      c.pos += length;
      if (number === 1 && slot.kind === "string") {
        const keyBytes = inner.buf.subarray(inner.pos, inner.end);
        if (!isUtf8(keyBytes)) return { field: at(fieldPath), problem: "has a key that is not valid UTF-8" };
        path = keyed(Buffer.from(keyBytes).toString("utf8"));
        continue;
      }
      const problem = walkValue(schema, slot, inner, path, depth);
      if (problem !== undefined) return problem;
      continue;
    }
    const problem = skipValue(c, wire, number, at(path), depth);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** Skips one value of wire type `wire` (groups included, as parsers skip unknown fields). */
function skipValue(c: Cursor, wire: number, number: number, field: string | undefined, depth: number): WireProblem | undefined {
  const truncated: WireProblem = { field, problem: `truncated (field ${number} runs past the end of the message)` };
  switch (wire) {
    case 0:
      return c.varint() === undefined ? truncated : undefined;
    case 1:
      return c.skip(8) ? undefined : truncated;
    case 2: {
      const length = c.varint();
      return length !== undefined && c.skip(length) ? undefined : truncated;
    }
    case 5:
      return c.skip(4) ? undefined : truncated;
    case 3: {
      if (depth > MAX_MESSAGE_DEPTH) return { field, problem: `nested more than ${MAX_MESSAGE_DEPTH} messages deep` };
      for (;;) {
        const tag = c.varint();
        if (tag === undefined) return { field, problem: `truncated (group ${number} has no end)` };
        const inner = Math.floor(tag / 8);
        if (inner === 0) return { field, problem: "invalid tag (field number 0)" };
        if (tag % 8 === 4) return inner === number ? undefined : { field, problem: `group ${number} ends with the end tag of ${inner}` };
        const problem = skipValue(c, tag % 8, inner, field, depth + 1);
        if (problem !== undefined) return problem;
      }
    }
    case 4:
      return { field, problem: `unexpected end-group tag for field ${number}` };
    default:
      return { field, problem: `invalid wire type ${wire} for field ${number}` };
  }
}
