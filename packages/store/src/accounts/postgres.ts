import type pg from "pg";
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

type Raw = Record<string, unknown>;
type Tx = <T>(fn: (c: pg.PoolClient) => Promise<T>) => Promise<T>;

/** The accounts domain on PostgreSQL: one statement per method, a transaction where two must agree. */
export class PostgresAccounts implements AccountStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly tx: Tx,
  ) {}

  private async one(sql: string, params: unknown[]): Promise<Raw | undefined> {
    return (await this.pool.query(sql, params)).rows[0] as Raw | undefined;
  }

  async create(a: NewAccount): Promise<CreateAccountResult> {
    try {
      const row = await this.one(
        `INSERT INTO accounts (id, email, wallet, password_hash, role, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *`,
        [a.id, a.email ?? null, a.wallet ?? null, a.passwordHash ?? null, a.role, a.now],
      );
      return { ok: true, account: rowToAccount(row!) };
    } catch (err) {
      const which = uniqueViolation(err);
      if (which) return { ok: false, reason: which === "email" ? "email_taken" : "wallet_taken" };
      throw err;
    }
  }

  async get(id: string): Promise<AccountRow | undefined> {
    const row = await this.one(`SELECT * FROM accounts WHERE id = $1`, [id]);
    return row && rowToAccount(row);
  }

  async byEmail(email: string): Promise<AccountRow | undefined> {
    const row = await this.one(`SELECT * FROM accounts WHERE email = $1`, [email]);
    return row && rowToAccount(row);
  }

  async byWallet(wallet: string): Promise<AccountRow | undefined> {
    const row = await this.one(`SELECT * FROM accounts WHERE wallet = $1`, [wallet]);
    return row && rowToAccount(row);
  }

  async bindWallet(
    id: string,
    wallet: string,
    now: number,
  ): Promise<{ ok: true } | { ok: false; reason: "wallet_taken" | "has_wallet" }> {
    try {
      const r = await this.pool.query(
        `UPDATE accounts SET wallet = $1, updated_at = $2 WHERE id = $3 AND (wallet IS NULL OR wallet = $1)`,
        [wallet, now, id],
      );
      return r.rowCount === 1 ? { ok: true } : { ok: false, reason: "has_wallet" };
    } catch (err) {
      if (uniqueViolation(err) === "wallet") return { ok: false, reason: "wallet_taken" };
      throw err;
    }
  }

  async setPassword(id: string, passwordHash: string, now: number): Promise<void> {
    await this.pool.query(`UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3`, [
      passwordHash,
      now,
      id,
    ]);
  }

  async count(role?: AccountRole): Promise<number> {
    const row = role
      ? await this.one(`SELECT COUNT(*)::int AS n FROM accounts WHERE role = $1`, [role])
      : await this.one(`SELECT COUNT(*)::int AS n FROM accounts`, []);
    return Number(row!.n);
  }

  async createKey(k: NewApiKey): Promise<ApiKeyRow> {
    const row = await this.one(
      `INSERT INTO api_keys (id, account_id, name, prefix, key_hash, scopes, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [k.id, k.accountId, k.name, k.prefix, k.keyHash, JSON.stringify(k.scopes), k.now],
    );
    return rowToApiKey(row!);
  }

  async keyByPrefix(prefix: string): Promise<ApiKeyRow | undefined> {
    const row = await this.one(`SELECT * FROM api_keys WHERE prefix = $1`, [prefix]);
    return row && rowToApiKey(row);
  }

  async listKeys(accountId: string): Promise<ApiKeyRow[]> {
    const rows = (
      await this.pool.query(`SELECT * FROM api_keys WHERE account_id = $1 ORDER BY created_at`, [accountId])
    ).rows as Raw[];
    return rows.map(rowToApiKey);
  }

  async deadKeys(keyIds: readonly string[]): Promise<string[]> {
    if (keyIds.length === 0) return [];
    const { rows } = await this.pool.query(`SELECT id FROM api_keys WHERE revoked_at IS NULL AND id = ANY($1)`, [
      keyIds,
    ]);
    const live = new Set(rows.map((r: { id: string }) => r.id));
    return keyIds.filter((id) => !live.has(id));
  }

  async revokeKey(accountId: string, keyId: string, now: number): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL`,
      [now, keyId, accountId],
    );
    return r.rowCount === 1;
  }

  async touchKey(keyId: string, now: number): Promise<void> {
    await this.pool.query(`UPDATE api_keys SET last_used_at = $1 WHERE id = $2`, [now, keyId]);
  }

  async createSession(s: NewSession): Promise<void> {
    await this.pool.query(
      `INSERT INTO sessions (id, account_id, family_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [s.id, s.accountId, s.familyId, s.tokenHash, s.now, s.expiresAt],
    );
  }

  async useSession(tokenHash: string, now: number, graceMs = 0, client?: string): Promise<UseSessionResult> {
    return this.tx(async (c): Promise<UseSessionResult> => {
      const row = (await c.query(`SELECT * FROM sessions WHERE token_hash = $1 FOR UPDATE`, [tokenHash])).rows[0] as
        Raw | undefined;
      const session = row && rowToSession(row);
      const step = sessionUse(session, now, graceMs, client);
      if (step.revokeFamily)
        await c.query(`UPDATE sessions SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL`, [
          now,
          session!.familyId,
        ]);
      if (step.use)
        await c.query(`UPDATE sessions SET used_at = $1, used_by = $2 WHERE id = $3`, [
          now,
          client ?? null,
          session!.id,
        ]);
      return step.result;
    });
  }

  async revokeFamily(familyId: string, now: number): Promise<void> {
    await this.pool.query(`UPDATE sessions SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL`, [
      now,
      familyId,
    ]);
  }

  async revokeAccountSessions(accountId: string, now: number): Promise<void> {
    await this.pool.query(`UPDATE sessions SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL`, [
      now,
      accountId,
    ]);
  }

  async createNonce(nonce: string, now: number, expiresAt: number): Promise<void> {
    await this.pool.query(`INSERT INTO siwe_nonces (nonce, created_at, expires_at) VALUES ($1, $2, $3)`, [
      nonce,
      now,
      expiresAt,
    ]);
  }

  async consumeNonce(nonce: string, now: number): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE siwe_nonces SET used_at = $1 WHERE nonce = $2 AND used_at IS NULL AND expires_at > $1`,
      [now, nonce],
    );
    return r.rowCount === 1;
  }

  async secret(name: string, candidate: string, now: number): Promise<string> {
    await this.pool.query(
      `INSERT INTO coordinator_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
      [name, candidate, now],
    );
    const row = await this.one(`SELECT value FROM coordinator_secrets WHERE name = $1`, [name]);
    return String(row!.value);
  }

  async createInvite(codeHash: string, createdBy: string, now: number, expiresAt: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO invites (code_hash, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
      [codeHash, createdBy, now, expiresAt],
    );
  }

  async consumeInvite(codeHash: string, accountId: string, now: number): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE invites SET used_by = $1, used_at = $2 WHERE code_hash = $3 AND used_at IS NULL AND expires_at > $2`,
      [accountId, now, codeHash],
    );
    return r.rowCount === 1;
  }

  async releaseInvite(codeHash: string, accountId: string): Promise<void> {
    await this.pool.query(`UPDATE invites SET used_by = NULL, used_at = NULL WHERE code_hash = $1 AND used_by = $2`, [
      codeHash,
      accountId,
    ]);
  }

  async purgeExpired(now: number): Promise<number> {
    return this.tx(async (c) => {
      let n = 0;
      for (const sql of [
        `DELETE FROM siwe_nonces WHERE expires_at <= $1`,
        `DELETE FROM sessions WHERE expires_at <= $1`,
        `DELETE FROM invites WHERE expires_at <= $1 AND used_at IS NULL`,
      ])
        n += (await c.query(sql, [now])).rowCount ?? 0;
      return n;
    });
  }
}
