import { hash as argonHash, verify as argonVerify } from "@node-rs/argon2";
import { checksumAddress, HavnError, type NodeCredential } from "@havn/protocol";
import {
  apiKeyScopes,
  type AccountRole,
  type AccountRow,
  type ApiKeyRow,
  type ApiKeyScope,
  type Store,
} from "@havn/store";
import type { CoordinatorConfig } from "../config.js";
import {
  apiKeyPrefixOf,
  newApiKey,
  newId,
  newInviteCode,
  newNonce,
  newRefreshToken,
  sameHash,
  sha256Hex,
} from "./credentials.js";
import { verifySiwe } from "./siwe.js";
import { AccessTokens, looksLikeJwt } from "./tokens.js";

/** Who a request acts as, and what it may do. */
export interface Principal {
  readonly accountId: string;
  readonly role: AccountRole;
  readonly scopes: ReadonlySet<ApiKeyScope>;
  /** `api_key`, an access token (a login), or dev mode's account. */
  readonly via: "api_key" | "access_token" | "dev";
  readonly keyId?: string;
}

/**
 * What a route asks of its caller:
 * - `public`: anyone, no credential looked at;
 * - `optional`: anyone; a credential, when given, must be valid and is used (public outputs);
 * - `account`: any valid credential;
 * - `jobs`, `metrics`: a credential with that scope (a login has `jobs`);
 * - `owner`: a login, or an `admin`-scoped key — what manages the account itself (its keys): a
 *   leaked `jobs` key must not mint more keys;
 * - `admin`: an admin's login or `admin`-scoped key.
 */
export type AuthLevel = "public" | "optional" | "account" | "jobs" | "metrics" | "owner" | "admin";

/** The scopes of a login: everything a user may do; an admin may do everything. */
const loginScopes = (role: AccountRole): ReadonlySet<ApiKeyScope> =>
  new Set(role === "admin" ? apiKeyScopes : (["jobs", "node"] as const));

/** How long a verified API key is trusted without asking the database again, in ms. */
const keyCacheMs = 10_000;
/** `last_used_at` is written at most this often per key, in ms. */
const touchEveryMs = 60_000;
/** `metrics` is the operator's view of the whole coordinator, as `admin` is its control. */
const adminOnlyScopes: ReadonlySet<string> = new Set(["admin", "metrics"]);
/** Live API keys one account may hold. */
const maxKeysPerAccount = 100;
/** The dev account of dev mode (`havn up`). */
export const devAccount = { id: "acc-dev", email: "dev@localhost" } as const;

/** An account as the API shows it. */
export function accountView(a: AccountRow) {
  return {
    id: a.id,
    object: "account" as const,
    email: a.email,
    wallet: a.wallet === null ? null : checksumAddress(a.wallet),
    role: a.role,
    created_at: a.createdAt,
  };
}

/** An API key as its owner sees it: never the key itself, which was shown once. */
export function apiKeyView(k: ApiKeyRow) {
  return {
    id: k.id,
    object: "api_key" as const,
    name: k.name,
    prefix: `havn_sk_${k.prefix}…`,
    scopes: k.scopes,
    created_at: k.createdAt,
    last_used_at: k.lastUsedAt,
    revoked_at: k.revokedAt,
  };
}

export interface TokenPair {
  readonly access_token: string;
  readonly token_type: "Bearer";
  readonly expires_in: number;
  readonly refresh_token: string;
}

/**
 * Identity on the coordinator: accounts (email + argon2id password, and/or an EVM wallet by
 * Sign-In with Ethereum), short-lived access tokens with rotating refresh tokens, scoped API
 * keys, invitations, and the credentials nodes join with. Every secret is stored hashed.
 */
export class AuthService {
  private tokens: AccessTokens | undefined;
  private readonly keyCache = new Map<string, { principal: Principal; keyHash: string; until: number }>();
  private readonly touched = new Map<string, number>();
  /** EIP-4361 domains a wallet sign-in may name (see `publicUrl`); set at listen when not configured. */
  private siweDomains: readonly string[];
  private readonly revokedListeners: ((keyId: string) => void)[] = [];
  private readonly boundListeners: ((accountId: string, wallet: string) => Promise<void>)[] = [];

  constructor(
    private readonly store: Store,
    private readonly config: CoordinatorConfig,
  ) {
    this.siweDomains = config.siweDomain ? [config.siweDomain] : [];
  }

