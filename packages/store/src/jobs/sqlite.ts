import type Database from "better-sqlite3";
import type { ErrorBody } from "@havn/protocol";
import type { RawRow } from "../columns.js";
import { escrowTransfer, insufficientFunds } from "../ledger/rows.js";
import type { SqliteLedger } from "../ledger/sqlite.js";
import { genesisHash } from "../log/rows.js";
import type { SqliteLog } from "../log/sqlite.js";
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
import { preparedOnFirstUse } from "../sqlite/domain.js";

const { ended, toLeased, toRunning, toCompleted, toFailed, toQueued, toCancelled } = statusGuards;
/** Thrown inside a completion transaction to roll it back: an attempt ended while it was co-signed. */
const attemptMoved = new Error("attempt moved");

/** A batch is read again at most this often; each round excludes the attempts that ended. */
const maxSealRounds = 5;

function statements(db: Database.Database) {
  return {
    insertJob: db.prepare(
      `INSERT INTO jobs (id, status, model, workflow_id, input, params, input_hash, stream, max_attempts,
         queue_deadline_at, created_at, updated_at, attempts, attempt_id, node_key, lease_expires_at, route,
         request_id, account_id, idempotency_key, money_state, payer, escrow, price, input_salt, workflow_version)
       VALUES (@id, @status, @model, @workflowId, @input, @params, @inputHash, @stream, @maxAttempts,
         @queueDeadlineAt, @now, @now, @attempts, @attemptId, @nodeKey, @leaseExpiresAt, @route, @requestId,
         @accountId, @idempotencyKey, @moneyState, @payer, @escrow, @price, @inputSalt, @workflowVersion)
       ON CONFLICT (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`,
    ),
    getJob: db.prepare(`SELECT * FROM jobs WHERE id = ?`),
    endedJobs: db.prepare(`SELECT * FROM jobs WHERE id IN (SELECT value FROM json_each(?)) AND status IN (${ended})`),
    claim: db.prepare(
      `UPDATE jobs SET status = 'leased', attempt_id = @attemptId, node_key = @nodeKey,
         lease_expires_at = @leaseExpiresAt, attempts = attempts + 1, route = @route, updated_at = @now
       WHERE id = @jobId AND status IN (${toLeased}) RETURNING id, attempt_id, node_key, lease_expires_at, attempts`,
    ),
    insertAttempt: db.prepare(
      `INSERT INTO job_attempts (attempt_id, job_id, node_key, started_at) VALUES (?, ?, ?, ?)`,
    ),
    endAttempt: db.prepare(`UPDATE job_attempts SET ended_at = ?, outcome = ?, error = ? WHERE attempt_id = ?`),
    markRunning: db.prepare(
      `UPDATE jobs SET status = 'running', updated_at = ? WHERE id = ? AND attempt_id = ? AND status IN (${toRunning})`,
    ),
    renew: db.prepare(
      `UPDATE jobs SET lease_expires_at = ?, updated_at = ?
       WHERE attempt_id = ? AND node_key = ? AND status IN ('leased', 'running')`,
    ),
    insertOutput: db.prepare(
      `INSERT INTO outputs (cid, bytes, size, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (cid) DO NOTHING`,
    ),
    complete: db.prepare(
      `UPDATE jobs SET status = 'completed', output = ?, output_cid = ?, receipt = ?, finished_at = ?,
         updated_at = ?, lease_expires_at = NULL
       WHERE id = ? AND attempt_id = ? AND status IN (${toCompleted})`,
    ),
    requeue: db.prepare(
      `UPDATE jobs SET status = 'queued', attempt_id = NULL, node_key = NULL, lease_expires_at = NULL,
         error = ?, updated_at = ?, failed_nodes = json_insert(failed_nodes, '$[#]', node_key)
       WHERE id = ? AND attempt_id = ? AND status IN (${toQueued}) AND attempts < max_attempts RETURNING *`,
    ),
    fail: db.prepare(
      `UPDATE jobs SET status = 'failed', lease_expires_at = NULL, error = ?, finished_at = ?, updated_at = ?
       WHERE id = ? AND attempt_id = ? AND status IN (${toFailed}) RETURNING *`,
    ),
    nodeAttempts: db.prepare(`SELECT id, attempt_id FROM jobs WHERE node_key = ? AND status IN ('leased', 'running')`),
    expiredLeases: db.prepare(
      `SELECT id, attempt_id FROM jobs WHERE status IN ('leased', 'running') AND lease_expires_at < ?`,
    ),
    expireQueued: db.prepare(
      `UPDATE jobs SET status = 'failed', error = ?, finished_at = ?, updated_at = ?
       WHERE status = 'queued' AND queue_deadline_at < ? AND status IN (${toFailed})
       RETURNING *`,
    ),
    cancel: db.prepare(
      `UPDATE jobs SET status = 'cancelled', lease_expires_at = NULL, error = ?, finished_at = ?, updated_at = ?
       WHERE id = ? AND status IN (${toCancelled}) RETURNING *`,
    ),
    countJobs: db.prepare(`SELECT status, COUNT(*) AS n FROM jobs GROUP BY status`),
    queuedByModel: db.prepare(`SELECT model, COUNT(*) AS n FROM jobs WHERE status = 'queued' GROUP BY model`),
    getOutput: db.prepare(`SELECT bytes FROM outputs WHERE cid = ?`),
    byIdempotencyKey: db.prepare(`SELECT * FROM jobs WHERE account_id = ? AND idempotency_key = ?`),
    outputOwned: db.prepare(
      `SELECT 1 FROM jobs WHERE output_cid = ? AND data_deleted_at IS NULL AND (account_id = ? OR output_public = 1)
       LIMIT 1`,
    ),
    setOutputPublic: db.prepare(`UPDATE jobs SET output_public = ?, updated_at = ? WHERE id = ? RETURNING *`),
    deleteData: db.prepare(
      `UPDATE jobs SET input = '${redactedInput}', output = NULL, data_deleted_at = ?, updated_at = ?
       WHERE id = ? AND status IN (${ended}) AND data_deleted_at IS NULL RETURNING *`,
    ),
    expiredData: db.prepare(
      `SELECT id FROM jobs WHERE finished_at < ? AND data_deleted_at IS NULL AND status IN (${ended}) LIMIT ?`,
    ),
    deleteOutputIfUnused: db.prepare(
      `DELETE FROM outputs WHERE cid = ? AND NOT EXISTS
         (SELECT 1 FROM jobs WHERE output_cid = ? AND data_deleted_at IS NULL)`,
    ),
    clearIdempotency: db.prepare(
      `UPDATE jobs SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL AND created_at < ?`,
    ),
  };
}

