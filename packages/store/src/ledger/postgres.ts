import pg from "pg";
import type { LogPosition } from "@havn/protocol";
import type { RawRow } from "../columns.js";
import type { PostgresLog } from "../log/postgres.js";
import type { NewLogEntry } from "../log/types.js";
import { rows, type Queryable, type Tx } from "../postgres/db.js";
import { heldSql, rowToSettleCandidate, settleableSql } from "./job-rows.js";
import {
  cappedReward,
  heldRefundTransfer,
  mustPost,
  netChanges,
  newLedgerTxId,
  overdrawn,
  postedTx,
  refundTransfer,
  rowsToTransactions,
  heldRow,
  releaseTransfer,
  rowToMoney,
  withRewardAmount,
} from "./rows.js";
import {
  ledgerAccounts,
  type HeldRelease,
  type LedgerAccount,
  type LedgerKind,
  type LedgerStore,
  type LedgerTransfer,
  type LedgerTxRow,
  type PostResult,
  type SettleCandidate,
  type SettleJobInput,
  type SettleJobResult,
  type SettlementSealer,
  type TransactionQuery,
} from "./types.js";

type Raw = Record<string, unknown>;

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
    /** Settled runs are appended to the log in the settlement's transaction. */
    private readonly log: PostgresLog,
  ) {}

  /**
   * Posts transfers that cannot overdraw by construction — a job's escrow once its payer's balance
   * was locked and counted, a charge's release, a settlement's split, a refund — in one statement
   * for the whole batch, inside the caller's transaction: the transactions, their postings and the
   * balances they move. A transfer whose idempotency key was posted before posts nothing. Returns
   * the keys posted now.
   */
  async postManyTrusted(c: pg.PoolClient, transfers: readonly LedgerTransfer[]): Promise<Set<string>> {
    if (transfers.length === 0) return new Set();
    for (const t of transfers) netChanges(t);
    const ids = transfers.map(() => newLedgerTxId());
    const postings = transfers.flatMap((t, i) => t.postings.map((p) => ({ tx: ids[i]!, ...p, now: t.now })));
    // Balances move only for transactions written now, summed per account and taken in one order
    // (concurrent batches lock them without deadlocking).
    const { rows: posted } = await c.query(
      `WITH tx AS (
         INSERT INTO ledger_transactions (id, kind, idempotency_key, job_id, memo, created_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bigint[])
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key
       ), p AS (
         SELECT * FROM unnest($7::text[], $8::text[], $9::bigint[], $10::bigint[]) AS p(tx_id, account, amount, at)
         WHERE tx_id IN (SELECT id FROM tx)
       ), ins AS (
         INSERT INTO ledger_postings (tx_id, account, amount, created_at) SELECT tx_id, account, amount, at FROM p
       ), bal AS (
         INSERT INTO ledger_balances (account, balance, updated_at)
         SELECT account, SUM(amount), MAX(at) FROM p GROUP BY account HAVING SUM(amount) <> 0 ORDER BY account
         ON CONFLICT (account) DO UPDATE SET balance = ledger_balances.balance + excluded.balance,
           updated_at = excluded.updated_at
       )
       SELECT idempotency_key FROM tx`,
      [
        ids,
        transfers.map((t) => t.kind),
        transfers.map((t) => t.idempotencyKey),
        transfers.map((t) => t.jobId ?? null),
        transfers.map((t) => (t.memo ? JSON.stringify(t.memo) : null)),
        transfers.map((t) => t.now),
        postings.map((p) => p.tx),
        postings.map((p) => p.account),
        postings.map((p) => p.amount.toString()),
        postings.map((p) => p.now),
      ],
    );
    return new Set(posted.map((r: { idempotency_key: string }) => r.idempotency_key));
  }

  /** The postings of one transaction just inserted, and the balances it moves (see `postIn`). */
  private async writePostings(c: pg.PoolClient, id: string, t: LedgerTransfer, net: Map<string, bigint>) {
    await c.query(
      `INSERT INTO ledger_postings (tx_id, account, amount, created_at)
       SELECT $1, account, amount, $4 FROM unnest($2::text[], $3::bigint[]) AS p(account, amount)`,
      [id, t.postings.map((p) => p.account), t.postings.map((p) => p.amount.toString()), t.now],
    );
    const changed = [...net].filter(([, v]) => v !== 0n).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    await c.query(
      `INSERT INTO ledger_balances (account, balance, updated_at)
       SELECT account, change, $3 FROM unnest($1::text[], $2::bigint[]) AS b(account, change)
       ON CONFLICT (account) DO UPDATE SET balance = ledger_balances.balance + excluded.balance,
         updated_at = excluded.updated_at`,
      [changed.map(([a]) => a), changed.map(([, v]) => v.toString()), t.now],
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
    await this.writePostings(c, id, t, net);
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

  async sumPositive(prefix: string): Promise<bigint> {
    const [row] = await moneyRows(
      this.pool,
      `SELECT COALESCE(SUM(balance), 0)::bigint AS total FROM ledger_balances
       WHERE balance > 0 AND left(account, length($1)) = $1`,
      [prefix],
    );
    return row!.total as bigint;
  }

  async positiveBalances(
    prefix: string,
    limit: number,
    suffix = "",
  ): Promise<{ account: LedgerAccount; balance: bigint }[]> {
    const found = await moneyRows(
      this.pool,
      `SELECT account, balance FROM ledger_balances WHERE balance > 0 AND left(account, length($1)) = $1
         AND ($3 = '' OR right(account, length($3)) = $3)
       ORDER BY account COLLATE "C" LIMIT $2`,
      [prefix, limit, suffix],
    );
    return found.map((r) => ({ account: String(r.account), balance: r.balance as bigint }));
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

  /**
   * A job that ended without a result (failed, cancelled): its escrow goes back to its payer, in
   * the caller's transaction. Returns the row as it now stands.
   */
  async refundJobIn(c: pg.PoolClient, row: RawRow, now: number): Promise<RawRow> {
    const money = rowToMoney(row);
    if (money?.state !== "escrowed") return row;
    const refund = refundTransfer(row.id as string, money, now);
    if (refund) await this.postIn(c, refund);
    await this.dropEmptyEscrows(c, [row.id as string]);
    const [after] = await rows(
      c,
      `UPDATE jobs SET money_state = 'refunded' WHERE id = $1 AND money_state = 'escrowed' RETURNING *`,
      [row.id],
    );
    return after ?? row;
  }

  /** Jobs' escrow balances that reached zero (settled, refunded) go: the postings keep their history. */
  private async dropEmptyEscrows(c: Queryable, jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await c.query(`DELETE FROM ledger_balances WHERE account = ANY($1) AND balance = 0`, [
      jobIds.map(ledgerAccounts.escrow),
    ]);
  }

  async openEscrow(): Promise<{ jobs: number; total: bigint }> {
    const [row] = await moneyRows(
      this.pool,
      `SELECT COUNT(*)::int AS jobs, COALESCE(SUM(balance), 0)::bigint AS total FROM ledger_balances
       WHERE account >= 'escrow:' AND account < 'escrow;'`,
      [],
    );
    return { jobs: Number(row!.jobs), total: row!.total as bigint };
  }

  async releaseHeld(release: HeldRelease): Promise<bigint> {
    return this.tx(async (c) => {
      // The flag, read under a share lock: a flag set meanwhile waits for this release to commit.
      const { rows: wf } = await c.query(`SELECT flagged_at FROM workflows WHERE id = $1 FOR SHARE`, [
        release.workflowId,
      ]);
      if (wf.length === 0 || wf[0].flagged_at !== null) return 0n;
      const held = ledgerAccounts.held(release.workflowId);
      const amount = (await this.lockBalances(c, [held])).get(held)!;
      if (amount <= 0n) return 0n;
      const posted = await this.postIn(c, releaseTransfer(release, amount));
      return posted.ok && !posted.replayed ? amount : 0n;
    });
  }

  async heldBalances(limit: number): Promise<{ workflowId: string; amount: bigint }[]> {
    const found = await moneyRows(
      this.pool,
      `SELECT b.account, b.balance FROM ledger_balances b JOIN workflows w ON w.id = substr(b.account, 6)
       WHERE b.account >= 'held:' AND b.account < 'held;' AND b.balance > 0 AND w.flagged_at IS NULL
       ORDER BY b.account LIMIT $1`,
      [limit],
    );
    return found.map((r) => heldRow({ account: String(r.account), balance: r.balance as bigint }));
  }

  async settleable(before: number, limit: number): Promise<SettleCandidate[]> {
    return (
      await rows(
        this.pool,
        settleableSql((n) => `$${n}`),
        [before, limit],
      )
    ).map(rowToSettleCandidate);
  }

  private async moveMoney(c: Queryable, jobId: string, from: string, to: string): Promise<RawRow | undefined> {
    const [row] = await rows(c, `UPDATE jobs SET money_state = $1 WHERE id = $2 AND money_state = $3 RETURNING *`, [
      to,
      jobId,
      from,
    ]);
    return row;
  }

  async settle(input: SettleJobInput): Promise<SettleJobResult> {
    return (await this.settleMany([input]))[0]!;
  }

  async settleMany(inputs: readonly SettleJobInput[], sealer?: SettlementSealer): Promise<SettleJobResult[]> {
    if (inputs.length === 0) return [];
    return this.tx(async (c) => {
      // Settled runs go into the log: its head is locked first, as completions lock it first, so
      // the two never wait on each other's locks in opposite orders.
      const logged = sealer !== undefined && inputs.some((i) => i.record);
      let head = logged ? await this.log.lockHeadIn(c) : undefined;
      // Every job still in the state it is settled from moves to settled, in one statement.
      const moved = new Set(
        (
          await rows(
            c,
            `UPDATE jobs j SET money_state = 'settled' FROM unnest($1::text[], $2::text[]) AS u(id, from_state)
             WHERE j.id = u.id AND j.money_state = u.from_state RETURNING j.id`,
            [inputs.map((i) => i.jobId), inputs.map((i) => i.from)],
          )
        ).map((r) => r.id as string),
      );
      const settling = inputs.filter((i) => moved.has(i.jobId));
      if (head && sealer) {
        const entries: NewLogEntry[] = [];
        for (const i of settling) {
          if (!i.record) continue;
          const record = i.record.settlement;
          const log: LogPosition = {
            seq: head.seq + 1,
            prev_hash: head.entryHash,
            entry_hash: sealer.link(head.entryHash, record),
          };
          entries.push({
            seq: log.seq,
            jobId: i.jobId,
            attemptId: i.record.attemptId,
            nodeKey: i.record.nodeKey,
            prevHash: log.prev_hash,
            entryHash: log.entry_hash,
            receipt: JSON.stringify(sealer.seal(record, log)),
            now: i.now,
            kind: "settlement",
          });
          head = { seq: log.seq, entryHash: log.entry_hash };
        }
        await this.log.appendIn(c, entries);
      }
      await this.postManyTrusted(
        c,
        settling.flatMap((i) => (i.settle ? [i.settle] : [])),
      );
      await this.dropEmptyEscrows(
        c,
        settling.map((i) => i.jobId),
      );
      const earnings = settling.flatMap((i) => (i.earnings ?? []).map((e) => ({ ...e, jobId: i.jobId, now: i.now })));
      if (earnings.length > 0)
        await c.query(
          `INSERT INTO workflow_earnings (workflow_id, job_id, amount, direct, created_at)
           SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::boolean[], $5::bigint[])
           ON CONFLICT DO NOTHING`,
          [
            earnings.map((e) => e.workflowId),
            earnings.map((e) => e.jobId),
            earnings.map((e) => e.amount.toString()),
            earnings.map((e) => e.direct),
            earnings.map((e) => e.now),
          ],
        );
      // Rewards against each period's running total, locked: replicas take turns against the budget.
      const rewarded = new Map<string, bigint>();
      const minted = new Map<number, bigint>();
      const rewards: LedgerTransfer[] = [];
      for (const i of settling) {
        if (!i.reward) continue;
        const { transfer, budget, since } = i.reward;
        if (!minted.has(since)) minted.set(since, await this.lockEmission(c, since));
        const wanted = transfer.postings.find((p) => p.amount > 0n)?.amount ?? 0n;
        const amount = cappedReward(wanted, minted.get(since)!, budget);
        if (amount <= 0n) continue;
        minted.set(since, minted.get(since)! + amount);
        rewarded.set(i.jobId, amount);
        rewards.push(withRewardAmount(transfer, amount));
      }
      await this.postManyTrusted(c, rewards);
      for (const [since, total] of minted)
        await c.query(`UPDATE ledger_emission SET minted = $2 WHERE period_start = $1`, [since, total.toString()]);
      return inputs.map((i) => ({ settled: moved.has(i.jobId), rewarded: rewarded.get(i.jobId) ?? 0n }));
    });
  }

  async heldJob(jobId: string): Promise<SettleCandidate | undefined> {
    const [row] = await rows(
      this.pool,
      heldSql((n) => `$${n}`),
      [jobId],
    );
    return row && rowToSettleCandidate(row);
  }

  async hold(jobId: string): Promise<boolean> {
    return (await this.moveMoney(this.pool, jobId, "charged", "held")) !== undefined;
  }

  async refundHeld(jobId: string, now: number): Promise<boolean> {
    return this.tx(async (c) => {
      const row = await this.moveMoney(c, jobId, "held", "refunded");
      const money = row && rowToMoney(row);
      if (!money) return false;
      const refund = heldRefundTransfer(jobId, money, now);
      if (refund) mustPost(await this.postIn(c, refund));
      await this.dropEmptyEscrows(c, [jobId]);
      return true;
    });
  }
}
