import type pg from "pg";
import type { ErrorBody } from "@havn/protocol";
import type { RawRow } from "../columns.js";
import type { PostgresLedger } from "../ledger/postgres.js";
import { chargeTransfer, escrowTransfer, insufficientFunds } from "../ledger/rows.js";
import type { PostgresLog } from "../log/postgres.js";
import { rows as select, type Queryable, type Tx } from "../postgres/db.js";
import {
  admissionStatus,
  countsByStatus,
  newJobRow,
  planCompletions,
  redactedInput,
  rowToClaim,
  rowToJob,
  statusGuards,
} from "./rows.js";
import type { JobStatus } from "./states.js";
import type {
  AdmissionOutcome,
  ClaimedAttempt,
  ClaimRequest,
  CompleteJobInput,
  CompleteJobResult,
  EndedAttempt,
  FailAttemptInput,
  JobRow,
  JobStore,
  NewJob,
  ReceiptSealer,
} from "./types.js";

const { ended, toLeased, toRunning, toFailed, toQueued, toCancelled } = statusGuards;

/**
 * The jobs domain on PostgreSQL. Several coordinator replicas may share the database: claims skip
 * rows another replica holds (`FOR UPDATE SKIP LOCKED`); a completion batch locks the execution
 * log's head (`PostgresLog`), so the chain stays single; a transition's postings
 * (`PostgresLedger`) are written in its transaction.
 */
