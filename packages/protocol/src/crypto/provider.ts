/**
 * The primitives protocol needs, implemented once for Node (node:crypto and Buffer, fast) and
 * once for browsers (@noble and plain JS, portable). Both give identical bytes: Ed25519 is
 * deterministic. Keys and signatures cross this interface as base64url text, so the Node side
 * can cache its key objects by that text and never decode on a hot path.
 */
export interface CryptoProvider {
  sha256(data: Uint8Array): Uint8Array;
  /** A new Ed25519 key: base64url of the 32-byte secret seed and of the 32-byte public key. */
  generateKeyPair(): { secretKey: string; publicKey: string };
  /** The base64url public key of a base64url secret seed; throws if it is not 32 bytes. */
  publicKeyFromSecret(secretKey: string): string;
  /** A base64url Ed25519 signature. */
  sign(secretKey: string, message: Uint8Array): string;
  /** False, never a throw, for malformed keys or signatures. */
  verify(publicKey: string, message: Uint8Array, signature: string): boolean;
  randomHex(bytes: number): string;
  hex(bytes: Uint8Array): string;
}