/**
 * The jobs domain on SQLite through better-sqlite3: synchronous, prepared statements, WAL. One
 * process owns the file, so every method runs its transaction to the end before yielding — claims
 * are atomic without locks. A transition's postings (`SqliteLedger`) and log entries
 * (`SqliteLog`) are written inside the same transaction.
 */
export class SqliteJobs implements JobStore {
  private readonly q = preparedOnFirstUse(() => statements(this.db));

  constructor(
    private readonly db: Database.Database,
    private readonly book: SqliteLedger,
    private readonly log: SqliteLog,
  ) {}

  /** Inserts a job (and its first attempt, when placed); false when its idempotency key is taken. */
  private insertSync(job: NewJob): boolean {
    const lease = job.lease;
    const { changes } = this.q.insertJob.run({
      id: job.id,
      status: admissionStatus(job),
      model: job.model,
      workflowId: job.workflowId,
      input: JSON.stringify(job.input),
      params: JSON.stringify(job.params),
      inputHash: job.inputHash,
      inputSalt: job.inputSalt,
      workflowVersion: job.workflowVersion,
      stream: job.stream ? 1 : 0,
      maxAttempts: job.maxAttempts,
      queueDeadlineAt: job.queueDeadlineAt,
      now: job.now,
      attempts: lease ? 1 : 0,
      attemptId: lease?.attemptId ?? null,
      nodeKey: lease?.nodeKey ?? null,
      leaseExpiresAt: lease?.leaseExpiresAt ?? null,
      route: lease ? JSON.stringify(lease.route) : null,
      requestId: job.requestId ?? null,
      accountId: job.accountId ?? null,
      idempotencyKey: job.idempotencyKey ?? null,
      moneyState: job.money ? "escrowed" : null,
      payer: job.money?.payer ?? null,
      escrow: job.money?.amount ?? null,
      price: job.money ? JSON.stringify(job.money.price) : null,
    });
    if (changes === 0) return false;
    if (lease) this.q.insertAttempt.run(lease.attemptId, job.id, lease.nodeKey, job.now);
    return true;
  }