  /**
   * Where the coordinator listens, once it does: wallet sign-in on a loopback address may name
   * it (a configured `publicUrl`/`siweDomain` wins). Any other address needs `publicUrl`.
   */
  listeningOn(address: { host: string; port: number }): void {
    if (this.config.siweDomain) return;
    if (["127.0.0.1", "::1", "localhost"].includes(address.host))
      this.siweDomains = [`127.0.0.1:${address.port}`, `localhost:${address.port}`, `[::1]:${address.port}`];
  }

  /** Runs `listener` when an account binds a wallet (the wallet claims the account's custodial balance). */
  onWalletBound(listener: (accountId: string, wallet: string) => Promise<void>): void {
    this.boundListeners.push(listener);
  }

  /** Runs `listener` with a key's id when it is revoked here (nodes joined with it are closed). */
  onKeyRevoked(listener: (keyId: string) => void): void {
    this.revokedListeners.push(listener);
  }

  /** Loads the signing secret (configured, or the one kept in the database) and makes dev mode's account. */
  async init(bootstrapAdmin?: { email: string; password: string }): Promise<void> {
    const now = Date.now();
    const secret = this.config.jwtSecret ?? (await this.store.accounts.secret("jwt", newRefreshToken().slice(8), now));
    this.tokens = new AccessTokens(secret, this.config.accessTokenTtlSeconds);
    if (this.config.mode === "dev" && !(await this.store.accounts.get(devAccount.id))) {
      await this.store.accounts.create({ id: devAccount.id, email: devAccount.email, role: "admin", now });
    }
    // Replicas starting together on one fresh database all try: the first makes it, the others
    // find the email taken and go on.
    if (bootstrapAdmin && !(await this.hasAdmin()))
      await this.createAccount({ ...bootstrapAdmin, role: "admin" }).catch((err: unknown) => {
        if (!(err instanceof HavnError && err.code === "AUTH_EMAIL_TAKEN")) throw err;
      });
  }

  private get access(): AccessTokens {
    if (!this.tokens) throw new Error("AuthService.init() was not called");
    return this.tokens;
  }

  /** Creates an admin account (`havn admin create`, on the coordinator's host). */
  async createAdmin(email: string, password: string): Promise<AccountRow> {
    return this.createAccount({ email, password, role: "admin" });
  }

  /** Whether an account can administer this coordinator yet (production needs one to face a network). */
  async hasAdmin(): Promise<boolean> {
    const dev = await this.store.accounts.get(devAccount.id);
    return (await this.store.accounts.count("admin")) - (dev?.role === "admin" ? 1 : 0) > 0;
  }

  // ------------------------------------------------------------------------------------------
  // Requests

