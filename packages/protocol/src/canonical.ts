import canonicalizeModule from "canonicalize";

// The package is CommonJS with an ES-style `export default` in its types: under NodeNext the
// default import is `module.exports` itself, which is the function.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/**
 * RFC 8785 (JCS) canonical JSON. Every signature and content hash in havn covers these bytes,
 * so two implementations that agree on a value agree on its hash.
 */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) {
    throw new TypeError("canonicalJson: value has no JSON form (undefined, a function or a symbol)");
  }
  return text;
}

const encoder = new TextEncoder();

export function canonicalBytes(value: unknown): Uint8Array {
  return encoder.encode(canonicalJson(value));
}

export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}