  /**
   * One job of an admission batch, inside its transaction: a paid job whose payer cannot cover its
   * escrow (counting the batch's earlier jobs) is not written; its neighbours are.
   */
  private admitSync(job: NewJob): AdmissionOutcome {
    if (job.money) {
      const balance = this.book.balanceSync(job.money.payer);
      if (balance < job.money.amount) return { reason: "insufficient_funds", balance, needed: job.money.amount };
    }
    if (!this.insertSync(job)) return "duplicate";
    if (job.money) this.book.postTrustedSync(escrowTransfer(job.id, job.money, job.now));
    return "inserted";
  }

  async insert(job: NewJob): Promise<JobRow> {
    const outcome = this.db.transaction(() => this.admitSync(job))();
    if (typeof outcome === "object") throw insufficientFunds(outcome);
    return newJobRow(job);
  }

  async admit(jobs: readonly NewJob[]): Promise<readonly AdmissionOutcome[]> {
    // One transaction, one WAL commit, for the whole batch.
    return this.db.transaction(() => jobs.map((job) => this.admitSync(job)))();
  }

  async byIdempotencyKey(accountId: string, key: string): Promise<JobRow | undefined> {
    const row = this.q.byIdempotencyKey.get(accountId, key) as RawRow | undefined;
    return row && rowToJob(row);
  }

  async get(id: string): Promise<JobRow | undefined> {
    const row = this.q.getJob.get(id) as RawRow | undefined;
    return row && rowToJob(row);
  }

  async ended(ids: readonly string[]): Promise<JobRow[]> {
    if (ids.length === 0) return [];
    return (this.q.endedJobs.all(JSON.stringify(ids)) as RawRow[]).map(rowToJob);
  }

  /** Claim queries by number of models: preparing a statement costs more than running it. */
  private readonly claimableByCount = new Map<number, Database.Statement>();

  async claimable(models: readonly string[], limit: number): Promise<JobRow[]> {
    if (models.length === 0 || limit <= 0) return [];
    let stmt = this.claimableByCount.get(models.length);
    if (stmt === undefined) {
      stmt = this.db.prepare(
        `SELECT * FROM jobs WHERE status = 'queued' AND model IN (${models.map(() => "?").join(", ")})
         ORDER BY created_at LIMIT ?`,
      );
      this.claimableByCount.set(models.length, stmt);
    }
    return (stmt.all(...models, limit) as RawRow[]).map(rowToJob);
  }

  async claim(claims: readonly ClaimRequest[], now: number): Promise<ClaimedAttempt[]> {
    const q = this.q;
    return this.db.transaction(() => {
      const claimed: ClaimedAttempt[] = [];
      for (const c of claims) {
        const row = q.claim.get({ ...c, route: JSON.stringify(c.route), now }) as RawRow | undefined;
        if (row === undefined) continue;
        q.insertAttempt.run(c.attemptId, c.jobId, c.nodeKey, now);
        claimed.push(rowToClaim(row));
      }
      return claimed;
    })();
  }

