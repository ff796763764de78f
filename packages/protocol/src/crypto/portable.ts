import { ed25519 } from "@noble/curves/ed25519";
import { sha256 } from "@noble/hashes/sha2";
import { randomBytes } from "@noble/hashes/utils";
import { fromBase64Url, toBase64Url, toHex } from "../encoding.js";
import type { CryptoProvider } from "./provider.js";

function secret(secretKey: string): Uint8Array {
  const seed = fromBase64Url(secretKey);
  if (seed.length !== 32) throw new TypeError("An Ed25519 secret key is 32 bytes");
  return seed;
}

/** Pure-JS primitives for the browser entry: no node:* imports. */
export const portableCrypto: CryptoProvider = {
  sha256: (data) => sha256(data),
  generateKeyPair() {
    const secretKey = ed25519.utils.randomPrivateKey();
    return { secretKey: toBase64Url(secretKey), publicKey: toBase64Url(ed25519.getPublicKey(secretKey)) };
  },
  publicKeyFromSecret: (secretKey) => toBase64Url(ed25519.getPublicKey(secret(secretKey))),
  sign: (secretKey, message) => toBase64Url(ed25519.sign(message, secret(secretKey))),
  verify(publicKey, message, signature) {
    try {
      const sig = fromBase64Url(signature);
      const key = fromBase64Url(publicKey);
      if (sig.length !== 64 || key.length !== 32) return false;
      return ed25519.verify(sig, message, key);
    } catch {
      return false;
    }
  },
  randomHex: (bytes) => toHex(randomBytes(bytes)),
  hex: (bytes) => toHex(bytes),
};
