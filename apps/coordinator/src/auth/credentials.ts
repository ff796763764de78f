import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The secrets havn hands out, and how they are kept: only as SHA-256 hashes (argon2id is for
 * passwords — at tens of ms a check it would cost every API request that much). Each kind has a
 * prefix, so a leaked one is recognisable (secret scanners key on them) and can't be mistaken
 * for another kind.
 */
export const secretPrefixes = { apiKey: "havn_sk_", refresh: "havn_rt_", invite: "havn_inv_" } as const;

/** 256 random bits, base64url: 43 characters. */
const secretOf = (prefix: string) => `${prefix}${randomBytes(32).toString("base64url")}`;

export const sha256Hex = (text: string) => createHash("sha256").update(text).digest("hex");

/** Characters of an API key's secret, after `havn_sk_`, that find its row and are shown to its owner. */
const apiKeyPrefixLength = 12;
const apiKeyPattern = /^havn_sk_[A-Za-z0-9_-]{43}$/;

/** A new API key: the key itself (shown once), the prefix that finds it, the hash that proves it. */
export function newApiKey(): { key: string; prefix: string; keyHash: string } {
  const key = secretOf(secretPrefixes.apiKey);
  return { key, prefix: apiKeyPrefixOf(key)!, keyHash: sha256Hex(key) };
}

/** The lookup prefix of something that looks like an API key; undefined for anything else. */
export function apiKeyPrefixOf(candidate: string): string | undefined {
  if (!apiKeyPattern.test(candidate)) return undefined;
  return candidate.slice(secretPrefixes.apiKey.length, secretPrefixes.apiKey.length + apiKeyPrefixLength);
}

/** Compares two hex hashes in constant time. */
export function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, "hex");
  const y = Buffer.from(b, "hex");
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

export const newRefreshToken = () => secretOf(secretPrefixes.refresh);
export const newInviteCode = () => secretOf(secretPrefixes.invite);
/** An account, key, session or family id: a type prefix and 96 random bits. */
export const newId = (prefix: "acc" | "key" | "ses" | "fam") => `${prefix}-${randomBytes(12).toString("hex")}`;
/** A Sign-In with Ethereum nonce: EIP-4361 wants 8 or more letters and digits. */
export const newNonce = () => randomBytes(16).toString("hex");