export class PostgresJobs implements JobStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly tx: Tx,
    private readonly book: PostgresLedger,
    private readonly log: PostgresLog,
  ) {}

  async insert(job: NewJob): Promise<JobRow> {
    const [outcome] = await this.admit([job]);
    if (typeof outcome === "object") throw insufficientFunds(outcome);
    return newJobRow(job);
  }

  async admit(jobs: readonly NewJob[]): Promise<readonly AdmissionOutcome[]> {
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
           request_id, account_id, idempotency_key, money_state, payer, escrow, price, input_salt, workflow_version)
         SELECT id, status, model, workflow_id, input, params, input_hash, stream, max_attempts, deadline, now, now,
           CASE WHEN attempt_id IS NULL THEN 0 ELSE 1 END, attempt_id, node_key, lease_expires_at, route, request_id,
           account_id, idempotency_key, CASE WHEN payer IS NULL THEN NULL ELSE 'escrowed' END, payer, escrow, price,
           input_salt, workflow_version
         FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[], $6::text[], $7::boolean[],
           $8::int[], $9::bigint[], $10::bigint[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::jsonb[],
           $16::text[], $17::text[], $18::text[], $19::text[], $20::bigint[], $21::jsonb[], $22::text[], $23::text[])
           AS j(id, model, workflow_id, input, params, input_hash, stream, max_attempts, deadline, now, status,
             attempt_id, node_key, lease_expires_at, route, request_id, account_id, idempotency_key, payer, escrow,
             price, input_salt, workflow_version)
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
        jobs.map((j) => j.inputSalt),
        jobs.map((j) => j.workflowVersion),
      ],
    );
    return new Set(rows.map((r: { id: string }) => r.id));
  }

  async byIdempotencyKey(accountId: string, key: string): Promise<JobRow | undefined> {
    const [row] = await select(this.pool, `SELECT * FROM jobs WHERE account_id = $1 AND idempotency_key = $2`, [
      accountId,
      key,
    ]);
    return row && rowToJob(row);
  }

  async get(id: string): Promise<JobRow | undefined> {
    const [row] = await select(this.pool, `SELECT * FROM jobs WHERE id = $1`, [id]);
    return row && rowToJob(row);
  }

  async ended(ids: readonly string[]): Promise<JobRow[]> {
    if (ids.length === 0) return [];
    const rows = await select(this.pool, `SELECT * FROM jobs WHERE id = ANY($1) AND status IN (${ended})`, [ids]);
    return rows.map(rowToJob);
  }

  async claimable(models: readonly string[], limit: number): Promise<JobRow[]> {
    if (models.length === 0 || limit <= 0) return [];
    const rows = await select(
      this.pool,
      `SELECT * FROM jobs WHERE status = 'queued' AND model = ANY($1) ORDER BY created_at LIMIT $2`,
      [models, limit],
    );
    return rows.map(rowToJob);
  }

  async claim(claims: readonly ClaimRequest[], now: number): Promise<ClaimedAttempt[]> {
    if (claims.length === 0) return [];
    // One statement: rows another replica is claiming right now are skipped, not waited for;
    // the status guard makes a job claimable once even under concurrent statements.
    const rows = await select(
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

  async complete(inputs: readonly CompleteJobInput[], sealer: ReceiptSealer): Promise<CompleteJobResult[]> {
    if (inputs.length === 0) return [];
    return this.tx(async (c) => {
      // The head stays locked while the batch is co-signed (off the event loop): replicas append
      // one batch at a time, and the positions signed are the positions written.
      const head = await this.log.lockHeadIn(c);
      const current = new Map(
        (await select(c, `SELECT * FROM jobs WHERE id = ANY($1) FOR UPDATE`, [inputs.map((i) => i.jobId)])).map((r) => [
          r.id as string,
          rowToJob(r),
        ]),
      );
      const plan = planCompletions(inputs, (id) => current.get(id), head, sealer);
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
      await this.log.appendIn(
        c,
        rows.map(({ input, log, cosigned }) => ({
          seq: log.seq,
          jobId: input.jobId,
          attemptId: input.attemptId,
          nodeKey: input.nodeKey,
          prevHash: log.prev_hash,
          entryHash: log.entry_hash,
          receipt: cosigned,
          now: input.now,
        })),
      );
      // A paid job (escrowed: its row is locked) is charged in the same statement: escrowed → charged.
      await c.query(
        `UPDATE jobs j SET status = 'completed', output = u.output, output_cid = u.cid, receipt = u.receipt,
           finished_at = u.now, updated_at = u.now, lease_expires_at = NULL,
           money_state = CASE WHEN u.charge IS NULL THEN j.money_state ELSE 'charged' END,
           charge = COALESCE(u.charge, j.charge), compute_class = COALESCE(u.cls, j.compute_class)
         FROM unnest($1::text[], $2::jsonb[], $3::text[], $4::jsonb[], $5::bigint[], $6::bigint[], $7::text[])
           AS u(id, output, cid, receipt, now, charge, cls)
         WHERE j.id = u.id`,
        [
          rows.map((a) => a.input.jobId),
          rows.map((a) => JSON.stringify(a.input.output)),
          rows.map((a) => a.input.outputCid),
          rows.map((a) => a.cosigned),
          rows.map((a) => a.input.now),
          plan.accepted.map((a) => (a.charge !== undefined && a.job.money ? a.charge.toString() : null)),
          plan.accepted.map((a) =>
            a.charge !== undefined && a.job.money ? (a.request.input.computeClass ?? "S") : null,
          ),
        ],
      );
      // The charge stays in escrow until settlement; the rest goes back to the payer.
      await this.book.postManyTrusted(
        c,
        plan.accepted.flatMap(({ job, charge }) => {
          const release = charge !== undefined && job.money && chargeTransfer(job.id, job.money, charge, now);
          return release ? [release] : [];
        }),
      );
      await c.query(`UPDATE job_attempts SET ended_at = $2, outcome = 'completed' WHERE attempt_id = ANY($1)`, [
        rows.map((a) => a.input.attemptId),
        now,
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
      [row] = await select(
        c,
        `UPDATE jobs SET status = 'queued', attempt_id = NULL, node_key = NULL, lease_expires_at = NULL,
           error = $1, updated_at = $2, failed_nodes = failed_nodes || jsonb_build_array(node_key)
         WHERE id = $3 AND attempt_id = $4 AND status IN (${toQueued}) AND attempts < max_attempts RETURNING *`,
        [errorJson, now, jobId, attemptId],
      );
    }
    if (row === undefined) {
      [row] = await select(
        c,
        `UPDATE jobs SET status = 'failed', lease_expires_at = NULL, error = $1, finished_at = $2, updated_at = $2
         WHERE id = $3 AND attempt_id = $4 AND status IN (${toFailed}) RETURNING *`,
        [errorJson, now, jobId, attemptId],
      );
      if (row !== undefined) row = await this.book.refundJobIn(c, row, now);
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
      const rows = await select(
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

  async releaseNode(nodeKey: string, error: ErrorBody, now: number): Promise<EndedAttempt[]> {
    return this.releaseWhere(`node_key = $1`, [nodeKey], error, now);
  }

  async expireLeases(error: ErrorBody, now: number): Promise<EndedAttempt[]> {
    return this.releaseWhere(`lease_expires_at < $1`, [now], error, now);
  }

  async expireQueued(error: ErrorBody, now: number): Promise<JobRow[]> {
    return this.tx(async (c) => {
      const rows = await select(
        c,
        `UPDATE jobs SET status = 'failed', error = $1, finished_at = $2, updated_at = $2
         WHERE status = 'queued' AND queue_deadline_at < $2 AND status IN (${toFailed}) RETURNING *`,
        [JSON.stringify(error), now],
      );
      const out: JobRow[] = [];
      for (const row of rows) out.push(rowToJob(await this.book.refundJobIn(c, row, now)));
      return out;
    });
  }

  async cancel(id: string, error: ErrorBody, now: number): Promise<JobRow | undefined> {
    return this.tx(async (c) => {
      const [row] = await select(
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
      return row && rowToJob(await this.book.refundJobIn(c, row, now));
    });
  }

  async countByStatus(): Promise<Record<JobStatus, number>> {
    const rows = await select(this.pool, `SELECT status, COUNT(*)::int AS n FROM jobs GROUP BY status`);
    return countsByStatus(rows as { status: string; n: number }[]);
  }

  async queuedByModel(): Promise<Record<string, number>> {
    const rows = await select(
      this.pool,
      `SELECT model, COUNT(*)::int AS n FROM jobs WHERE status = 'queued' GROUP BY model`,
    );
    return Object.fromEntries(rows.map((r) => [r.model as string, r.n as number]));
  }

  async output(cid: string): Promise<Uint8Array | undefined> {
    const [row] = await select(this.pool, `SELECT bytes FROM outputs WHERE cid = $1`, [cid]);
    return row && new Uint8Array(row.bytes as Buffer);
  }

  async outputReadableBy(cid: string, accountId: string | null): Promise<boolean> {
    const rows = await select(
      this.pool,
      `SELECT 1 FROM jobs WHERE output_cid = $1 AND data_deleted_at IS NULL AND (account_id = $2 OR output_public)
       LIMIT 1`,
      [cid, accountId],
    );
    return rows.length > 0;
  }

  async setOutputPublic(jobId: string, outputPublic: boolean, now: number): Promise<JobRow | undefined> {
    const [row] = await select(
      this.pool,
      `UPDATE jobs SET output_public = $1, updated_at = $2 WHERE id = $3 RETURNING *`,
      [outputPublic, now, jobId],
    );
    return row && rowToJob(row);
  }

  /** Redacts ended jobs and drops their outputs' bytes where no kept job shares them. */
  private async redact(c: Queryable, ids: readonly string[], now: number): Promise<JobRow[]> {
    const rows = await select(
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

  async deleteData(jobId: string, now: number): Promise<JobRow | undefined> {
    return (await this.tx((c) => this.redact(c, [jobId], now)))[0];
  }

  async expireData(endedBefore: number, now: number, limit: number): Promise<number> {
    return this.tx(async (c) => {
      const ids = await select(
        c,
        `SELECT id FROM jobs WHERE finished_at < $1 AND data_deleted_at IS NULL AND status IN (${ended})
         LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [endedBefore, limit],
      );
      return (
        await this.redact(
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
}
