// Protobuf wire bytes by hand, for requests no encoder would write: invalid UTF-8,
// truncations, wrong wire types, nesting past protobuf's recursion limit.

export function varint(n: number): number[] {
  const out: number[] = [];
  for (; n > 127; n = Math.floor(n / 128)) out.push((n % 128) | 128);
  return [...out, n];
}

/** A length-delimited field (wire type 2). */
export function lengthDelimited(number: number, payload: Uint8Array | readonly number[]): number[] {
  const bytes = [...payload];
  return [...varint(number * 8 + 2), ...varint(bytes.length), ...bytes];
}

/**
 * A google.protobuf.Value holding Struct{key: …} `depth` times around a null. Each level
 * only adds a prefix (the inner value is the last thing in its entry, struct and value),
 * so the prefixes are worked out inside-out from sizes alone and joined once: linear
 * even at 10,000 levels.
 */
export function deepStructValue(depth: number, key = "a"): number[] {
  const keyField = lengthDelimited(1, Buffer.from(key));
  let size = 2; // Value{null_value: 0}
  const prefixes: number[][] = [];
  for (let i = 0; i < depth; i++) {
    const valueHeader = [...varint(2 * 8 + 2), ...varint(size)];
    const entrySize = keyField.length + valueHeader.length + size;
    const entryHeader = [...varint(1 * 8 + 2), ...varint(entrySize)];
    const structSize = entryHeader.length + entrySize;
    const structHeader = [...varint(5 * 8 + 2), ...varint(structSize)];
    prefixes.push([...structHeader, ...entryHeader, ...keyField, ...valueHeader]);
    size = structHeader.length + structSize;
  }
  return [...prefixes.reverse().flat(), ...varint(1 * 8 + 0), 0];
}

/** CreateServiceRequest{target, spec: {a: <deepStructValue(depth)>}}: a spec `depth + 1` objects deep. */
export function deepCreateRequest(depth: number, target = "process"): Buffer {
  const entry = [...lengthDelimited(1, Buffer.from("a")), ...lengthDelimited(2, deepStructValue(depth))];
  return Buffer.from([...lengthDelimited(2, Buffer.from(target)), ...lengthDelimited(3, lengthDelimited(1, entry))]);
}
