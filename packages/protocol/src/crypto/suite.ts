import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { canonicalBytes, canonicalJson, utf8 } from "../canonical.js";
import type { CryptoProvider } from "./provider.js";

/**
 * What a signature is for. The tag is prefixed to the canonical bytes, so a signature made for
 * one message type can never be replayed as another (a hello signature is not a receipt).
 */
export const signatureDomains = [
  "hello",
  "receipt",
  "receipt-cosign",
  "attestation",
  "log-head",
  "log-period",
  "log-settlement",
  "key-certificate",
  "key-activation",
] as const;
export type SignatureDomain = (typeof signatureDomains)[number];

export function domainTag(domain: SignatureDomain): string {
  return `havn/${domain}/v1\n`;
}

/** An Ed25519 key pair; keys travel as base64url of the raw 32 bytes. */
export interface KeyPair {
  readonly publicKey: string;
  readonly secretKey: string;
}

const rawCodec = 0x55;
const sha2_256 = 0x12;

export function createCryptoSuite(provider: CryptoProvider) {
  const domainBytes = new Map(signatureDomains.map((d) => [d, utf8(domainTag(d))]));

  /** The signed bytes: the domain tag, then the payload's canonical JSON. */
  function signedBytes(domain: SignatureDomain, canonicalText: string): Uint8Array {
    const tag = domainBytes.get(domain)!;
    const body = utf8(canonicalText);
    const out = new Uint8Array(tag.length + body.length);
    out.set(tag, 0);
    out.set(body, tag.length);
    return out;
  }

  const suite = {
    sha256: (data: Uint8Array | string): Uint8Array => provider.sha256(typeof data === "string" ? utf8(data) : data),
    sha256Hex: (data: Uint8Array | string): string => provider.hex(suite.sha256(data)),
    /** SHA-256 of a value's canonical JSON, hex: input_hash, params_hash and the like. */
    hashCanonical: (value: unknown): string => provider.hex(provider.sha256(canonicalBytes(value))),
    /** CIDv1 (raw codec, sha2-256), base32 — the id IPFS gives the same bytes. */
    contentId(data: Uint8Array | string): string {
      const bytes = typeof data === "string" ? utf8(data) : data;
      return CID.createV1(rawCodec, Digest.create(sha2_256, provider.sha256(bytes))).toString();
    },
    generateKeyPair: (): KeyPair => provider.generateKeyPair(),
    keyPairFromSecret(secretKey: string): KeyPair {
      return { secretKey, publicKey: provider.publicKeyFromSecret(secretKey) };
    },
    /** Signs the domain tag + canonical JSON of payload; returns base64url. */
    sign: (domain: SignatureDomain, payload: unknown, secretKey: string): string =>
      provider.sign(secretKey, signedBytes(domain, canonicalJson(payload))),
    verify: (domain: SignatureDomain, payload: unknown, signature: string, publicKey: string): boolean =>
      provider.verify(publicKey, signedBytes(domain, canonicalJson(payload)), signature),
    /** `sign` for a payload whose canonical JSON the caller already has. */
    signCanonical: (domain: SignatureDomain, canonicalText: string, secretKey: string): string =>
      provider.sign(secretKey, signedBytes(domain, canonicalText)),
    verifyCanonical: (domain: SignatureDomain, canonicalText: string, signature: string, publicKey: string): boolean =>
      provider.verify(publicKey, signedBytes(domain, canonicalText), signature),
    /** The exact bytes a signature of this domain covers, for verifying elsewhere (a worker thread). */
    signedMessage: (domain: SignatureDomain, canonicalText: string): Uint8Array => signedBytes(domain, canonicalText),
    /** Signs bytes from `signedMessage` (on a worker thread, say); returns base64url. */
    signMessage: (secretKey: string, message: Uint8Array): string => provider.sign(secretKey, message),
    /** Verifies a signature over bytes from `signedMessage`. */
    verifyMessage: (publicKey: string, message: Uint8Array, signature: string): boolean =>
      provider.verify(publicKey, message, signature),
    randomHex: (bytes: number): string => provider.randomHex(bytes),
  };
  return suite;
}

export type CryptoSuite = ReturnType<typeof createCryptoSuite>;