  async markRunning(jobId: string, attemptId: string, now: number): Promise<boolean> {
    return this.q.markRunning.run(now, jobId, attemptId).changes === 1;
  }

  async renewLeases(nodeKey: string, attemptIds: readonly string[], leaseExpiresAt: number, now: number) {
    const q = this.q;
    return this.db.transaction(() => {
      let n = 0;
      for (const a of attemptIds) n += q.renew.run(leaseExpiresAt, now, a, nodeKey).changes;
      return n;
    })();
  }

  /**
   * Three steps, so co-signing runs off the event loop without holding a transaction open on the
   * one connection everything shares: (1) read the log head and the attempts, and link the
   * accepted receipts at consecutive positions; (2) co-sign them (awaited); (3) in one
   * transaction, write them — unless the head moved or an attempt ended meanwhile (a cancel, an
   * expired lease), in which case nothing is written and the batch is read again.
   */
  async complete(inputs: readonly CompleteJobInput[], sealer: ReceiptSealer): Promise<CompleteJobResult[]> {
    const q = this.q;
    for (let round = 1; ; round++) {
      const head = this.log.headSync();
      const plan = planCompletions(
        inputs,
        (id) => {
          const row = q.getJob.get(id) as RawRow | undefined;
          return row && rowToJob(row);
        },
        head ?? { seq: 0, entryHash: genesisHash },
        sealer,
      );
      const { accepted } = plan;
      if (accepted.length === 0) return plan.results;

      const cosigned = await sealer.seal(accepted.map((a) => a.request));

      const write = this.db.transaction((): boolean => {
        const current = this.log.headSync();
        if (current?.seq !== head?.seq || current?.entryHash !== head?.entryHash) return false;
        accepted.forEach(({ request: { log, input }, charge, job }, i) => {
          const receiptJson = JSON.stringify(cosigned[i]);
          const done = q.complete.run(
            JSON.stringify(input.output),
            input.outputCid,
            receiptJson,
            input.now,
            input.now,
            input.jobId,
            input.attemptId,
          );
          if (done.changes !== 1) throw attemptMoved;
          if (charge !== undefined && job.money)
            this.book.chargeJobSync(job.id, job.money, charge, input.computeClass ?? "S", input.now);
          q.insertOutput.run(input.outputCid, input.outputBytes, input.outputBytes.length, input.now);
          this.log.appendSync({
            seq: log.seq,
            jobId: input.jobId,
            attemptId: input.attemptId,
            nodeKey: input.nodeKey,
            prevHash: log.prev_hash,
            entryHash: log.entry_hash,
            receipt: receiptJson,
            now: input.now,
          });
          q.endAttempt.run(input.now, "completed", null, input.attemptId);
        });
        return true;
      });
      let ok = false;
      try {
        ok = write.immediate();
      } catch (err) {
        if (err !== attemptMoved) throw err;
      }
      if (ok) return plan.complete(cosigned);
      if (round >= maxSealRounds) throw new Error("The execution log kept moving while a batch was co-signed.");
    }
  }

  /** Ends one attempt; runs inside the caller's transaction. */
  private endAttemptSync(
    jobId: string,
    attemptId: string,
    error: ErrorBody,
    retry: boolean,
    now: number,
  ): JobRow | undefined {
    const q = this.q;
    const errorJson = JSON.stringify(error);
    let row: RawRow | undefined;
    if (retry) row = q.requeue.get(errorJson, now, jobId, attemptId) as RawRow | undefined;
    if (row === undefined) {
      row = q.fail.get(errorJson, now, now, jobId, attemptId) as RawRow | undefined;
      if (row !== undefined) row = this.book.refundJobSync(row, now);
    }
    if (row !== undefined) q.endAttempt.run(now, row.status === "queued" ? "requeued" : "failed", errorJson, attemptId);
    return row && rowToJob(row);
  }

