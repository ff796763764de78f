import type { CosignedReceipt } from "@havn/protocol";
import { json, jsonOrNull, num, numOrNull, sqlList, type RawRow } from "../columns.js";
import { chargeFor, rowToMoney } from "../ledger/rows.js";
import { admittedLeasedStatus, jobStatuses, statusesLeadingTo, terminalStatuses, type JobStatus } from "./states.js";
import type {
  ClaimedAttempt,
  CompleteJobInput,
  CompleteJobResult,
  JobRow,
  NewJob,
  ReceiptSealer,
  SealRequest,
} from "./types.js";

export function rowToJob(r: RawRow): JobRow {
  return {
    id: r.id as string,
    status: r.status as JobStatus,
    model: r.model as string,
    workflowId: (r.workflow_id as string | null) ?? null,
    input: json(r.input),
    params: json(r.params),
    inputHash: r.input_hash as string,
    inputSalt: (r.input_salt as string | null) ?? null,
    workflowVersion: (r.workflow_version as string | null) ?? null,
    stream: Boolean(r.stream),
    attempts: num(r.attempts),
    maxAttempts: num(r.max_attempts),
    attemptId: (r.attempt_id as string | null) ?? null,
    nodeKey: (r.node_key as string | null) ?? null,
    leaseExpiresAt: numOrNull(r.lease_expires_at),
    queueDeadlineAt: num(r.queue_deadline_at),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    finishedAt: numOrNull(r.finished_at),
    output: jsonOrNull(r.output),
    outputCid: (r.output_cid as string | null) ?? null,
    receipt: jsonOrNull(r.receipt),
    error: jsonOrNull(r.error),
    route: jsonOrNull(r.route),
    requestId: (r.request_id as string | null) ?? null,
    failedNodes: r.failed_nodes === undefined || r.failed_nodes === null ? [] : json<string[]>(r.failed_nodes),
    accountId: (r.account_id as string | null) ?? null,
    idempotencyKey: (r.idempotency_key as string | null) ?? null,
    outputPublic: Boolean(r.output_public),
    dataDeletedAt: numOrNull(r.data_deleted_at),
    money: rowToMoney(r),
  };
}

/** The state machine's guards as SQL `IN` lists, the same for both stores. */
export const statusGuards = {
  ended: sqlList(terminalStatuses),
  toLeased: sqlList(statusesLeadingTo("leased")),
  toRunning: sqlList(statusesLeadingTo("running")),
  toCompleted: sqlList(statusesLeadingTo("completed")),
  toFailed: sqlList(statusesLeadingTo("failed")),
  toQueued: sqlList(statusesLeadingTo("queued")),
  toCancelled: sqlList(statusesLeadingTo("cancelled")),
} as const;

/** A new job's status: leased when it was placed on a node at admission, else queued. */
export function admissionStatus(job: NewJob): JobStatus {
  return job.lease ? admittedLeasedStatus : "queued";
}

/** Jobs per status, zero for statuses no row has. */
export function countsByStatus(rows: Iterable<{ status: string; n: number }>): Record<JobStatus, number> {
  const counts = Object.fromEntries(jobStatuses.map((s) => [s, 0])) as Record<JobStatus, number>;
  for (const r of rows) counts[r.status as JobStatus] = r.n;
  return counts;
}

/** The row `insertJob` writes, built without reading it back. */
export function newJobRow(job: NewJob): JobRow {
  const lease = job.lease;
  return {
    id: job.id,
    status: admissionStatus(job),
    model: job.model,
    workflowId: job.workflowId,
    input: job.input,
    params: job.params,
    inputHash: job.inputHash,
    inputSalt: job.inputSalt,
    workflowVersion: job.workflowVersion,
    stream: job.stream,
    attempts: lease ? 1 : 0,
    maxAttempts: job.maxAttempts,
    attemptId: lease?.attemptId ?? null,
    nodeKey: lease?.nodeKey ?? null,
    leaseExpiresAt: lease?.leaseExpiresAt ?? null,
    queueDeadlineAt: job.queueDeadlineAt,
    createdAt: job.now,
    updatedAt: job.now,
    finishedAt: null,
    output: null,
    outputCid: null,
    receipt: null,
    error: null,
    route: lease?.route ?? null,
    requestId: job.requestId ?? null,
    failedNodes: [],
    accountId: job.accountId ?? null,
    idempotencyKey: job.idempotencyKey ?? null,
    outputPublic: false,
    dataDeletedAt: null,
    money: job.money
      ? { state: "escrowed", payer: job.money.payer, escrow: job.money.amount, charge: null, price: job.money.price }
      : null,
  };
}

