/**
 * The primitives protocol needs, implemented once for Node (node:crypto, fast) and once for
 * browsers (@noble, portable). Both give identical bytes: Ed25519 is deterministic.
 */
export interface CryptoProvider {
  sha256(data: Uint8Array): Uint8Array;
  /** A new Ed25519 key: 32-byte secret seed and 32-byte public key. */
  generateKeyPair(): { secretKey: Uint8Array; publicKey: Uint8Array };
  publicKeyFromSecret(secretKey: Uint8Array): Uint8Array;
  sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  randomBytes(length: number): Uint8Array;
}
