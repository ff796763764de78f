import pg from "pg";
import { netChanges, newLedgerTxId, overdrawn, postedTx, rowsToTransactions } from "./rows.js";
import type {
  LedgerAccount,
  LedgerKind,
  LedgerStore,
  LedgerTransfer,
  LedgerTxRow,
  PostResult,
  TransactionQuery,
} from "./types.js";

type Raw = Record<string, unknown>;
type Tx = <T>(fn: (c: pg.PoolClient) => Promise<T>) => Promise<T>;
type Queryable = pg.Pool | pg.PoolClient;

/** INT8 as bigint, for money queries (the pool's parser reads INT8 as a number, for timestamps). */
const moneyTypes = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === pg.types.builtins.INT8
      ? (value: string) => BigInt(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

async function moneyRows(db: Queryable, text: string, values: unknown[]): Promise<Raw[]> {
  return (await db.query({ text, values, types: moneyTypes })).rows as Raw[];
}

/**
 * The ledger on PostgreSQL. The balances a transfer debits are locked (`FOR UPDATE`) before they
 * are checked, so concurrent replicas never overdraw an account; `postIn` runs inside the
 * caller's transaction, so a job's transition and its postings commit together.
 */
export class PostgresLedger implements LedgerStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly tx: Tx,
  ) {}

  /**
   * Posts transfers that cannot overdraw by construction — a job's escrow once its payer's balance
   * was locked and counted, a charge's release, a settlement's split, a refund — in three
   * statements for the whole batch, inside the caller's transaction. A transfer whose idempotency
   * key was posted before posts nothing. Returns the keys posted now.
   */
  async postManyTrusted(c: pg.PoolClient, transfers: readonly LedgerTransfer[]): Promise<Set<string>> {
    if (transfers.length === 0) return new Set();
    for (const t of transfers) netChanges(t);
    const ids = transfers.map(() => newLedgerTxId());
    const claimed = await c.query(
      `INSERT INTO ledger_transactions (id, kind, idempotency_key, job_id, memo, created_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bigint[])
       ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`,
      [
        ids,
        transfers.map((t) => t.kind),
        transfers.map((t) => t.idempotencyKey),
        transfers.map((t) => t.jobId ?? null),
        transfers.map((t) => (t.memo ? JSON.stringify(t.memo) : null)),
        transfers.map((t) => t.now),
      ],
    );
    const posted = new Set(claimed.rows.map((r: { id: string }) => r.id));
    const written = transfers.flatMap((t, i) => (posted.has(ids[i]!) ? [{ id: ids[i]!, t }] : []));
    await this.writePostings(c, written);
    return new Set(written.map(({ t }) => t.idempotencyKey));
  }

  /**
   * The postings of transactions just inserted, and the balances they move: one statement each,
   * the balances aggregated per account and in one order, so concurrent batches lock them without
   * deadlocking.
   */
  private async writePostings(c: pg.PoolClient, written: readonly { id: string; t: LedgerTransfer }[]) {
    const postings = written.flatMap(({ id, t }) => t.postings.map((p) => ({ tx: id, ...p, now: t.now })));
    if (postings.length === 0) return;
    const net = new Map<string, bigint>();
    for (const p of postings) net.set(p.account, (net.get(p.account) ?? 0n) + p.amount);
    await c.query(
      `INSERT INTO ledger_postings (tx_id, account, amount, created_at)
       SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])`,
      [
        postings.map((p) => p.tx),
        postings.map((p) => p.account),
        postings.map((p) => p.amount.toString()),
        postings.map((p) => p.now),
      ],
    );
    const changed = [...net].filter(([, v]) => v !== 0n).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    await c.query(
      `INSERT INTO ledger_balances (account, balance, updated_at)
       SELECT account, change, $3 FROM unnest($1::text[], $2::bigint[]) AS b(account, change)
       ON CONFLICT (account) DO UPDATE SET balance = ledger_balances.balance + excluded.balance,
         updated_at = excluded.updated_at`,
      [changed.map(([a]) => a), changed.map(([, v]) => v.toString()), written[0]!.t.now],
    );
  }

  /** Locks these accounts' balances (in one order) and returns them; 0 for an account never posted to. */
  async lockBalances(c: pg.PoolClient, accounts: readonly string[]): Promise<Map<string, bigint>> {
    const sorted = [...new Set(accounts)].sort();
    const rows = await moneyRows(
      c,
      `SELECT account, balance FROM ledger_balances WHERE account = ANY($1) ORDER BY account FOR UPDATE`,
      [sorted],
    );
    const found = new Map(rows.map((r) => [String(r.account), r.balance as bigint]));
    return new Map(sorted.map((a) => [a, found.get(a) ?? 0n]));
  }

  /** Posts a transfer inside the caller's transaction (see `LedgerStore.post`). */
  async postIn(c: pg.PoolClient, t: LedgerTransfer): Promise<PostResult> {
    const net = netChanges(t);
    const id = newLedgerTxId();
    const claimed = await c.query(
      `INSERT INTO ledger_transactions (id, kind, idempotency_key, job_id, memo, created_at)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`,
      [id, t.kind, t.idempotencyKey, t.jobId ?? null, t.memo ? JSON.stringify(t.memo) : null, t.now],
    );
    if (claimed.rowCount === 0) {
      const [existing] = await moneyRows(c, `SELECT * FROM ledger_transactions WHERE idempotency_key = $1`, [
        t.idempotencyKey,
      ]);
      return { ok: true, tx: await this.withPostings(c, existing!), replayed: true };
    }
    // Lock every balance this transfer touches, in one order (no deadlock between two transfers).
    const balances = await this.lockBalances(c, [...net.keys()]);
    const short = overdrawn(net, (account) => balances.get(account)!);
    if (short) {
      // Nothing of this transfer may stay: its transaction row goes (the caller's transaction
      // goes on, e.g. to admit the other jobs of a batch).
      await c.query(`DELETE FROM ledger_transactions WHERE id = $1`, [id]);
      return { ok: false, reason: "insufficient_funds", ...short };
    }
    await this.writePostings(c, [{ id, t }]);
    return {
      ok: true,
      replayed: false,
      tx: postedTx(id, t),
    };
  }

  private async withPostings(db: Queryable, tx: Raw): Promise<LedgerTxRow> {
    const postings = await moneyRows(db, `SELECT * FROM ledger_postings WHERE tx_id = $1 ORDER BY id`, [tx.id]);
    return rowsToTransactions([tx], postings)[0]!;
  }

  async post(t: LedgerTransfer): Promise<PostResult> {
    return this.tx((c) => this.postIn(c, t));
  }

  async balance(account: LedgerAccount): Promise<bigint> {
    return (await this.balances([account]))[account]!;
  }

  async balances(accounts: readonly LedgerAccount[]): Promise<Record<LedgerAccount, bigint>> {
    const rows = await moneyRows(this.pool, `SELECT account, balance FROM ledger_balances WHERE account = ANY($1)`, [
      accounts,
    ]);
    const found = new Map(rows.map((r) => [String(r.account), r.balance as bigint]));
    return Object.fromEntries(accounts.map((a) => [a, found.get(a) ?? 0n]));
  }

  async transactions(query: TransactionQuery): Promise<LedgerTxRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace("?", `$${params.length}`));
    };
    if (query.account !== undefined) add(`id IN (SELECT tx_id FROM ledger_postings WHERE account = ?)`, query.account);
    if (query.jobId !== undefined) add(`job_id = ?`, query.jobId);
    if (query.kind !== undefined) add(`kind = ?`, query.kind);
    if (query.before !== undefined) add(`created_at < ?`, query.before);
    params.push(query.limit);
    const txs = await moneyRows(
      this.pool,
      `SELECT * FROM ledger_transactions ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
       ORDER BY created_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    if (txs.length === 0) return [];
    const postings = await moneyRows(this.pool, `SELECT * FROM ledger_postings WHERE tx_id = ANY($1) ORDER BY id`, [
      txs.map((t) => t.id),
    ]);
    return rowsToTransactions(txs, postings);
  }

  async total(): Promise<bigint> {
    const [row] = await moneyRows(
      this.pool,
      `SELECT COALESCE(SUM(balance), 0)::bigint AS total FROM ledger_balances`,
      [],
    );
    return row!.total as bigint;
  }

  async receivedSince(kind: LedgerKind, since: number): Promise<bigint> {
    return this.receivedSinceIn(this.pool, kind, since);
  }

  /**
   * Locks an emission period's running total for the rest of the caller's transaction and returns
   * what it has minted so far (the row is made first: a period's first reward would otherwise
   * lock nothing).
   */
  async lockEmission(c: pg.PoolClient, periodStart: number): Promise<bigint> {
    await c.query(`INSERT INTO ledger_emission (period_start, minted) VALUES ($1, 0) ON CONFLICT DO NOTHING`, [
      periodStart,
    ]);
    const [row] = await moneyRows(c, `SELECT minted FROM ledger_emission WHERE period_start = $1 FOR UPDATE`, [
      periodStart,
    ]);
    return row!.minted as bigint;
  }

  async receivedSinceIn(db: Queryable, kind: LedgerKind, since: number): Promise<bigint> {
    const [row] = await moneyRows(
      db,
      `SELECT COALESCE(SUM(p.amount), 0)::bigint AS total FROM ledger_postings p
       JOIN ledger_transactions t ON t.id = p.tx_id
       WHERE t.kind = $1 AND t.created_at >= $2 AND p.amount > 0`,
      [kind, since],
    );
    return row!.total as bigint;
  }
}
