import type Database from "better-sqlite3";
import type { ComputeClass } from "@havn/protocol";
import type { RawRow } from "../columns.js";
import { heldSql, rowToSettleCandidate, settleableSql } from "./job-rows.js";
import {
  cappedReward,
  chargeTransfer,
  heldRefundTransfer,
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
  type JobMoney,
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
import { preparedOnFirstUse } from "../sqlite/domain.js";
import { genesisHash } from "../log/rows.js";
import type { SqliteLog } from "../log/sqlite.js";

type Raw = Record<string, unknown>;

function statements(db: Database.Database) {
  return {
    txByKey: db.prepare(`SELECT * FROM ledger_transactions WHERE idempotency_key = ?`),
    postingsOf: db.prepare(`SELECT * FROM ledger_postings WHERE tx_id = ? ORDER BY id`).safeIntegers(true),
    balance: db.prepare(`SELECT balance FROM ledger_balances WHERE account = ?`).safeIntegers(true),
    insertTx: db.prepare(
      `INSERT INTO ledger_transactions (id, kind, idempotency_key, job_id, memo, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    insertTxOnce: db.prepare(
      `INSERT INTO ledger_transactions (id, kind, idempotency_key, job_id, memo, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (idempotency_key) DO NOTHING`,
    ),
    insertPosting: db.prepare(`INSERT INTO ledger_postings (tx_id, account, amount, created_at) VALUES (?, ?, ?, ?)`),
    addBalance: db.prepare(
      `INSERT INTO ledger_balances (account, balance, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (account) DO UPDATE SET balance = balance + excluded.balance, updated_at = excluded.updated_at`,
    ),
    total: db.prepare(`SELECT COALESCE(SUM(balance), 0) AS total FROM ledger_balances`).safeIntegers(true),
    sumPositive: db
      .prepare(
        `SELECT COALESCE(SUM(balance), 0) AS total FROM ledger_balances
         WHERE balance > 0 AND substr(account, 1, length(?)) = ?`,
      )
      .safeIntegers(true),
    positive: db
      .prepare(
        `SELECT account, balance FROM ledger_balances WHERE balance > 0 AND substr(account, 1, length(@prefix)) = @prefix
           AND (@suffix = '' OR substr(account, -length(@suffix)) = @suffix)
         ORDER BY account LIMIT @limit`,
      )
      .safeIntegers(true),
    receivedSince: db
      .prepare(
        `SELECT COALESCE(SUM(p.amount), 0) AS total FROM ledger_postings p
         JOIN ledger_transactions t ON t.id = p.tx_id
         WHERE t.kind = ? AND t.created_at >= ? AND p.amount > 0`,
      )
      .safeIntegers(true),
    setMoney: db.prepare(
      `UPDATE jobs SET money_state = ?, charge = COALESCE(?, charge), compute_class = COALESCE(?, compute_class)
       WHERE id = ? AND money_state = ? RETURNING *`,
    ),
    settleable: db.prepare(settleableSql(() => "?")),
    held: db.prepare(heldSql(() => "?")),
    emission: db.prepare(`SELECT minted FROM ledger_emission WHERE period_start = ?`).safeIntegers(true),
    addEmission: db.prepare(
      `INSERT INTO ledger_emission (period_start, minted) VALUES (?, ?)
       ON CONFLICT (period_start) DO UPDATE SET minted = minted + excluded.minted`,
    ),
    openEscrow: db
      .prepare(
        `SELECT COUNT(*) AS jobs, COALESCE(SUM(balance), 0) AS total FROM ledger_balances
         WHERE account >= 'escrow:' AND account < 'escrow;'`,
      )
      .safeIntegers(true),
    earning: db.prepare(
      `INSERT INTO workflow_earnings (workflow_id, job_id, amount, direct, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    ),
    heldBalances: db
      .prepare(
        `SELECT b.account, b.balance FROM ledger_balances b JOIN workflows w ON w.id = substr(b.account, 6)
         WHERE b.account >= 'held:' AND b.account < 'held;' AND b.balance > 0 AND w.flagged_at IS NULL
         ORDER BY b.account LIMIT ?`,
      )
      .safeIntegers(true),
    dropEmptyEscrow: db.prepare(`DELETE FROM ledger_balances WHERE account = ? AND balance = 0`),
  };
}

/**
 * The ledger on SQLite. Money columns are read with `safeIntegers` (bigint, never a float);
 * `postSync` runs inside the caller's transaction, so a job's transition and its postings commit
 * together.
 */
export class SqliteLedger implements LedgerStore {
  private readonly q = preparedOnFirstUse(() => statements(this.db));

  constructor(
    private readonly db: Database.Database,
    /** Settled runs are appended to the log in the settlement's transaction. */
    private readonly log: SqliteLog,
  ) {}

  /**
   * A job that ended without a result (failed, cancelled): its escrow goes back to its payer, in
   * the caller's transaction. Returns the row as it now stands.
   */
  refundJobSync(row: RawRow, now: number): RawRow {
    const money = rowToMoney(row);
    if (money?.state !== "escrowed") return row;
    const refund = refundTransfer(row.id as string, money, now);
    if (refund) this.postTrustedSync(refund);
    this.q.dropEmptyEscrow.run(ledgerAccounts.escrow(row.id as string));
    return (this.q.setMoney.get("refunded", null, null, row.id, "escrowed") as RawRow | undefined) ?? row;
  }

  /** A completed job's charge, in the caller's transaction: the rest of its escrow goes back to its payer. */
  chargeJobSync(jobId: string, money: JobMoney, charge: bigint, computeClass: ComputeClass, now: number): void {
    const release = chargeTransfer(jobId, money, charge, now);
    if (release) this.postTrustedSync(release);
    this.q.setMoney.run("charged", charge, computeClass, jobId, "escrowed");
  }

  async openEscrow(): Promise<{ jobs: number; total: bigint }> {
    const row = this.q.openEscrow.get() as { jobs: bigint; total: bigint };
    return { jobs: Number(row.jobs), total: row.total };
  }

  async releaseHeld(release: HeldRelease): Promise<bigint> {
    return this.db
      .transaction((): bigint => {
        const wf = this.db.prepare(`SELECT flagged_at FROM workflows WHERE id = ?`).get(release.workflowId) as
          { flagged_at: number | null } | undefined;
        if (!wf || wf.flagged_at !== null) return 0n;
        const amount = this.balanceSync(ledgerAccounts.held(release.workflowId));
        if (amount <= 0n) return 0n;
        const posted = this.postSync(releaseTransfer(release, amount));
        return posted.ok && !posted.replayed ? amount : 0n;
      })
      .immediate();
  }

  async heldBalances(limit: number): Promise<{ workflowId: string; amount: bigint }[]> {
    return (this.q.heldBalances.all(limit) as { account: string; balance: bigint }[]).map(heldRow);
  }

  async settleable(before: number, limit: number): Promise<SettleCandidate[]> {
    return (this.q.settleable.all(before, limit) as RawRow[]).map(rowToSettleCandidate);
  }

  async settle(input: SettleJobInput): Promise<SettleJobResult> {
    return (await this.settleMany([input]))[0]!;
  }

  async settleMany(inputs: readonly SettleJobInput[], sealer?: SettlementSealer): Promise<SettleJobResult[]> {
    return this.db.transaction(() => inputs.map((input) => this.settleSync(input, sealer))).immediate();
  }

  private settleSync(input: SettleJobInput, sealer?: SettlementSealer): SettleJobResult {
    if (!this.q.setMoney.get("settled", null, null, input.jobId, input.from)) return { settled: false, rewarded: 0n };
    if (input.settle) this.postTrustedSync(input.settle);
    if (sealer && input.record) {
      const head = this.log.headSync() ?? { seq: 0, entryHash: genesisHash };
      const record = input.record.settlement;
      const log = { seq: head.seq + 1, prev_hash: head.entryHash, entry_hash: sealer.link(head.entryHash, record) };
      this.log.appendSync({
        seq: log.seq,
        jobId: input.jobId,
        attemptId: input.record.attemptId,
        nodeKey: input.record.nodeKey,
        prevHash: log.prev_hash,
        entryHash: log.entry_hash,
        receipt: JSON.stringify(sealer.seal(record, log)),
        now: input.now,
        kind: "settlement",
      });
    }
    for (const e of input.earnings ?? [])
      this.q.earning.run(e.workflowId, input.jobId, e.amount, e.direct ? 1 : 0, input.now);
    this.q.dropEmptyEscrow.run(ledgerAccounts.escrow(input.jobId));
    let rewarded = 0n;
    if (input.reward) {
      const { transfer, budget, since } = input.reward;
      const wanted = transfer.postings.find((p) => p.amount > 0n)?.amount ?? 0n;
      const minted = (this.q.emission.get(since) as { minted: bigint } | undefined)?.minted ?? 0n;
      rewarded = cappedReward(wanted, minted, budget);
      if (rewarded > 0n) {
        this.postTrustedSync(withRewardAmount(transfer, rewarded));
        this.q.addEmission.run(since, rewarded);
      }
    }
    return { settled: true, rewarded };
  }

  async heldJob(jobId: string): Promise<SettleCandidate | undefined> {
    const row = this.q.held.get(jobId) as RawRow | undefined;
    return row && rowToSettleCandidate(row);
  }

  async hold(jobId: string): Promise<boolean> {
    return this.q.setMoney.get("held", null, null, jobId, "charged") !== undefined;
  }

  async refundHeld(jobId: string, now: number): Promise<boolean> {
    return this.db
      .transaction((): boolean => {
        const row = this.q.setMoney.get("refunded", null, null, jobId, "held") as RawRow | undefined;
        const money = row && rowToMoney(row);
        if (!money) return false;
        const refund = heldRefundTransfer(jobId, money, now);
        if (refund) this.postTrustedSync(refund);
        this.q.dropEmptyEscrow.run(ledgerAccounts.escrow(jobId));
        return true;
      })
      .immediate();
  }

  /** Posts a transfer inside the caller's transaction (see `LedgerStore.post`). */
  postSync(t: LedgerTransfer): PostResult {
    const existing = this.q.txByKey.get(t.idempotencyKey) as Raw | undefined;
    if (existing) return { ok: true, tx: this.withPostings(existing), replayed: true };
    const net = netChanges(t);
    const short = overdrawn(net, (account) => this.balanceSync(account));
    if (short) return { ok: false, reason: "insufficient_funds", ...short };
    const id = newLedgerTxId();
    this.q.insertTx.run(id, t.kind, t.idempotencyKey, t.jobId ?? null, t.memo ? JSON.stringify(t.memo) : null, t.now);
    for (const p of t.postings) this.q.insertPosting.run(id, p.account, p.amount, t.now);
    for (const [account, change] of net) if (change !== 0n) this.q.addBalance.run(account, change, t.now);
    return {
      ok: true,
      replayed: false,
      tx: postedTx(id, t),
    };
  }

  /**
   * Posts a transfer that cannot overdraw by construction (an escrow whose payer was checked in
   * this transaction, a charge's release, a split, a refund), inside the caller's transaction:
   * no reads. False when its idempotency key was posted before (nothing is written).
   */
  postTrustedSync(t: LedgerTransfer): boolean {
    const net = netChanges(t);
    const id = newLedgerTxId();
    const memo = t.memo ? JSON.stringify(t.memo) : null;
    if (this.q.insertTxOnce.run(id, t.kind, t.idempotencyKey, t.jobId ?? null, memo, t.now).changes === 0) return false;
    for (const p of t.postings) this.q.insertPosting.run(id, p.account, p.amount, t.now);
    for (const [account, change] of net) if (change !== 0n) this.q.addBalance.run(account, change, t.now);
    return true;
  }

  receivedSinceSync(kind: LedgerKind, since: number): bigint {
    return (this.q.receivedSince.get(kind, since) as { total: bigint }).total;
  }

  balanceSync(account: LedgerAccount): bigint {
    const row = this.q.balance.get(account) as { balance: bigint } | undefined;
    return row?.balance ?? 0n;
  }

  private withPostings(tx: Raw): LedgerTxRow {
    return rowsToTransactions([tx], this.q.postingsOf.all(tx.id) as Raw[])[0]!;
  }

  async post(t: LedgerTransfer): Promise<PostResult> {
    return this.db.transaction(() => this.postSync(t)).immediate();
  }

  async balance(account: LedgerAccount): Promise<bigint> {
    return this.balanceSync(account);
  }

  async balances(accounts: readonly LedgerAccount[]): Promise<Record<LedgerAccount, bigint>> {
    return Object.fromEntries(accounts.map((a) => [a, this.balanceSync(a)]));
  }

  async transactions(query: TransactionQuery): Promise<LedgerTxRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (query.account !== undefined) {
      where.push(`id IN (SELECT tx_id FROM ledger_postings WHERE account = ?)`);
      params.push(query.account);
    }
    if (query.jobId !== undefined) {
      where.push(`job_id = ?`);
      params.push(query.jobId);
    }
    if (query.kind !== undefined) {
      where.push(`kind = ?`);
      params.push(query.kind);
    }
    if (query.before !== undefined) {
      where.push(`created_at < ?`);
      params.push(query.before);
    }
    const txs = this.db
      .prepare(
        `SELECT * FROM ledger_transactions ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY created_at DESC, rowid DESC LIMIT ?`,
      )
      .all(...params, query.limit) as Raw[];
    if (txs.length === 0) return [];
    const postings = this.db
      .prepare(`SELECT * FROM ledger_postings WHERE tx_id IN (SELECT value FROM json_each(?)) ORDER BY id`)
      .safeIntegers(true)
      .all(JSON.stringify(txs.map((t) => t.id))) as Raw[];
    return rowsToTransactions(txs, postings);
  }

  async sumPositive(prefix: string): Promise<bigint> {
    return (this.q.sumPositive.get(prefix, prefix) as { total: bigint }).total;
  }

  async positiveBalances(
    prefix: string,
    limit: number,
    suffix = "",
  ): Promise<{ account: LedgerAccount; balance: bigint }[]> {
    return (this.q.positive.all({ prefix, limit, suffix }) as { account: string; balance: bigint }[]).map((r) => ({
      account: r.account,
      balance: r.balance,
    }));
  }

  async total(): Promise<bigint> {
    return (this.q.total.get() as { total: bigint }).total;
  }

  async receivedSince(kind: LedgerKind, since: number): Promise<bigint> {
    return this.receivedSinceSync(kind, since);
  }
}
