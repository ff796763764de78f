/**
 * A minimal GGUF v3 writer: key/values, F32 tensors, 32-byte alignment. Enough for llama.cpp
 * to load a llama-architecture model written from scratch (specs/tiny-gguf.md).
 */
export const ggufType = { UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;

export type GgufValue =
  | { type: "u32"; value: number }
  | { type: "f32"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: readonly string[] }
  | { type: "f32[]"; value: readonly number[] }
  | { type: "i32[]"; value: readonly number[] };

export interface GgufTensor {
  readonly name: string;
  /** Dimensions, fastest-varying first (GGUF order). */
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

const alignment = 32;
const encoder = new TextEncoder();

class ByteSink {
  private chunks: Uint8Array[] = [];
  length = 0;
  private push(bytes: Uint8Array) {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }
  u32(n: number) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    this.push(b);
  }
  i32(n: number) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, n, true);
    this.push(b);
  }
  u64(n: number) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
    this.push(b);
  }
  f32(n: number) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, n, true);
    this.push(b);
  }
  bytes(b: Uint8Array) {
    this.push(b);
  }
  string(s: string) {
    const b = encoder.encode(s);
    this.u64(b.length);
    this.push(b);
  }
  pad() {
    const rest = this.length % alignment;
    if (rest !== 0) this.push(new Uint8Array(alignment - rest));
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

function writeArray<T>(sink: ByteSink, elementType: number, values: readonly T[], writeOne: (value: T) => void) {
  sink.u32(ggufType.ARRAY);
  sink.u32(elementType);
  sink.u64(values.length);
  for (const value of values) writeOne(value);
}

function writeValue(sink: ByteSink, v: GgufValue) {
  switch (v.type) {
    case "u32":
      sink.u32(ggufType.UINT32);
      return sink.u32(v.value);
    case "f32":
      sink.u32(ggufType.FLOAT32);
      return sink.f32(v.value);
    case "bool":
      sink.u32(ggufType.BOOL);
      return sink.bytes(Uint8Array.of(v.value ? 1 : 0));
    case "string":
      sink.u32(ggufType.STRING);
      return sink.string(v.value);
    case "string[]":
      return writeArray(sink, ggufType.STRING, v.value, (s) => sink.string(s));
    case "f32[]":
      return writeArray(sink, ggufType.FLOAT32, v.value, (n) => sink.f32(n));
    case "i32[]":
      return writeArray(sink, ggufType.INT32, v.value, (n) => sink.i32(n));
  }
}

export function writeGguf(kv: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensor[]): Uint8Array {
  const sink = new ByteSink();
  sink.bytes(encoder.encode("GGUF"));
  sink.u32(3);
  sink.u64(tensors.length);
  sink.u64(kv.length);
  for (const [key, value] of kv) {
    sink.string(key);
    writeValue(sink, value);
  }
  let offset = 0;
  for (const t of tensors) {
    const expected = t.dims.reduce((a, b) => a * b, 1);
    if (expected !== t.data.length)
      throw new Error(`writeGguf: tensor ${t.name} has ${t.data.length} values, dims say ${expected}`);
    sink.string(t.name);
    sink.u32(t.dims.length);
    for (const d of t.dims) sink.u64(d);
    sink.u32(0); // F32
    sink.u64(offset);
    offset += Math.ceil(t.data.byteLength / alignment) * alignment;
  }
  sink.pad();
  for (const t of tensors) {
    sink.bytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    sink.pad();
  }
  return sink.concat();
}
