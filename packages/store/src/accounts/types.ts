/** Who an account is allowed to be: `admin` may act on every account's jobs and keys. */
export type AccountRole = "user" | "admin";

/** What an API key may do. A key without `jobs` cannot submit; `node` keys join nodes. */
export const apiKeyScopes = ["jobs", "node", "admin", "metrics"] as const;
export type ApiKeyScope = (typeof apiKeyScopes)[number];

export interface AccountRow {
  readonly id: string;
  readonly email: string | null;
  /** Lower-case EVM address; shown checksummed. */
  readonly wallet: string | null;
  readonly passwordHash: string | null;
  readonly role: AccountRole;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export interface NewAccount {
  readonly id: string;
  readonly email?: string | null;
  readonly wallet?: string | null;
  readonly passwordHash?: string | null;
  readonly role: AccountRole;
  readonly now: number;
}

export interface ApiKeyRow {
  readonly id: string;
  readonly accountId: string;
  readonly name: string;
  /** The first characters of the secret, after `havn_sk_`: finds the row, shown to the owner. */
  readonly prefix: string;
  /** SHA-256 (hex) of the whole key. */
  readonly keyHash: string;
  readonly scopes: readonly ApiKeyScope[];
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
  readonly revokedAt: number | null;
}

export interface NewApiKey {
  readonly id: string;
  readonly accountId: string;
  readonly name: string;
  readonly prefix: string;
  readonly keyHash: string;
  readonly scopes: readonly ApiKeyScope[];
  readonly now: number;
}

/** A refresh token (hashed) of one login (`familyId`). */
export interface SessionRow {
  readonly id: string;
  readonly accountId: string;
  readonly familyId: string;
  readonly tokenHash: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly usedAt: number | null;
  /** Who spent it: an opaque fingerprint of the client (see `useSession`). */
  readonly usedBy: string | null;
  readonly revokedAt: number | null;
}

export interface NewSession {
  readonly id: string;
  readonly accountId: string;
  readonly familyId: string;
  readonly tokenHash: string;
  readonly now: number;
  readonly expiresAt: number;
}

export type UseSessionResult =
  | { readonly ok: true; readonly session: SessionRow }
  | { readonly ok: false; readonly reason: "unknown" | "expired" | "revoked" | "reused" | "raced" };

export type CreateAccountResult =
  | { readonly ok: true; readonly account: AccountRow }
  | { readonly ok: false; readonly reason: "email_taken" | "wallet_taken" };

/**
 * Accounts and their credentials: the identity every job, node and (later) posting belongs to.
 * Secrets are never stored: passwords as argon2id hashes, API keys, refresh tokens and invites as
 * SHA-256 hashes.
 */
export interface AccountStore {
  create(input: NewAccount): Promise<CreateAccountResult>;
  get(id: string): Promise<AccountRow | undefined>;
  byEmail(email: string): Promise<AccountRow | undefined>;
  byWallet(wallet: string): Promise<AccountRow | undefined>;
  /**
   * Binds a wallet to an account that has none (or has this one); refused when another account
   * holds it (`wallet_taken`) or this account holds another (`has_wallet`: one wallet per account,
   * never silently replaced).
   */
  bindWallet(
    id: string,
    wallet: string,
    now: number,
  ): Promise<{ ok: true } | { ok: false; reason: "wallet_taken" | "has_wallet" }>;
  setPassword(id: string, passwordHash: string, now: number): Promise<void>;
  /** Accounts, or accounts with this role. */
  count(role?: AccountRole): Promise<number>;

  createKey(input: NewApiKey): Promise<ApiKeyRow>;
  keyByPrefix(prefix: string): Promise<ApiKeyRow | undefined>;
  listKeys(accountId: string): Promise<ApiKeyRow[]>;
  /** Revokes one of this account's keys; false when it has no such live key. */
  revokeKey(accountId: string, keyId: string, now: number): Promise<boolean>;
  /** Of these key ids, those no longer live (revoked, or gone). */
  deadKeys(keyIds: readonly string[]): Promise<string[]>;
  /** Records a key's use (at most once a minute per key is enough for `last_used_at`). */
  touchKey(keyId: string, now: number): Promise<void>;

  createSession(input: NewSession): Promise<void>;
  /**
   * Spends a refresh token, atomically. A token spent before revokes its whole family: whoever
   * presents it second holds a stolen copy (or the owner does, and the thief already used it) —
   * unless it was spent less than `graceMs` ago by the same `client` (a fingerprint of where it
   * came from: `raced`, two of the owner's programs on one machine refreshed at once; the second
   * is refused, nothing is revoked). A thief who spent it first is another client: the owner's
   * second spend ends the thief's login with the owner's.
   */
  useSession(tokenHash: string, now: number, graceMs?: number, client?: string): Promise<UseSessionResult>;
  revokeFamily(familyId: string, now: number): Promise<void>;
  revokeAccountSessions(accountId: string, now: number): Promise<void>;

  createNonce(nonce: string, now: number, expiresAt: number): Promise<void>;
  /** Spends a Sign-In with Ethereum nonce: true once, before it expires. */
  consumeNonce(nonce: string, now: number): Promise<boolean>;

  /**
   * A secret the coordinator keeps for itself: `candidate` is stored if the name has none yet,
   * and whichever is stored is returned — every replica ends up with the same.
   */
  secret(name: string, candidate: string, now: number): Promise<string>;

  createInvite(codeHash: string, createdBy: string, now: number, expiresAt: number): Promise<void>;
  /** Spends an invitation for `accountId`: true once, before it expires. */
  consumeInvite(codeHash: string, accountId: string, now: number): Promise<boolean>;
  /** Gives back an invitation spent for `accountId` (its account could not be made after all). */
  releaseInvite(codeHash: string, accountId: string): Promise<void>;

  /**
   * Deletes what has expired and can no longer be used: Sign-In with Ethereum nonces, sessions
   * (refresh tokens) and unused invitations. Returns how many rows went.
   */
  purgeExpired(now: number): Promise<number>;
}
