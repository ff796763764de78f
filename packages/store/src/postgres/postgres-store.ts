import pg from "pg";
import type { ErrorBody } from "@havn/protocol";
import type { JobStatus } from "../job-states.js";
import { PostgresAccounts } from "../accounts/postgres.js";
import type { AccountStore } from "../accounts/types.js";
import { PostgresLedger } from "../ledger/postgres.js";
import {
  cappedReward,
  chargeTransfer,
  escrowTransfer,
  heldRefundTransfer,
  insufficientFunds,
  mustPost,
  refundTransfer,
  rowToMoney,
  withRewardAmount,
} from "../ledger/rows.js";
import type { LedgerStore, LedgerTransfer, SettleCandidate, SettleJobInput, SettleJobResult } from "../ledger/types.js";
import { loadMigrations } from "../migrations.js";
import {
  admissionStatus,
  countsByStatus,
  newJobRow,
  nodeClaim,
  planCompletions,
  redactedInput,
  retiredName,
  rowToClaim,
  rowToJob,
  rowToNode,
  rowToSettleCandidate,
  settleableSql,
  statusGuards,
  type RawRow,
} from "../rows.js";
import type {
  AdmissionOutcome,
  ClaimedAttempt,
  ClaimRequest,
  CompleteJobInput,
  CompleteJobResult,
  EndedAttempt,
  FailAttemptInput,
  JobRow,
  LogEntry,
  NewJob,
  NodeRow,
  ReceiptSealer,
  Store,
  StoreNotification,
  UpsertNodeInput,
  UpsertNodeResult,
} from "../types.js";

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database`. */
  readonly connectionString: string;
  /**
   * Pool size. Default 10: enough to keep a 2–8 core coordinator's event loop busy; each
   * connection costs the server ~10 MB, so many replicas × large pools exhaust `max_connections`.
   */
  readonly poolSize?: number;
}

const { ended, toLeased, toRunning, toFailed, toQueued, toCancelled } = statusGuards;

/**
 * BIGINT columns outside the ledger hold millisecond timestamps and counts, far below 2^53: read
 * them as numbers — and refuse, rather than round, one that is not exactly a number. Money is
 * read as bigint by the ledger's own queries (`ledger/postgres.ts`).
 */
function int8AsNumber(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`An INT8 beyond 2^53 was read as a number: ${value}`);
  return n;
}
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === pg.types.builtins.INT8
      ? int8AsNumber
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

type Queryable = pg.Pool | pg.PoolClient;

/**
 * PostgreSQL through node-postgres. Several coordinator replicas may share the database: claims
 * skip rows another replica holds (`FOR UPDATE SKIP LOCKED`), and the execution log's head row is
 * locked by every appender so the chain stays single.
 */
export class PostgresStore implements Store {
  readonly kind = "postgres" as const;
  readonly caps = { skipLocked: true, sharedByReplicas: true, notifications: true } as const;
  private readonly pool: pg.Pool;
  private readonly connectionString: string;
  readonly accounts: AccountStore;
  readonly ledger: LedgerStore;
  private readonly book: PostgresLedger;

  constructor(options: PostgresStoreOptions) {
    this.connectionString = options.connectionString;
    this.pool = new pg.Pool({ connectionString: options.connectionString, max: options.poolSize ?? 10, types });
    // An idle client that loses its connection emits here; without a listener it crashes the process.
    this.pool.on("error", () => {});
    this.accounts = new PostgresAccounts(this.pool, (fn) => this.tx(fn));
    this.book = new PostgresLedger(this.pool, (fn) => this.tx(fn));
    this.ledger = this.book;
  }

  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query("BEGIN");
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  private async rows(db: Queryable, sql: string, params: unknown[] = []): Promise<RawRow[]> {
    return (await db.query(sql, params)).rows as RawRow[];
  }

  async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      // Replicas starting together: one migrates, the others wait and then find nothing to do.
      await client.query(`SELECT pg_advisory_lock(hashtext('havn:migrate'))`);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
        applied_at BIGINT NOT NULL)`);
      const applied = new Set((await client.query(`SELECT version FROM schema_migrations`)).rows.map((r) => r.version));
      for (const m of loadMigrations("postgres")) {
        if (applied.has(m.version)) continue;
        await client.query("BEGIN");
        try {
          await client.query(m.sql);
          await client.query(`INSERT INTO schema_migrations VALUES ($1, $2, $3)`, [m.version, m.name, Date.now()]);
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK");
          throw err;
        }
      }
    } finally {
      await client.query(`SELECT pg_advisory_unlock(hashtext('havn:migrate'))`).catch(() => {});
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async insertJob(job: NewJob): Promise<JobRow> {
    const [outcome] = await this.insertJobs([job]);
    if (typeof outcome === "object") throw insufficientFunds(outcome);
    return newJobRow(job);
  }

  async insertJobs(jobs: readonly NewJob[]): Promise<readonly AdmissionOutcome[]> {
    if (jobs.length === 0) return [];
    if (!jobs.some((j) => j.money)) {
      const inserted = await this.insertRows(this.pool, jobs);
      return jobs.map((j) => (inserted.has(j.id) ? "inserted" : "duplicate"));
    }
    // Paid jobs: their payers' balances are locked and counted in batch order; a job its payer
    // cannot cover is not written (its neighbours are); the rest are written, with their escrows,
    // in a handful of statements for the whole batch.
    return this.tx(async (c) => {
      const outcomes = new Map<string, AdmissionOutcome>();
      const running = await this.book.lockBalances(
        c,
        jobs.flatMap((j) => (j.money ? [j.money.payer] : [])),
      );
      const writable = jobs.filter((j) => {
        if (!j.money) return true;
        const balance = running.get(j.money.payer)!;
        if (balance < j.money.amount) {
          outcomes.set(j.id, { reason: "insufficient_funds", balance, needed: j.money.amount });
          return false;
        }
        running.set(j.money.payer, balance - j.money.amount);
        return true;
      });
      const inserted = await this.insertRows(c, writable);
      for (const j of writable) outcomes.set(j.id, inserted.has(j.id) ? "inserted" : "duplicate");
      await this.book.postManyTrusted(
        c,
        writable.flatMap((j) => (j.money && inserted.has(j.id) ? [escrowTransfer(j.id, j.money, j.now)] : [])),
      );
      return jobs.map((j) => outcomes.get(j.id)!);
    });
  }

  /**
   * Writes jobs in one statement (a round trip per job would cap admission at ~1.4k/s per
   * connection). Jobs placed at admission are written leased with their first attempt (queued →
   * leased in this transaction); the foreign key is checked at the end of the statement. A job
   * whose idempotency key its account already used is skipped, and only it. Returns the ids written.
   */
  private async insertRows(db: Queryable, jobs: readonly NewJob[]): Promise<Set<string>> {
    const { rows } = await db.query(
      `WITH j AS (
         INSERT INTO jobs (id, status, model, workflow_id, input, params, input_hash, stream, max_attempts,
           queue_deadline_at, created_at, updated_at, attempts, attempt_id, node_key, lease_expires_at, route,
           request_id, account_id, idempotency_key, money_state, payer, escrow, price)
         SELECT id, status, model, workflow_id, input, params, input_hash, stream, max_attempts, deadline, now, now,
           CASE WHEN attempt_id IS NULL THEN 0 ELSE 1 END, attempt_id, node_key, lease_expires_at, route, request_id,
           account_id, idempotency_key, CASE WHEN payer IS NULL THEN NULL ELSE 'escrowed' END, payer, escrow, price
         FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::text[], $7::boolean[],
           $8::int[], $9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::jsonb[],
           $16::text[], $17::text[], $18::text[], $19::text[], $20::bigint[], $21::jsonb[])
           AS j(id, model, workflow_id, input, params, input_hash, stream, max_attempts, deadline, now, status,
             attempt_id, node_key, lease_expires_at, route, request_id, account_id, idempotency_key, payer, escrow,
             price)
         ON CONFLICT (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING id, attempt_id, node_key, created_at
       ),
       a AS (
         INSERT INTO job_attempts (attempt_id, job_id, node_key, started_at)
         SELECT attempt_id, id, node_key, created_at FROM j WHERE attempt_id IS NOT NULL
       )
       SELECT id FROM j`,
      [
        jobs.map((j) => j.id),
        jobs.map((j) => j.model),
        jobs.map((j) => j.workflowId),
        jobs.map((j) => JSON.stringify(j.input)),
        jobs.map((j) => JSON.stringify(j.params)),
        jobs.map((j) => j.inputHash),
        jobs.map((j) => j.stream),
        jobs.map((j) => j.maxAttempts),
        jobs.map((j) => j.queueDeadlineAt),
        jobs.map((j) => j.now),
        jobs.map(admissionStatus),
        jobs.map((j) => j.lease?.attemptId ?? null),
        jobs.map((j) => j.lease?.nodeKey ?? null),
        jobs.map((j) => j.lease?.leaseExpiresAt ?? null),
        jobs.map((j) => (j.lease ? JSON.stringify(j.lease.route) : null)),
        jobs.map((j) => j.requestId ?? null),
        jobs.map((j) => j.accountId ?? null),
        jobs.map((j) => j.idempotencyKey ?? null),
        jobs.map((j) => j.money?.payer ?? null),
        jobs.map((j) => j.money?.amount.toString() ?? null),
        jobs.map((j) => (j.money ? JSON.stringify(j.money.price) : null)),
      ],
    );
    return new Set(rows.map((r: { id: string }) => r.id));
  }

  async jobByIdempotencyKey(accountId: string, key: string): Promise<JobRow | undefined> {
    const [row] = await this.rows(this.pool, `SELECT * FROM jobs WHERE account_id = $1 AND idempotency_key = $2`, [
      accountId,
      key,
    ]);
    return row && rowToJob(row);
  }

  async getJob(id: string): Promise<JobRow | undefined> {
    const [row] = await this.rows(this.pool, `SELECT * FROM jobs WHERE id = $1`, [id]);
    return row && rowToJob(row);
  }

  async endedJobs(ids: readonly string[]): Promise<JobRow[]> {
    if (ids.length === 0) return [];
    const rows = await this.rows(this.pool, `SELECT * FROM jobs WHERE id = ANY($1) AND status IN (${ended})`, [ids]);
    return rows.map(rowToJob);
  }

  async listClaimable(models: readonly string[], limit: number): Promise<JobRow[]> {
    if (models.length === 0 || limit <= 0) return [];
    const rows = await this.rows(
      this.pool,
      `SELECT * FROM jobs WHERE status = 'queued' AND model = ANY($1) ORDER BY created_at LIMIT $2`,
      [models, limit],
    );
    return rows.map(rowToJob);
  }

  async claimJobs(claims: readonly ClaimRequest[], now: number): Promise<ClaimedAttempt[]> {
    if (claims.length === 0) return [];
    // One statement: rows another replica is claiming right now are skipped, not waited for;
    // the status guard makes a job claimable once even under concurrent statements.
    const rows = await this.rows(
      this.pool,
      `WITH c AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::jsonb[])
           AS c(job_id, attempt_id, node_key, lease_expires_at, route)
       ), locked AS (
         SELECT id FROM jobs WHERE id IN (SELECT job_id FROM c) AND status IN (${toLeased}) FOR UPDATE SKIP LOCKED
       ), upd AS (
         UPDATE jobs j SET status = 'leased', attempt_id = c.attempt_id, node_key = c.node_key,
           lease_expires_at = c.lease_expires_at, attempts = j.attempts + 1, route = c.route, updated_at = $6
         FROM c WHERE j.id = c.job_id AND j.id IN (SELECT id FROM locked) RETURNING j.*
       ), ins AS (
         INSERT INTO job_attempts (attempt_id, job_id, node_key, started_at)
         SELECT attempt_id, id, node_key, $6 FROM upd
       )
       SELECT id, attempt_id, node_key, lease_expires_at, attempts FROM upd`,
      [
        claims.map((c) => c.jobId),
        claims.map((c) => c.attemptId),
        claims.map((c) => c.nodeKey),
        claims.map((c) => c.leaseExpiresAt),
        claims.map((c) => JSON.stringify(c.route)),
        now,
      ],
    );
    return rows.map(rowToClaim);
  }

  async markRunning(jobId: string, attemptId: string, now: number): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE jobs SET status = 'running', updated_at = $1 WHERE id = $2 AND attempt_id = $3 AND status IN (${toRunning})`,
      [now, jobId, attemptId],
    );
    return r.rowCount === 1;
  }

  async renewLeases(nodeKey: string, attemptIds: readonly string[], leaseExpiresAt: number, now: number) {
    if (attemptIds.length === 0) return 0;
    const r = await this.pool.query(
      `UPDATE jobs SET lease_expires_at = $1, updated_at = $2
       WHERE attempt_id = ANY($3) AND node_key = $4 AND status IN ('leased', 'running')`,
      [leaseExpiresAt, now, attemptIds, nodeKey],
    );
    return r.rowCount ?? 0;
  }

  async completeJobs(inputs: readonly CompleteJobInput[], sealer: ReceiptSealer): Promise<CompleteJobResult[]> {
    if (inputs.length === 0) return [];
    return this.tx(async (c) => {
      // The head stays locked while the batch is co-signed (off the event loop): replicas append
      // one batch at a time, and the positions signed are the positions written.
      const [head] = await this.rows(c, `SELECT seq, entry_hash FROM execution_log_head WHERE id = 1 FOR UPDATE`);
      const current = new Map(
        (await this.rows(c, `SELECT * FROM jobs WHERE id = ANY($1) FOR UPDATE`, [inputs.map((i) => i.jobId)])).map(
          (r) => [r.id as string, rowToJob(r)],
        ),
      );
      const plan = planCompletions(
        inputs,
        (id) => current.get(id),
        { seq: Number(head!.seq), entryHash: head!.entry_hash as string },
        sealer,
      );
      if (plan.accepted.length === 0) return plan.results;
      const sealed = await sealer.seal(plan.accepted.map((a) => a.request));
      const rows = plan.accepted.map(({ request }, i) => ({
        input: request.input,
        log: request.log,
        cosigned: JSON.stringify(sealed[i]),
      }));
      const now = rows[0]!.input.now;
      await c.query(
        `INSERT INTO outputs (cid, bytes, size, created_at)
         SELECT cid, bytes, octet_length(bytes), $3 FROM unnest($1::text[], $2::bytea[]) AS o(cid, bytes)
         ON CONFLICT (cid) DO NOTHING`,
        [rows.map((a) => a.input.outputCid), rows.map((a) => Buffer.from(a.input.outputBytes)), now],
      );
      await c.query(
        `INSERT INTO execution_log (seq, job_id, attempt_id, node_key, prev_hash, entry_hash, receipt, created_at)
         SELECT * , $8::bigint FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])`,
        [
          rows.map((a) => a.log.seq),
          rows.map((a) => a.input.jobId),
          rows.map((a) => a.input.attemptId),
          rows.map((a) => a.input.nodeKey),
          rows.map((a) => a.log.prev_hash),
          rows.map((a) => a.log.entry_hash),
          rows.map((a) => a.cosigned),
          now,
        ],
      );
      await c.query(
        `UPDATE jobs j SET status = 'completed', output = u.output, output_cid = u.cid, receipt = u.receipt,
           finished_at = u.now, updated_at = u.now, lease_expires_at = NULL
         FROM unnest($1::text[], $2::jsonb[], $3::text[], $4::jsonb[], $5::bigint[]) AS u(id, output, cid, receipt, now)
         WHERE j.id = u.id`,
        [
          rows.map((a) => a.input.jobId),
          rows.map((a) => JSON.stringify(a.input.output)),
          rows.map((a) => a.input.outputCid),
          rows.map((a) => a.cosigned),
          rows.map((a) => a.input.now),
        ],
      );
      // Paid jobs: the charge stays in escrow until settlement, the rest goes back to the payer.
      const charged = plan.accepted.filter((a) => a.charge !== undefined && a.job.money);
      if (charged.length > 0) {
        await this.book.postManyTrusted(
          c,
          charged.flatMap(({ job, charge }) => {
            const release = chargeTransfer(job.id, job.money!, charge!, now);
            return release ? [release] : [];
          }),
        );
        await c.query(
          `UPDATE jobs j SET money_state = 'charged', charge = u.charge, compute_class = u.cls
           FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(id, charge, cls)
           WHERE j.id = u.id AND j.money_state = 'escrowed'`,
          [
            charged.map((a) => a.job.id),
            charged.map((a) => a.charge!.toString()),
            charged.map((a) => a.request.input.computeClass ?? "S"),
          ],
        );
      }
      await c.query(`UPDATE job_attempts SET ended_at = $2, outcome = 'completed' WHERE attempt_id = ANY($1)`, [
        rows.map((a) => a.input.attemptId),
        now,
      ]);
      const last = rows[rows.length - 1]!.log;
      await c.query(`UPDATE execution_log_head SET seq = $1, entry_hash = $2 WHERE id = 1`, [
        last.seq,
        last.entry_hash,
      ]);
      return plan.complete(sealed);
    });
  }

  private async endAttempt(
    c: pg.PoolClient,
    jobId: string,
    attemptId: string,
    error: ErrorBody,
    retry: boolean,
    now: number,
  ): Promise<JobRow | undefined> {
    const errorJson = JSON.stringify(error);
    let row: RawRow | undefined;
    if (retry) {
      [row] = await this.rows(
        c,
        `UPDATE jobs SET status = 'queued', attempt_id = NULL, node_key = NULL, lease_expires_at = NULL,
           error = $1, updated_at = $2, failed_nodes = failed_nodes || jsonb_build_array(node_key)
         WHERE id = $3 AND attempt_id = $4 AND status IN (${toQueued}) AND attempts < max_attempts RETURNING *`,
        [errorJson, now, jobId, attemptId],
      );
    }
    if (row === undefined) {
      [row] = await this.rows(
        c,
        `UPDATE jobs SET status = 'failed', lease_expires_at = NULL, error = $1, finished_at = $2, updated_at = $2
         WHERE id = $3 AND attempt_id = $4 AND status IN (${toFailed}) RETURNING *`,
        [errorJson, now, jobId, attemptId],
      );
      if (row !== undefined) row = await this.refundIn(c, row, now);
    }
    if (row !== undefined) {
      await c.query(`UPDATE job_attempts SET ended_at = $1, outcome = $2, error = $3 WHERE attempt_id = $4`, [
        now,
        row.status === "queued" ? "requeued" : "failed",
        errorJson,
        attemptId,
      ]);
    }
    return row && rowToJob(row);
  }

  async failAttempt(input: FailAttemptInput): Promise<JobRow | undefined> {
    return this.tx((c) => this.endAttempt(c, input.jobId, input.attemptId, input.error, input.retry, input.now));
  }

  private async releaseWhere(where: string, params: unknown[], error: ErrorBody, now: number): Promise<EndedAttempt[]> {
    return this.tx(async (c) => {
      const rows = await this.rows(
        c,
        `SELECT id, attempt_id FROM jobs WHERE status IN ('leased', 'running') AND ${where} FOR UPDATE SKIP LOCKED`,
        params,
      );
      const out: EndedAttempt[] = [];
      for (const r of rows) {
        const job = await this.endAttempt(c, r.id as string, r.attempt_id as string, error, true, now);
        if (job) out.push({ job, attemptId: r.attempt_id as string });
      }
      return out;
    });
  }

  async releaseNodeJobs(nodeKey: string, error: ErrorBody, now: number): Promise<EndedAttempt[]> {
    return this.releaseWhere(`node_key = $1`, [nodeKey], error, now);
  }

  async expireLeases(error: ErrorBody, now: number): Promise<EndedAttempt[]> {
    return this.releaseWhere(`lease_expires_at < $1`, [now], error, now);
  }

  async expireQueued(error: ErrorBody, now: number): Promise<JobRow[]> {
    return this.tx(async (c) => {
      const rows = await this.rows(
        c,
        `UPDATE jobs SET status = 'failed', error = $1, finished_at = $2, updated_at = $2
         WHERE status = 'queued' AND queue_deadline_at < $2 AND status IN (${toFailed}) RETURNING *`,
        [JSON.stringify(error), now],
      );
      const out: JobRow[] = [];
      for (const row of rows) out.push(rowToJob(await this.refundIn(c, row, now)));
      return out;
    });
  }

  /**
   * A job that ended without a result (failed, cancelled): its escrow goes back to its payer, in
   * the caller's transaction. Returns the row as it now stands.
   */
  private async refundIn(c: pg.PoolClient, row: RawRow, now: number): Promise<RawRow> {
    const money = rowToMoney(row);
    if (money?.state !== "escrowed") return row;
    const refund = refundTransfer(row.id as string, money, now);
    if (refund) await this.book.postIn(c, refund);
    const [after] = await this.rows(
      c,
      `UPDATE jobs SET money_state = 'refunded' WHERE id = $1 AND money_state = 'escrowed' RETURNING *`,
      [row.id],
    );
    return after ?? row;
  }

  async cancelJob(id: string, error: ErrorBody, now: number): Promise<JobRow | undefined> {
    return this.tx(async (c) => {
      const [row] = await this.rows(
        c,
        `UPDATE jobs SET status = 'cancelled', lease_expires_at = NULL, error = $1, finished_at = $2, updated_at = $2
         WHERE id = $3 AND status IN (${toCancelled}) RETURNING *`,
        [JSON.stringify(error), now, id],
      );
      if (row?.attempt_id) {
        await c.query(
          `UPDATE job_attempts SET ended_at = $1, outcome = 'cancelled', error = $2 WHERE attempt_id = $3`,
          [now, JSON.stringify(error), row.attempt_id],
        );
      }
      return row && rowToJob(await this.refundIn(c, row, now));
    });
  }

  async settleableJobs(before: number, limit: number): Promise<SettleCandidate[]> {
    const rows = await this.rows(
      this.pool,
      settleableSql((n) => `$${n}`),
      [before, limit],
    );
    return rows.map(rowToSettleCandidate);
  }

  private async moveMoney(c: Queryable, jobId: string, from: string, to: string): Promise<RawRow | undefined> {
    const [row] = await this.rows(
      c,
      `UPDATE jobs SET money_state = $1 WHERE id = $2 AND money_state = $3 RETURNING *`,
      [to, jobId, from],
    );
    return row;
  }

  async settleJob(input: SettleJobInput): Promise<SettleJobResult> {
    return (await this.settleJobs([input]))[0]!;
  }

  async settleJobs(inputs: readonly SettleJobInput[]): Promise<SettleJobResult[]> {
    if (inputs.length === 0) return [];
    return this.tx(async (c) => {
      // Every job still in the state it is settled from moves to settled, in one statement.
      const moved = new Set(
        (
          await this.rows(
            c,
            `UPDATE jobs j SET money_state = 'settled' FROM unnest($1::text[], $2::text[]) AS u(id, from_state)
             WHERE j.id = u.id AND j.money_state = u.from_state RETURNING j.id`,
            [inputs.map((i) => i.jobId), inputs.map((i) => i.from)],
          )
        ).map((r) => r.id as string),
      );
      const settling = inputs.filter((i) => moved.has(i.jobId));
      await this.book.postManyTrusted(
        c,
        settling.flatMap((i) => (i.settle ? [i.settle] : [])),
      );
      // Rewards against each period's running total, locked: replicas take turns against the budget.
      const rewarded = new Map<string, bigint>();
      const minted = new Map<number, bigint>();
      const rewards: LedgerTransfer[] = [];
      for (const i of settling) {
        if (!i.reward) continue;
        const { transfer, budget, since } = i.reward;
        if (!minted.has(since)) minted.set(since, await this.book.lockEmission(c, since));
        const wanted = transfer.postings.find((p) => p.amount > 0n)?.amount ?? 0n;
        const amount = cappedReward(wanted, minted.get(since)!, budget);
        if (amount <= 0n) continue;
        minted.set(since, minted.get(since)! + amount);
        rewarded.set(i.jobId, amount);
        rewards.push(withRewardAmount(transfer, amount));
      }
      await this.book.postManyTrusted(c, rewards);
      for (const [since, total] of minted)
        await c.query(`UPDATE ledger_emission SET minted = $2 WHERE period_start = $1`, [since, total.toString()]);
      return inputs.map((i) => ({ settled: moved.has(i.jobId), rewarded: rewarded.get(i.jobId) ?? 0n }));
    });
  }

  async holdSettlement(jobId: string): Promise<boolean> {
    return (await this.moveMoney(this.pool, jobId, "charged", "held")) !== undefined;
  }

  async refundHeld(jobId: string, now: number): Promise<boolean> {
    return this.tx(async (c) => {
      const row = await this.moveMoney(c, jobId, "held", "refunded");
      const money = row && rowToMoney(row);
      if (!money) return false;
      const refund = heldRefundTransfer(jobId, money, now);
      if (refund) mustPost(await this.book.postIn(c, refund));
      return true;
    });
  }

  async countJobs(): Promise<Record<JobStatus, number>> {
    const rows = await this.rows(this.pool, `SELECT status, COUNT(*)::int AS n FROM jobs GROUP BY status`);
    return countsByStatus(rows as { status: string; n: number }[]);
  }

  async queuedByModel(): Promise<Record<string, number>> {
    const rows = await this.rows(
      this.pool,
      `SELECT model, COUNT(*)::int AS n FROM jobs WHERE status = 'queued' GROUP BY model`,
    );
    return Object.fromEntries(rows.map((r) => [r.model as string, r.n as number]));
  }

  async ping(): Promise<void> {
    await this.pool.query("SELECT 1");
  }

  async upsertNode(input: UpsertNodeInput): Promise<UpsertNodeResult> {
    return this.tx(async (c): Promise<UpsertNodeResult> => {
      const [keyRow] = await this.rows(c, `SELECT account_id FROM nodes WHERE key = $1 FOR UPDATE`, [input.key]);
      const [nameRow] = await this.rows(c, `SELECT key, account_id FROM nodes WHERE name = $1 FOR UPDATE`, [
        input.name,
      ]);
      const decision = nodeClaim(
        keyRow as { account_id: string | null } | undefined,
        nameRow as { key: string; account_id: string | null } | undefined,
        input,
      );
      if (!decision.ok) return decision;
      if (decision.moveFrom)
        await c.query(`UPDATE nodes SET name = $1 WHERE key = $2`, [
          retiredName(input.name, decision.moveFrom),
          decision.moveFrom,
        ]);
      await c.query(
        `INSERT INTO nodes (key, name, capabilities, hardware, compute_class, online, first_seen_at, last_seen_at,
           account_id)
         VALUES ($1, $2, $3, $4, $5, true, $6, $6, $7)
         ON CONFLICT (key) DO UPDATE SET name = excluded.name, capabilities = excluded.capabilities,
           hardware = excluded.hardware, compute_class = excluded.compute_class, online = true,
           last_seen_at = excluded.last_seen_at, account_id = COALESCE(nodes.account_id, excluded.account_id)`,
        [
          input.key,
          input.name,
          JSON.stringify(input.capabilities),
          JSON.stringify(input.hardware),
          input.hardware.compute_class,
          input.now,
          decision.accountId,
        ],
      );
      return { ok: true };
    }).catch((err: unknown) => {
      // Two keys racing for one new name: the UNIQUE constraint decides.
      if ((err as { code?: string }).code === "23505") return { ok: false, reason: "name_taken" } as const;
      throw err;
    });
  }

  async setNodeOnline(key: string, online: boolean, now: number): Promise<void> {
    await this.pool.query(`UPDATE nodes SET online = $1, last_seen_at = $2 WHERE key = $3`, [online, now, key]);
  }

  async getNode(key: string): Promise<NodeRow | undefined> {
    const [row] = await this.rows(this.pool, `SELECT * FROM nodes WHERE key = $1`, [key]);
    return row && rowToNode(row);
  }

  async listNodes(): Promise<NodeRow[]> {
    return (await this.rows(this.pool, `SELECT * FROM nodes ORDER BY first_seen_at`)).map(rowToNode);
  }

  async getOutput(cid: string): Promise<Uint8Array | undefined> {
    const [row] = await this.rows(this.pool, `SELECT bytes FROM outputs WHERE cid = $1`, [cid]);
    return row && new Uint8Array(row.bytes as Buffer);
  }

  async outputReadableBy(cid: string, accountId: string | null): Promise<boolean> {
    const rows = await this.rows(
      this.pool,
      `SELECT 1 FROM jobs WHERE output_cid = $1 AND data_deleted_at IS NULL AND (account_id = $2 OR output_public)
       LIMIT 1`,
      [cid, accountId],
    );
    return rows.length > 0;
  }

  async setOutputPublic(jobId: string, outputPublic: boolean, now: number): Promise<JobRow | undefined> {
    const [row] = await this.rows(
      this.pool,
      `UPDATE jobs SET output_public = $1, updated_at = $2 WHERE id = $3 RETURNING *`,
      [outputPublic, now, jobId],
    );
    return row && rowToJob(row);
  }

  /** Redacts ended jobs and drops their outputs' bytes where no kept job shares them. */
  private async deleteData(c: Queryable, ids: readonly string[], now: number): Promise<JobRow[]> {
    const rows = await this.rows(
      c,
      `UPDATE jobs SET input = '${redactedInput}'::jsonb, output = NULL, data_deleted_at = $1, updated_at = $1
       WHERE id = ANY($2) AND status IN (${ended}) AND data_deleted_at IS NULL RETURNING *`,
      [now, ids],
    );
    const cids = [...new Set(rows.map((r) => r.output_cid as string | null).filter((c): c is string => c !== null))];
    if (cids.length > 0)
      await c.query(
        `DELETE FROM outputs o WHERE o.cid = ANY($1)
           AND NOT EXISTS (SELECT 1 FROM jobs WHERE output_cid = o.cid AND data_deleted_at IS NULL)`,
        [cids],
      );
    return rows.map(rowToJob);
  }

  async deleteJobData(jobId: string, now: number): Promise<JobRow | undefined> {
    return (await this.tx((c) => this.deleteData(c, [jobId], now)))[0];
  }

  async expireJobData(endedBefore: number, now: number, limit: number): Promise<number> {
    return this.tx(async (c) => {
      const ids = await this.rows(
        c,
        `SELECT id FROM jobs WHERE finished_at < $1 AND data_deleted_at IS NULL AND status IN (${ended})
         LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [endedBefore, limit],
      );
      return (
        await this.deleteData(
          c,
          ids.map((r) => r.id as string),
          now,
        )
      ).length;
    });
  }

  async clearIdempotencyKeys(createdBefore: number): Promise<number> {
    const r = await this.pool.query(
      `UPDATE jobs SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL AND created_at < $1`,
      [createdBefore],
    );
    return r.rowCount ?? 0;
  }

  async getLogEntry(seq: number): Promise<LogEntry | undefined> {
    const [r] = await this.rows(this.pool, `SELECT * FROM execution_log WHERE seq = $1`, [seq]);
    if (r === undefined) return undefined;
    return {
      seq: Number(r.seq),
      jobId: r.job_id as string,
      prevHash: r.prev_hash as string,
      entryHash: r.entry_hash as string,
      receipt: r.receipt as LogEntry["receipt"],
      createdAt: Number(r.created_at),
    };
  }

  async logHead(): Promise<{ seq: number; entryHash: string } | undefined> {
    const [r] = await this.rows(this.pool, `SELECT seq, entry_hash FROM execution_log_head WHERE id = 1`);
    return r === undefined || Number(r.seq) === 0
      ? undefined
      : { seq: Number(r.seq), entryHash: r.entry_hash as string };
  }

  /**
   * LISTEN on a dedicated connection (a pooled one would be handed to others). A dropped
   * connection is reported and re-established after a second; changes made meanwhile are found
   * by the coordinator's sweep, so nothing depends on a notification arriving.
   */
  async watch(
    onChange: (change: StoreNotification) => void,
    onError: (err: unknown) => void,
  ): Promise<() => Promise<void>> {
    let stopped = false;
    let client: pg.Client | undefined;
    let retry: NodeJS.Timeout | undefined;
    const connect = async () => {
      const c = new pg.Client({ connectionString: this.connectionString });
      c.on("notification", (n) => {
        if (n.channel === "havn_jobs") onChange({ kind: "queued" });
        else if (n.channel === "havn_job_ended" && n.payload) onChange({ kind: "ended", jobId: n.payload });
      });
      c.on("error", (err) => {
        onError(err);
        c.end().catch(() => {});
        if (!stopped) retry = setTimeout(() => void connect().catch(onError), 1_000);
      });
      await c.connect();
      await c.query("LISTEN havn_jobs");
      await c.query("LISTEN havn_job_ended");
      if (stopped) await c.end();
      else client = c;
    };
    await connect();
    return async () => {
      stopped = true;
      clearTimeout(retry);
      await client?.end().catch(() => {});
    };
  }
}