  async failAttempt(input: FailAttemptInput): Promise<JobRow | undefined> {
    return this.db.transaction(() =>
      this.endAttemptSync(input.jobId, input.attemptId, input.error, input.retry, input.now),
    )();
  }

  private releaseAll(rows: { id: string; attempt_id: string }[], error: ErrorBody, now: number): EndedAttempt[] {
    const out: EndedAttempt[] = [];
    for (const r of rows) {
      const job = this.endAttemptSync(r.id, r.attempt_id, error, true, now);
      if (job) out.push({ job, attemptId: r.attempt_id });
    }
    return out;
  }

  async releaseNode(nodeKey: string, error: ErrorBody, now: number): Promise<EndedAttempt[]> {
    return this.db.transaction(() =>
      this.releaseAll(this.q.nodeAttempts.all(nodeKey) as { id: string; attempt_id: string }[], error, now),
    )();
  }

  async expireLeases(error: ErrorBody, now: number): Promise<EndedAttempt[]> {
    return this.db.transaction(() =>
      this.releaseAll(this.q.expiredLeases.all(now) as { id: string; attempt_id: string }[], error, now),
    )();
  }

  async expireQueued(error: ErrorBody, now: number): Promise<JobRow[]> {
    return this.db.transaction(() =>
      (this.q.expireQueued.all(JSON.stringify(error), now, now, now) as RawRow[]).map((row) =>
        rowToJob(this.book.refundJobSync(row, now)),
      ),
    )();
  }

  async cancel(id: string, error: ErrorBody, now: number): Promise<JobRow | undefined> {
    return this.db.transaction(() => {
      const row = this.q.cancel.get(JSON.stringify(error), now, now, id) as RawRow | undefined;
      if (row?.attempt_id) this.q.endAttempt.run(now, "cancelled", JSON.stringify(error), row.attempt_id);
      return row && rowToJob(this.book.refundJobSync(row, now));
    })();
  }

  async countByStatus(): Promise<Record<JobStatus, number>> {
    return countsByStatus(this.q.countJobs.all() as { status: string; n: number }[]);
  }

  async queuedByModel(): Promise<Record<string, number>> {
    const rows = this.q.queuedByModel.all() as { model: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.model, r.n]));
  }

  async output(cid: string): Promise<Uint8Array | undefined> {
    const row = this.q.getOutput.get(cid) as { bytes: Buffer } | undefined;
    return row && new Uint8Array(row.bytes);
  }

  async outputReadableBy(cid: string, accountId: string | null): Promise<boolean> {
    return this.q.outputOwned.get(cid, accountId) !== undefined;
  }

  async setOutputPublic(jobId: string, outputPublic: boolean, now: number): Promise<JobRow | undefined> {
    const row = this.q.setOutputPublic.get(outputPublic ? 1 : 0, now, jobId) as RawRow | undefined;
    return row && rowToJob(row);
  }

  /** Redacts one ended job and drops its output's bytes if no kept job shares them. */
  private redactSync(jobId: string, now: number): JobRow | undefined {
    const row = this.q.deleteData.get(now, now, jobId) as RawRow | undefined;
    if (row === undefined) return undefined;
    const job = rowToJob(row);
    if (job.outputCid) this.q.deleteOutputIfUnused.run(job.outputCid, job.outputCid);
    return job;
  }

  async deleteData(jobId: string, now: number): Promise<JobRow | undefined> {
    return this.db.transaction(() => this.redactSync(jobId, now)).immediate();
  }

  async expireData(endedBefore: number, now: number, limit: number): Promise<number> {
    return this.db
      .transaction(() => {
        const ids = this.q.expiredData.all(endedBefore, limit) as { id: string }[];
        for (const { id } of ids) this.redactSync(id, now);
        return ids.length;
      })
      .immediate();
  }

  async clearIdempotencyKeys(createdBefore: number): Promise<number> {
    return this.q.clearIdempotency.run(createdBefore).changes;
  }
}