  /**
   * The principal a bearer credential stands for: undefined without one, an AUTH_INVALID error
   * for one that does not verify. In dev mode every request is the dev account.
   */
  async authenticate(authorization: string | undefined): Promise<Principal | undefined> {
    if (this.config.mode === "dev")
      return { accountId: devAccount.id, role: "admin", scopes: loginScopes("admin"), via: "dev" };
    if (!authorization) return undefined;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) throw new HavnError("AUTH_INVALID", "Send the credential as `Authorization: Bearer <key or token>`.");
    return this.principalOf(match[1]!);
  }

  private async principalOf(credential: string): Promise<Principal> {
    const now = Date.now();
    const prefix = apiKeyPrefixOf(credential);
    if (prefix !== undefined) {
      const keyHash = sha256Hex(credential);
      const cached = this.keyCache.get(prefix);
      if (cached && cached.until > now && sameHash(cached.keyHash, keyHash)) return cached.principal;
      const key = await this.store.accounts.keyByPrefix(prefix);
      if (!key || key.revokedAt !== null || !sameHash(key.keyHash, keyHash)) throw invalidCredential();
      const account = await this.store.accounts.get(key.accountId);
      // Keys made in dev mode on this database are nobody's outside it.
      if (!account || (account.id === devAccount.id && this.config.mode !== "dev")) throw invalidCredential();
      // A key never grants more than its account may: a user's `admin` or `metrics` key (made
      // before they were for admins only, or by an admin since demoted) grants neither.
      const scopes = new Set(key.scopes.filter((s) => !adminOnlyScopes.has(s) || account.role === "admin"));
      const principal: Principal = { accountId: account.id, role: account.role, scopes, via: "api_key", keyId: key.id };
      this.keyCache.set(prefix, { principal, keyHash, until: now + keyCacheMs });
      if ((this.touched.get(key.id) ?? 0) + touchEveryMs <= now) {
        this.touched.set(key.id, now);
        void this.store.accounts.touchKey(key.id, now).catch(() => {});
      }
      return principal;
    }
    if (looksLikeJwt(credential)) {
      const claims = await this.access.verify(credential);
      if (!claims) throw invalidCredential();
      return { accountId: claims.accountId, role: claims.role, scopes: loginScopes(claims.role), via: "access_token" };
    }
    throw invalidCredential();
  }

  /** Whether a principal (undefined: anonymous) may call a route at this level. */
  allows(principal: Principal | undefined, level: AuthLevel): boolean {
    switch (level) {
      case "public":
      case "optional":
        return true;
      case "account":
        return principal !== undefined;
      case "jobs":
      case "metrics":
        return principal !== undefined && principal.scopes.has(level);
      case "owner":
        return principal !== undefined && (principal.via !== "api_key" || principal.scopes.has("admin"));
      case "admin":
        return principal !== undefined && principal.role === "admin" && principal.scopes.has("admin");
    }
  }

  /** Whether a principal may act on what an account owns (its own, or any as admin). */
  mayActFor(principal: Principal, accountId: string | null): boolean {
    return principal.accountId === accountId || (principal.role === "admin" && principal.scopes.has("admin"));
  }

  // ------------------------------------------------------------------------------------------
  // Accounts and logins

  private async createAccount(input: {
    email: string;
    password: string;
    role: AccountRole;
    id?: string;
  }): Promise<AccountRow> {
    const r = await this.store.accounts.create({
      id: input.id ?? newId("acc"),
      email: normaliseEmail(input.email),
      passwordHash: await argonHash(input.password),
      role: input.role,
      now: Date.now(),
    });
    if (!r.ok) throw new HavnError("AUTH_EMAIL_TAKEN", "An account already has this email.");
    return r.account;
  }

  /** `POST /auth/register`: open, or with an invitation when registration is by invite. */
  async register(input: { email: string; password: string; invite?: string | undefined }): Promise<{
    account: AccountRow;
    tokens: TokenPair;
  }> {
    const id = newId("acc");
    // The invitation first: without a valid one, nothing is said about which emails exist.
    let invite: string | undefined;
    if (this.config.registration === "invite") {
      if (!input.invite)
        throw new HavnError("AUTH_REGISTRATION_CLOSED", "Registration on this coordinator needs an invitation.");
      invite = sha256Hex(input.invite);
      if (!(await this.store.accounts.consumeInvite(invite, id, Date.now())))
        throw new HavnError("AUTH_INVITE_INVALID", "The invitation is unknown, used or expired.");
    }
    let account: AccountRow;
    try {
      account = await this.createAccount({ email: input.email, password: input.password, role: "user", id });
    } catch (err) {
      // The account was not made: the invitation is given back — unless the email is taken, so
      // that one invitation cannot ask about email after email.
      const taken = err instanceof HavnError && err.code === "AUTH_EMAIL_TAKEN";
      if (invite && !taken) await this.store.accounts.releaseInvite(invite, id);
      throw err;
    }
    return { account, tokens: await this.startSession(account) };
  }

  /** `POST /auth/login`. The same answer, after the same work, for a wrong email as for a wrong password. */
  async login(input: { email: string; password: string }): Promise<{ account: AccountRow; tokens: TokenPair }> {
    const account = await this.store.accounts.byEmail(normaliseEmail(input.email));
    const ok = account?.passwordHash
      ? await argonVerify(account.passwordHash, input.password).catch(() => false)
      : await argonVerify(decoyHash, input.password).then(
          () => false,
          () => false,
        );
    if (!account || !ok) throw new HavnError("AUTH_LOGIN_FAILED", "The email or the password is wrong.");
    return { account, tokens: await this.startSession(account) };
  }

  private async startSession(account: AccountRow, familyId = newId("fam")): Promise<TokenPair> {
    const now = Date.now();
    const refresh = newRefreshToken();
    await this.store.accounts.createSession({
      id: newId("ses"),
      accountId: account.id,
      familyId,
      tokenHash: sha256Hex(refresh),
      now,
      expiresAt: now + this.config.refreshTokenTtlSeconds * 1000,
    });
    const access = await this.access.issue({ accountId: account.id, role: account.role });
    return { access_token: access.token, token_type: "Bearer", expires_in: access.expiresIn, refresh_token: refresh };
  }

  /**
   * `POST /auth/refresh`: spends a refresh token for a new pair (rotation); a reused one ends its
   * login — unless the same `client` (a fingerprint: address and user agent) spent it within the
   * grace, which is two of the owner's programs refreshing at once.
   */
  async refresh(refreshToken: string, client?: string): Promise<TokenPair> {
    const used = await this.store.accounts.useSession(
      sha256Hex(refreshToken),
      Date.now(),
      this.config.refreshReuseGraceSeconds * 1000,
      client,
    );
    if (!used.ok)
      throw new HavnError(
        "AUTH_REFRESH_INVALID",
        used.reason === "reused"
          ? "This refresh token was used before: its login is revoked; sign in again."
          : used.reason === "raced"
            ? "This refresh token was just spent by another request: use the tokens that request got."
            : "The refresh token is unknown, expired or revoked; sign in again.",
        { details: { reason: used.reason } },
      );
    const account = await this.store.accounts.get(used.session.accountId);
    if (!account) throw new HavnError("AUTH_REFRESH_INVALID", "The account no longer exists.");
    return this.startSession(account, used.session.familyId);
  }

  /** `POST /auth/logout`: ends the login the refresh token belongs to (its access tokens expire on their own). */
  async logout(refreshToken: string): Promise<void> {
    const used = await this.store.accounts.useSession(sha256Hex(refreshToken), Date.now());
    if (used.ok) await this.store.accounts.revokeFamily(used.session.familyId, Date.now());
  }

  async account(id: string): Promise<AccountRow> {
    const account = await this.store.accounts.get(id);
    if (!account) throw invalidCredential();
    return account;
  }

  // ------------------------------------------------------------------------------------------
  // Wallets

  /** `POST /auth/siwe/nonce`: a single-use nonce for a Sign-In with Ethereum message. */
  async siweNonce(): Promise<{ nonce: string; expiresAt: number }> {
    const now = Date.now();
    const nonce = newNonce();
    const expiresAt = now + this.config.siweNonceTtlSeconds * 1000;
    await this.store.accounts.createNonce(nonce, now, expiresAt);
    return { nonce, expiresAt };
  }

  /**
   * `POST /auth/siwe/verify`: a signed EIP-4361 message logs in the wallet's account (made on
   * first sign-in, as registration allows), or — from a signed-in caller — binds the wallet to it.
   */
  async siweVerify(input: {
    message: string;
    signature: string;
    /** Binding only: the account's password, checked again (a stolen access token alone may not bind). */
    password?: string | undefined;
    principal?: Principal | undefined;
  }): Promise<{ account: AccountRow; tokens?: TokenPair }> {
    const now = Date.now();
    if (this.siweDomains.length === 0)
      throw new HavnError(
        "AUTH_SIWE_INVALID",
        "Wallet sign-in needs the address clients reach this coordinator at: start it with --public-url.",
      );
    const binding = input.principal !== undefined && input.principal.via !== "dev";
    // Binding a wallet gives it the account's logins: a scoped key (a leaked `jobs` key) may not.
    if (binding && !this.allows(input.principal, "owner"))
      throw new HavnError(
        "AUTH_FORBIDDEN",
        "Binding a wallet to an account needs its login (or an admin-scoped key), not a scoped API key.",
      );
    if (binding) {
      const account = await this.account(input.principal!.accountId);
      if (!account.passwordHash)
        throw new HavnError("AUTH_WALLET_BOUND", "This account signs in with its wallet: it has one.");
      if (input.password === undefined)
        throw new HavnError("AUTH_FORBIDDEN", "Binding a wallet needs the account's password in `password`.");
      if (!(await argonVerify(account.passwordHash, input.password).catch(() => false)))
        throw new HavnError("AUTH_LOGIN_FAILED", "The password is wrong.");
    }
    const { address, nonce } = await verifySiwe({
      message: input.message,
      signature: input.signature,
      domains: this.siweDomains,
      now,
    });
    if (!(await this.store.accounts.consumeNonce(nonce, now)))
      throw new HavnError("AUTH_SIWE_INVALID", "The nonce of this message is unknown, used or expired.");
    const holder = await this.store.accounts.byWallet(address);
    if (binding) {
      const accountId = input.principal!.accountId;
      if (holder && holder.id !== accountId)
        throw new HavnError("AUTH_WALLET_TAKEN", "Another account already holds this wallet.");
      const bound = await this.store.accounts.bindWallet(accountId, address, now);
      if (!bound.ok)
        throw bound.reason === "has_wallet"
          ? new HavnError("AUTH_WALLET_BOUND", "This account already has another wallet: an account holds one.")
          : new HavnError("AUTH_WALLET_TAKEN", "Another account already holds this wallet.");
      for (const listener of this.boundListeners) await listener(accountId, address);
      return { account: await this.account(accountId) };
    }
    if (holder) return { account: holder, tokens: await this.startSession(holder) };
    if (this.config.registration === "invite")
      throw new HavnError("AUTH_REGISTRATION_CLOSED", "Registration on this coordinator needs an invitation.");
    const created = await this.store.accounts.create({ id: newId("acc"), wallet: address, role: "user", now });
    if (!created.ok) throw new HavnError("AUTH_WALLET_TAKEN", "Another account already holds this wallet.");
    return { account: created.account, tokens: await this.startSession(created.account) };
  }

  // ------------------------------------------------------------------------------------------
  // API keys and invitations

  /** A new API key for the principal's account; the key is in the answer once and never again. */
  async createKey(
    principal: Principal,
    input: { name: string; scopes: readonly ApiKeyScope[] },
  ): Promise<{ key: string; row: ApiKeyRow }> {
    const wanted = [...new Set(input.scopes)];
    const beyond = wanted.filter((s) => adminOnlyScopes.has(s) && principal.role !== "admin");
    if (beyond.length > 0)
      throw new HavnError(
        "AUTH_FORBIDDEN",
        `Only an admin account may create a key with ${beyond.join(" or ")} scope.`,
      );
    const live = (await this.store.accounts.listKeys(principal.accountId)).filter((k) => k.revokedAt === null);
    if (live.length >= maxKeysPerAccount)
      throw new HavnError("AUTH_KEY_LIMIT", `This account has ${maxKeysPerAccount} live API keys: revoke one first.`);
    const { key, prefix, keyHash } = newApiKey();
    const row = await this.store.accounts.createKey({
      id: newId("key"),
      accountId: principal.accountId,
      name: input.name,
      prefix,
      keyHash,
      scopes: wanted,
      now: Date.now(),
    });
    return { key, row };
  }

  listKeys(principal: Principal): Promise<ApiKeyRow[]> {
    return this.store.accounts.listKeys(principal.accountId);
  }

  /** Revokes one of the principal's keys; it stops working here at once (other replicas: within 10 s). */
  async revokeKey(principal: Principal, keyId: string): Promise<void> {
    const keys = await this.store.accounts.listKeys(principal.accountId);
    const key = keys.find((k) => k.id === keyId);
    if (!key || !(await this.store.accounts.revokeKey(principal.accountId, keyId, Date.now())))
      throw new HavnError("AUTH_KEY_NOT_FOUND", "This account has no live API key with this id.");
    this.keyCache.delete(key.prefix);
    for (const listener of this.revokedListeners) listener(keyId);
  }

  /** An invitation code (shown once), for registration by invite. */
  async createInvite(principal: Principal, ttlSeconds: number): Promise<{ code: string; expiresAt: number }> {
    const now = Date.now();
    const code = newInviteCode();
    const expiresAt = now + ttlSeconds * 1000;
    await this.store.accounts.createInvite(sha256Hex(code), principal.accountId, now, expiresAt);
    return { code, expiresAt };
  }

  // ------------------------------------------------------------------------------------------
  // Nodes

  /**
   * Who a joining node is: its operator's account (a `node`-scoped API key), no account (the
   * network's join token), or dev mode's account. Undefined: it may not join. A login's access
   * token is no node credential: it expires within the hour, and the node's next reconnect would
   * be refused.
   */
  async nodeAccount(
    credential: NodeCredential | undefined,
  ): Promise<{ accountId: string | null; keyId?: string | undefined } | undefined> {
    if (this.config.mode === "dev") return { accountId: devAccount.id };
    if (credential?.api_key) {
      const principal = await this.principalOf(credential.api_key).catch(() => undefined);
      if (principal?.via !== "api_key" || !principal.scopes.has("node")) return undefined;
      if (this.config.nodeAdmission === "token" && principal.role !== "admin") return undefined;
      return { accountId: principal.accountId, keyId: principal.keyId };
    }
    const token = this.config.joinToken;
    if (credential?.join_token && token && sameHash(sha256Hex(credential.join_token), sha256Hex(token)))
      return { accountId: null };
    return undefined;
  }
}

function invalidCredential(): HavnError {
  return new HavnError("AUTH_INVALID", "The credential is not valid: unknown, expired or revoked.");
}

function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Verified against when the email is unknown, so a wrong email costs what a wrong password does. */
const decoyHash = "$argon2id$v=19$m=19456,t=2,p=1$x/vTX7UURnSlxAIeSbr8Xw$73TLatuMSXvUwMoBSijKxKfADwAtgezi6dw+mneIMs0";