/** What a job's prompt becomes when its data is deleted: hashes and the receipt say what it was. */
export const redactedInput = JSON.stringify({ kind: "completion", prompt: "" });

export function rowToClaim(r: RawRow): ClaimedAttempt {
  return {
    jobId: r.id as string,
    attemptId: r.attempt_id as string,
    nodeKey: r.node_key as string,
    leaseExpiresAt: num(r.lease_expires_at),
    attempts: num(r.attempts),
  };
}

/** A job as `JobStore.complete` leaves it, built from the row it checked instead of read back. */
export function completedJobRow(
  before: JobRow,
  input: CompleteJobInput,
  receipt: CosignedReceipt,
  charge?: bigint,
): JobRow {
  return {
    ...before,
    status: "completed",
    output: input.output,
    outputCid: input.outputCid,
    receipt,
    finishedAt: input.now,
    updatedAt: input.now,
    leaseExpiresAt: null,
    money: before.money && charge !== undefined ? { ...before.money, state: "charged", charge } : before.money,
  };
}

const toCompleted = statusesLeadingTo("completed");

/** An attempt of a completion batch that may complete, at the log position it takes. */
export interface PlannedCompletion {
  /** Its place in the batch. */
  readonly index: number;
  /** The job as read before completing. */
  readonly job: JobRow;
  readonly request: SealRequest;
  /** What it costs (its money is escrowed): written with it, the rest of its escrow released. */
  readonly charge?: bigint;
}

/**
 * The first step of every store's `JobStore.complete`: refuses attempts whose job is gone or whose
 * lease moved on, and links the rest into the log at consecutive positions after `head`.
 * `results` holds the refusals; `complete` fills in the rest once they are co-signed and written.
 */
export function planCompletions(
  inputs: readonly CompleteJobInput[],
  current: (jobId: string) => JobRow | undefined,
  head: { readonly seq: number; readonly entryHash: string },
  sealer: ReceiptSealer,
) {
  const results: CompleteJobResult[] = [];
  const accepted: PlannedCompletion[] = [];
  let seq = head.seq;
  let prevHash = head.entryHash;
  for (const [index, input] of inputs.entries()) {
    const job = current(input.jobId);
    if (job === undefined) {
      results[index] = { ok: false, reason: "not_found", job: null };
    } else if (
      job.attemptId !== input.attemptId ||
      job.nodeKey !== input.nodeKey ||
      !toCompleted.includes(job.status)
    ) {
      results[index] = { ok: false, reason: "lease_conflict", job };
    } else {
      const entryHash = sealer.link(prevHash, input);
      const money = job.money?.state === "escrowed" ? job.money : undefined;
      accepted.push({
        index,
        job,
        request: { log: { seq: ++seq, prev_hash: prevHash, entry_hash: entryHash }, input },
        ...(money && {
          charge: chargeFor(money.price, input.output.usage, input.computeClass ?? "S", money.escrow),
        }),
      });
      prevHash = entryHash;
    }
  }
  return {
    results,
    accepted,
    /** The batch's results once `accepted` is written with these co-signed receipts. */
    complete(cosigned: readonly CosignedReceipt[]): CompleteJobResult[] {
      accepted.forEach(({ index, job, request, charge }, i) => {
        results[index] = { ok: true, job: completedJobRow(job, request.input, cosigned[i]!, charge) };
      });
      return results;
    },
  };
}
