import { ed25519 } from "@noble/curves/ed25519";
import { sha256 } from "@noble/hashes/sha2";
import { randomBytes } from "@noble/hashes/utils";
import type { CryptoProvider } from "./provider.js";

/** Pure-JS primitives for the browser entry: no node:* imports. */
export const portableCrypto: CryptoProvider = {
  sha256: (data) => sha256(data),
  generateKeyPair() {
    const secretKey = ed25519.utils.randomPrivateKey();
    return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
  },
  publicKeyFromSecret: (secretKey) => ed25519.getPublicKey(secretKey),
  sign: (secretKey, message) => ed25519.sign(message, secretKey),
  verify(publicKey, message, signature) {
    try {
      return ed25519.verify(signature, message, publicKey);
    } catch {
      return false;
    }
  },
  randomBytes: (length) => randomBytes(length),
};
