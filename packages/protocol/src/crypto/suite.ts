import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { canonicalBytes, utf8 } from "../canonical.js";
import { fromBase64Url, toBase64Url, toHex } from "../encoding.js";
import type { CryptoProvider } from "./provider.js";

/**
 * What a signature is for. The tag is prefixed to the canonical bytes, so a signature made for
 * one message type can never be replayed as another (a hello signature is not a receipt).
 */
export const signatureDomains = ["hello", "receipt", "receipt-cosign", "attestation"] as const;
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

  function signedBytes(domain: SignatureDomain, payload: unknown): Uint8Array {
    const tag = domainBytes.get(domain)!;
    const body = canonicalBytes(payload);
    const out = new Uint8Array(tag.length + body.length);
    out.set(tag, 0);
    out.set(body, tag.length);
    return out;
  }

  const suite = {
    sha256: (data: Uint8Array | string): Uint8Array => provider.sha256(typeof data === "string" ? utf8(data) : data),
    sha256Hex: (data: Uint8Array | string): string => toHex(suite.sha256(data)),
    /** SHA-256 of a value's canonical JSON, hex: input_hash, params_hash and the like. */
    hashCanonical: (value: unknown): string => toHex(provider.sha256(canonicalBytes(value))),
    /** CIDv1 (raw codec, sha2-256), base32 — the id IPFS gives the same bytes. */
    contentId(data: Uint8Array | string): string {
      const bytes = typeof data === "string" ? utf8(data) : data;
      return CID.createV1(rawCodec, Digest.create(sha2_256, provider.sha256(bytes))).toString();
    },
    generateKeyPair(): KeyPair {
      const { secretKey, publicKey } = provider.generateKeyPair();
      return { secretKey: toBase64Url(secretKey), publicKey: toBase64Url(publicKey) };
    },
    keyPairFromSecret(secretKey: string): KeyPair {
      const secret = fromBase64Url(secretKey);
      if (secret.length !== 32) throw new TypeError("keyPairFromSecret: an Ed25519 secret key is 32 bytes");
      return { secretKey, publicKey: toBase64Url(provider.publicKeyFromSecret(secret)) };
    },
    /** Signs the domain tag + canonical JSON of payload; returns base64url. */
    sign(domain: SignatureDomain, payload: unknown, secretKey: string): string {
      return toBase64Url(provider.sign(fromBase64Url(secretKey), signedBytes(domain, payload)));
    },
    verify(domain: SignatureDomain, payload: unknown, signature: string, publicKey: string): boolean {
      let sig: Uint8Array;
      let key: Uint8Array;
      try {
        sig = fromBase64Url(signature);
        key = fromBase64Url(publicKey);
      } catch {
        return false;
      }
      return provider.verify(key, signedBytes(domain, payload), sig);
    },
    randomHex: (bytes: number): string => toHex(provider.randomBytes(bytes)),
  };
  return suite;
}

export type CryptoSuite = ReturnType<typeof createCryptoSuite>;
