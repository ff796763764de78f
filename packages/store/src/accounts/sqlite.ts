import type Database from "better-sqlite3";
import { rowToAccount, rowToApiKey, rowToSession, sessionUse, uniqueViolation } from "./rows.js";
import type {
  AccountRole,
  AccountRow,
  AccountStore,
  ApiKeyRow,
  CreateAccountResult,
  NewAccount,
  NewApiKey,
  NewSession,
  UseSessionResult,
} from "./types.js";
import { preparedOnFirstUse } from "../sqlite/domain.js";

type Raw = Record<string, unknown>;

function statements(db: Database.Database) {
  return {
    insert: db.prepare(
      `INSERT INTO accounts (id, email, wallet, password_hash, role, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
    ),
    get: db.prepare(`SELECT * FROM accounts WHERE id = ?`),
    byEmail: db.prepare(`SELECT * FROM accounts WHERE email = ?`),
    byWallet: db.prepare(`SELECT * FROM accounts WHERE wallet = ?`),
    bindWallet: db.prepare(
      `UPDATE accounts SET wallet = ?, updated_at = ? WHERE id = ? AND (wallet IS NULL OR wallet = ?)`,
    ),
    setPassword: db.prepare(`UPDATE accounts SET password_hash = ?, updated_at = ? WHERE id = ?`),
    count: db.prepare(`SELECT COUNT(*) AS n FROM accounts`),
    countRole: db.prepare(`SELECT COUNT(*) AS n FROM accounts WHERE role = ?`),
    insertKey: db.prepare(
      `INSERT INTO api_keys (id, account_id, name, prefix, key_hash, scopes, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *`,
    ),
    keyByPrefix: db.prepare(`SELECT * FROM api_keys WHERE prefix = ?`),
    listKeys: db.prepare(`SELECT * FROM api_keys WHERE account_id = ? ORDER BY created_at`),
    revokeKey: db.prepare(`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL`),
    touchKey: db.prepare(`UPDATE api_keys SET last_used_at = ? WHERE id = ?`),
    insertSession: db.prepare(
      `INSERT INTO sessions (id, account_id, family_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    sessionByHash: db.prepare(`SELECT * FROM sessions WHERE token_hash = ?`),
    useSession: db.prepare(`UPDATE sessions SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL`),
    revokeFamily: db.prepare(`UPDATE sessions SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL`),
    revokeAccount: db.prepare(`UPDATE sessions SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL`),
    insertNonce: db.prepare(`INSERT INTO siwe_nonces (nonce, created_at, expires_at) VALUES (?, ?, ?)`),
    consumeNonce: db.prepare(
      `UPDATE siwe_nonces SET used_at = ? WHERE nonce = ? AND used_at IS NULL AND expires_at > ?`,
    ),
    insertSecret: db.prepare(
      `INSERT INTO coordinator_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
    ),
    getSecret: db.prepare(`SELECT value FROM coordinator_secrets WHERE name = ?`),
    insertInvite: db.prepare(`INSERT INTO invites (code_hash, created_by, created_at, expires_at) VALUES (?, ?, ?, ?)`),
    consumeInvite: db.prepare(
      `UPDATE invites SET used_by = ?, used_at = ? WHERE code_hash = ? AND used_at IS NULL AND expires_at > ?`,
    ),
    releaseInvite: db.prepare(`UPDATE invites SET used_by = NULL, used_at = NULL WHERE code_hash = ? AND used_by = ?`),
    purgeNonces: db.prepare(`DELETE FROM siwe_nonces WHERE expires_at <= ?`),
    purgeSessions: db.prepare(`DELETE FROM sessions WHERE expires_at <= ?`),
    purgeInvites: db.prepare(`DELETE FROM invites WHERE expires_at <= ? AND used_at IS NULL`),
  };
}

/** The accounts domain on SQLite: one process owns the file, so each method is one transaction. */
export class SqliteAccounts implements AccountStore {
  private readonly q = preparedOnFirstUse(() => statements(this.db));

  constructor(private readonly db: Database.Database) {}

  async create(a: NewAccount): Promise<CreateAccountResult> {
    try {
      const row = this.q.insert.get(
        a.id,
        a.email ?? null,
        a.wallet ?? null,
        a.passwordHash ?? null,
        a.role,
        a.now,
        a.now,
      ) as Raw;
      return { ok: true, account: rowToAccount(row) };
    } catch (err) {
      const which = uniqueViolation(err);
      if (which) return { ok: false, reason: which === "email" ? "email_taken" : "wallet_taken" };
      throw err;
    }
  }

  async get(id: string): Promise<AccountRow | undefined> {
    const row = this.q.get.get(id) as Raw | undefined;
    return row && rowToAccount(row);
  }

  async byEmail(email: string): Promise<AccountRow | undefined> {
    const row = this.q.byEmail.get(email) as Raw | undefined;
    return row && rowToAccount(row);
  }

  async byWallet(wallet: string): Promise<AccountRow | undefined> {
    const row = this.q.byWallet.get(wallet) as Raw | undefined;
    return row && rowToAccount(row);
  }

  async bindWallet(
    id: string,
    wallet: string,
    now: number,
  ): Promise<{ ok: true } | { ok: false; reason: "wallet_taken" | "has_wallet" }> {
    try {
      return this.q.bindWallet.run(wallet, now, id, wallet).changes === 1
        ? { ok: true }
        : { ok: false, reason: "has_wallet" };
    } catch (err) {
      if (uniqueViolation(err) === "wallet") return { ok: false, reason: "wallet_taken" };
      throw err;
    }
  }

  async setPassword(id: string, passwordHash: string, now: number): Promise<void> {
    this.q.setPassword.run(passwordHash, now, id);
  }

  async count(role?: AccountRole): Promise<number> {
    const row = (role ? this.q.countRole.get(role) : this.q.count.get()) as { n: number };
    return row.n;
  }

  async createKey(k: NewApiKey): Promise<ApiKeyRow> {
    return rowToApiKey(
      this.q.insertKey.get(k.id, k.accountId, k.name, k.prefix, k.keyHash, JSON.stringify(k.scopes), k.now) as Raw,
    );
  }

  async keyByPrefix(prefix: string): Promise<ApiKeyRow | undefined> {
    const row = this.q.keyByPrefix.get(prefix) as Raw | undefined;
    return row && rowToApiKey(row);
  }

  async listKeys(accountId: string): Promise<ApiKeyRow[]> {
    return (this.q.listKeys.all(accountId) as Raw[]).map(rowToApiKey);
  }

  async deadKeys(keyIds: readonly string[]): Promise<string[]> {
    if (keyIds.length === 0) return [];
    const live = new Set(
      (
        this.db
          .prepare(`SELECT id FROM api_keys WHERE revoked_at IS NULL AND id IN (${keyIds.map(() => "?").join(",")})`)
          .all(...keyIds) as { id: string }[]
      ).map((r) => r.id),
    );
    return keyIds.filter((id) => !live.has(id));
  }

  async revokeKey(accountId: string, keyId: string, now: number): Promise<boolean> {
    return this.q.revokeKey.run(now, keyId, accountId).changes === 1;
  }

  async touchKey(keyId: string, now: number): Promise<void> {
    this.q.touchKey.run(now, keyId);
  }

  async createSession(s: NewSession): Promise<void> {
    this.q.insertSession.run(s.id, s.accountId, s.familyId, s.tokenHash, s.now, s.expiresAt);
  }

  async useSession(tokenHash: string, now: number, graceMs = 0, client?: string): Promise<UseSessionResult> {
    return this.db
      .transaction((): UseSessionResult => {
        const row = this.q.sessionByHash.get(tokenHash) as Raw | undefined;
        const session = row && rowToSession(row);
        const step = sessionUse(session, now, graceMs, client);
        if (step.revokeFamily) this.q.revokeFamily.run(now, session!.familyId);
        if (step.use) this.q.useSession.run(now, client ?? null, session!.id);
        return step.result;
      })
      .immediate();
  }

  async revokeFamily(familyId: string, now: number): Promise<void> {
    this.q.revokeFamily.run(now, familyId);
  }

  async revokeAccountSessions(accountId: string, now: number): Promise<void> {
    this.q.revokeAccount.run(now, accountId);
  }

  async createNonce(nonce: string, now: number, expiresAt: number): Promise<void> {
    this.q.insertNonce.run(nonce, now, expiresAt);
  }

  async consumeNonce(nonce: string, now: number): Promise<boolean> {
    return this.q.consumeNonce.run(now, nonce, now).changes === 1;
  }

  async secret(name: string, candidate: string, now: number): Promise<string> {
    this.q.insertSecret.run(name, candidate, now);
    return (this.q.getSecret.get(name) as { value: string }).value;
  }

  async createInvite(codeHash: string, createdBy: string, now: number, expiresAt: number): Promise<void> {
    this.q.insertInvite.run(codeHash, createdBy, now, expiresAt);
  }

  async consumeInvite(codeHash: string, accountId: string, now: number): Promise<boolean> {
    return this.q.consumeInvite.run(accountId, now, codeHash, now).changes === 1;
  }

  async releaseInvite(codeHash: string, accountId: string): Promise<void> {
    this.q.releaseInvite.run(codeHash, accountId);
  }

  async purgeExpired(now: number): Promise<number> {
    return this.db.transaction(
      () =>
        this.q.purgeNonces.run(now).changes +
        this.q.purgeSessions.run(now).changes +
        this.q.purgeInvites.run(now).changes,
    )();
  }
}
