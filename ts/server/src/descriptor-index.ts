// An index over a FileDescriptorSet as protoc wrote it: which file defines each fully
// qualified symbol, which files each file imports, which services there are. It answers
// with the files' own bytes, never re-serialised: what a stock reflection client gets is
// exactly what protoc compiled (file names, imports, map entries, proto3 optional...).
// It reads only the few descriptor fields it needs, straight from the wire.

/** One field of a protobuf message, as the wire has it. */
interface WireField {
  readonly number: number;
  /** Length-delimited payload (wire type 2); undefined for other wire types. */
  readonly bytes?: Uint8Array;
}

function* wireFields(buf: Uint8Array): Generator<WireField> {
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) break;
      const byte = buf[pos++] as number;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return value;
      scale *= 128;
    }
    throw new Error("malformed descriptor: bad varint");
  };
  while (pos < buf.length) {
    const tag = varint();
    const number = Math.floor(tag / 8);
    switch (tag % 8) {
      case 0:
        varint();
        yield { number };
        break;
      case 1:
        pos += 8;
        yield { number };
        break;
      case 2: {
        const length = varint();
        if (pos + length > buf.length) throw new Error("malformed descriptor: truncated");
        yield { number, bytes: buf.subarray(pos, pos + length) };
        pos += length;
        break;
      }
      case 5:
        pos += 4;
        yield { number };
        break;
      default:
        throw new Error(`malformed descriptor: wire type ${tag % 8}`);
    }
  }
}

const text = (bytes: Uint8Array | undefined): string => (bytes === undefined ? "" : Buffer.from(bytes).toString("utf8"));

function nameOf(message: Uint8Array): string {
  for (const f of wireFields(message)) if (f.number === 1) return text(f.bytes);
  return "";
}

function scoped(scope: string, name: string): string {
  return scope === "" ? name : `${scope}.${name}`;
}

// Field numbers in descriptor.proto.
const FILE = { name: 1, package: 2, dependency: 3, messageType: 4, enumType: 5, service: 6, extension: 7 } as const;
const MESSAGE = { field: 2, nestedType: 3, enumType: 4, extension: 6, oneofDecl: 8 } as const;
const ENUM = { value: 2 } as const;
const SERVICE = { method: 2 } as const;

export class DescriptorIndex {
  /** File name → its serialized FileDescriptorProto. */
  readonly #files = new Map<string, Uint8Array>();
  /** File name → the files it imports. */
  readonly #imports = new Map<string, string[]>();
  /** Fully qualified symbol (no leading dot) → the file defining it. */
  readonly #symbols = new Map<string, string>();
  readonly #messages = new Set<string>();
  readonly #services: string[] = [];

  /** Indexes a serialized google.protobuf.FileDescriptorSet (protoc --descriptor_set_out). */
  static fromSet(set: Uint8Array): DescriptorIndex {
    const index = new DescriptorIndex();
    for (const f of wireFields(set)) if (f.number === 1 && f.bytes !== undefined) index.#addFile(f.bytes);
    return index;
  }

  /** Fully qualified names of the services, e.g. "vmctl.v1.Orchestrator". */
  get services(): readonly string[] {
    return this.#services;
  }

  /** The file named `name` followed by every file it imports, transitively; undefined when unknown. */
  fileByName(name: string): Uint8Array[] | undefined {
    if (!this.#files.has(name)) return undefined;
    const order: string[] = [];
    const visit = (file: string): void => {
      if (order.includes(file) || !this.#files.has(file)) return;
      order.push(file);
      for (const dep of this.#imports.get(file) ?? []) visit(dep);
    };
    visit(name);
    return order.map((file) => this.#files.get(file) as Uint8Array);
  }

  /** The file defining `symbol` (a message, enum, enum value, field, service or method) and its imports. */
  fileContainingSymbol(symbol: string): Uint8Array[] | undefined {
    const file = this.#symbols.get(symbol.replace(/^\./, ""));
    return file === undefined ? undefined : this.fileByName(file);
  }

  isMessage(name: string): boolean {
    return this.#messages.has(name.replace(/^\./, ""));
  }

  #addFile(bytes: Uint8Array): void {
    let name = "";
    let pkg = "";
    const imports: string[] = [];
    const messages: Uint8Array[] = [];
    const enums: Uint8Array[] = [];
    const services: Uint8Array[] = [];
    const extensions: Uint8Array[] = [];
    for (const f of wireFields(bytes)) {
      if (f.bytes === undefined) continue;
      if (f.number === FILE.name) name = text(f.bytes);
      else if (f.number === FILE.package) pkg = text(f.bytes);
      else if (f.number === FILE.dependency) imports.push(text(f.bytes));
      else if (f.number === FILE.messageType) messages.push(f.bytes);
      else if (f.number === FILE.enumType) enums.push(f.bytes);
      else if (f.number === FILE.service) services.push(f.bytes);
      else if (f.number === FILE.extension) extensions.push(f.bytes);
    }
    if (name === "" || this.#files.has(name)) return;
    this.#files.set(name, bytes);
    this.#imports.set(name, imports);
    const add = (symbol: string): void => {
      if (!this.#symbols.has(symbol)) this.#symbols.set(symbol, name);
    };
    for (const m of messages) this.#addMessage(m, pkg, add);
    for (const e of enums) this.#addEnum(e, pkg, add);
    for (const x of extensions) add(scoped(pkg, nameOf(x)));
    for (const s of services) {
      const service = scoped(pkg, nameOf(s));
      add(service);
      this.#services.push(service);
      for (const f of wireFields(s)) if (f.number === SERVICE.method && f.bytes !== undefined) add(scoped(service, nameOf(f.bytes)));
    }
  }

  #addMessage(message: Uint8Array, scope: string, add: (symbol: string) => void): void {
    const full = scoped(scope, nameOf(message));
    add(full);
    this.#messages.add(full);
    for (const f of wireFields(message)) {
      if (f.bytes === undefined) continue;
      if (f.number === MESSAGE.field || f.number === MESSAGE.oneofDecl || f.number === MESSAGE.extension) add(scoped(full, nameOf(f.bytes)));
      else if (f.number === MESSAGE.nestedType) this.#addMessage(f.bytes, full, add);
      else if (f.number === MESSAGE.enumType) this.#addEnum(f.bytes, full, add);
    }
  }

  /** An enum and its values; values live in the enum's enclosing scope, as in C++ and protoc. */
  #addEnum(enumType: Uint8Array, scope: string, add: (symbol: string) => void): void {
    add(scoped(scope, nameOf(enumType)));
    for (const f of wireFields(enumType)) if (f.number === ENUM.value && f.bytes !== undefined) add(scoped(scope, nameOf(f.bytes)));
  }
}
