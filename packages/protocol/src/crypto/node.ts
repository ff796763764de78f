import {
  createHash,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  randomFillSync,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";
import type { CryptoProvider } from "./provider.js";

// Ids take a few random bytes each, several per job: drawing them from a pooled buffer refilled
// 4 KiB at a time (as crypto.randomUUID does) costs far less than a randomBytes call per id.
const randomPool = Buffer.alloc(4096);
let randomOffset = randomPool.length;

function randomHex(bytes: number): string {
  if (bytes > 256) return randomBytes(bytes).toString("hex");
  if (randomOffset + bytes > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const hex = randomPool.toString("hex", randomOffset, randomOffset + bytes);
  randomOffset += bytes;
  return hex;
}

// Importing a key costs ~20 µs; a coordinator verifies receipts of the same few hundred nodes
// over and over, so key objects are cached by their text (bounded, oldest evicted first).
const maxCachedKeys = 4096;
const publicKeys = new Map<string, KeyObject>();
const secretKeys = new Map<string, KeyObject>();

function cached(cache: Map<string, KeyObject>, id: string, make: () => KeyObject): KeyObject {
  let key = cache.get(id);
  if (key === undefined) {
    key = make();
    if (cache.size >= maxCachedKeys) cache.delete(cache.keys().next().value!);
    cache.set(id, key);
  }
  return key;
}

// PKCS#8 wrapper for a raw Ed25519 seed (RFC 8410).
const pkcs8Prefix = Buffer.from("302e020100300506032b657004220420", "hex");

function secretKeyObject(secretKey: string): KeyObject {
  return cached(secretKeys, secretKey, () => {
    const seed = Buffer.from(secretKey, "base64url");
    if (seed.length !== 32) throw new TypeError("An Ed25519 secret key is 32 bytes");
    return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, seed]), format: "der", type: "pkcs8" });
  });
}

/** The raw 32-byte public key: the last 32 bytes of its SPKI DER (RFC 8410), base64url. */
function publicKeyFromSecret(secretKey: string): string {
  const spki = createPublicKey(secretKeyObject(secretKey)).export({ format: "der", type: "spki" });
  return spki.subarray(spki.length - 32).toString("base64url");
}

export const nodeCrypto: CryptoProvider = {
  sha256: (data) => createHash("sha256").update(data).digest(),
  // A key is a random 32-byte seed (what Ed25519 secret keys are). Not generateKeyPairSync with
  // a JWK export: Node 20 has been seen to deadlock in that pair when called in a long loop.
  generateKeyPair() {
    const secretKey = randomBytes(32).toString("base64url");
    return { secretKey, publicKey: publicKeyFromSecret(secretKey) };
  },
  publicKeyFromSecret,
  sign: (secretKey, message) => sign(null, message, secretKeyObject(secretKey)).toString("base64url"),
  verify(publicKey, message, signature) {
    const sig = Buffer.from(signature, "base64url");
    if (sig.length !== 64 || !/^[A-Za-z0-9_-]{43}$/.test(publicKey)) return false;
    try {
      const key = cached(publicKeys, publicKey, () =>
        createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: publicKey }, format: "jwk" }),
      );
      return verify(null, message, key, sig);
    } catch {
      return false;
    }
  },
  randomHex,
  hex: (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex"),
};
