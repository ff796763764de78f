import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from "node:crypto";
import { fromBase64Url, toBase64Url } from "../encoding.js";
import type { CryptoProvider } from "./provider.js";

// Importing a key costs ~20 µs; a coordinator verifies receipts of the same few hundred nodes
// over and over, so key objects are cached (bounded, oldest evicted first).
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

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const x = toBase64Url(publicKey);
  return cached(publicKeys, x, () => createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" }));
}

function secretKeyObject(secretKey: Uint8Array): KeyObject {
  const d = toBase64Url(secretKey);
  return cached(secretKeys, d, () => {
    const x = toBase64Url(nodeCrypto.publicKeyFromSecret(secretKey));
    return createPrivateKey({ key: { kty: "OKP", crv: "Ed25519", d, x }, format: "jwk" });
  });
}

export const nodeCrypto: CryptoProvider = {
  sha256: (data) => new Uint8Array(createHash("sha256").update(data).digest()),
  generateKeyPair() {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const jwk = privateKey.export({ format: "jwk" });
    return { secretKey: fromBase64Url(jwk.d!), publicKey: fromBase64Url(publicKey.export({ format: "jwk" }).x!) };
  },
  publicKeyFromSecret(secretKey) {
    // PKCS#8 wrapper for a raw Ed25519 seed (RFC 8410).
    const prefix = Buffer.from("302e020100300506032b657004220420", "hex");
    const key = createPrivateKey({ key: Buffer.concat([prefix, secretKey]), format: "der", type: "pkcs8" });
    return fromBase64Url(createPublicKey(key).export({ format: "jwk" }).x!);
  },
  sign: (secretKey, message) => new Uint8Array(sign(null, message, secretKeyObject(secretKey))),
  verify(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    try {
      return verify(null, message, publicKeyObject(publicKey), signature);
    } catch {
      return false;
    }
  },
  randomBytes: (length) => new Uint8Array(randomBytes(length)),
};
