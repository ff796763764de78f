import type { Capabilities, ComputeClass, Hardware } from "@havn/protocol";
import {
  admittedLeasedStatus,
  jobStatuses,
  statusesLeadingTo,
  terminalStatuses,
  type JobStatus,
} from "./job-states.js";
import type {
  ClaimedAttempt,
  CompleteJobInput,
  CompleteJobResult,
  JobRow,
  NewJob,
  NodeRow,
  ReceiptSealer,
  SealRequest,
} from "./types.js";
import type { CosignedReceipt } from "@havn/protocol";
import { chargeFor, rowToMoney } from "./ledger/rows.js";
import type { SettleCandidate } from "./ledger/types.js";

/** A raw row as either driver returns it: JSON columns are text (SQLite) or parsed (PostgreSQL). */
export type RawRow = Record<string, unknown>;

function json<T>(value: unknown): T {
  return (typeof value === "string" ? JSON.parse(value) : value) as T;
}

function jsonOrNull<T>(value: unknown): T | null {
  return value === null || value === undefined ? null : json<T>(value);
}

function num(value: unknown): number {
  return typeof value === "number" ? value : Number(value);
}

function numOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : num(value);
}

export function rowToJob(r: RawRow): JobRow {
  return {
    id: r.id as string,
    status: r.status as JobStatus,
    model: r.model as string,
    workflowId: (r.workflow_id as string | null) ?? null,
    input: json(r.input),
    params: json(r.params),
    inputHash: r.input_hash as string,
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

export function rowToNode(r: RawRow): NodeRow {
  return {
    key: r.key as string,
    name: r.name as string,
    accountId: (r.account_id as string | null) ?? null,
    capabilities: json<Capabilities>(r.capabilities),
    hardware: json<Hardware>(r.hardware),
    computeClass: r.compute_class as ComputeClass,
    online: Boolean(r.online),
    firstSeenAt: num(r.first_seen_at),
    lastSeenAt: num(r.last_seen_at),
  };
}

/** `'a', 'b'` for an IN list built from the state machine (constant strings, never user input). */
export function sqlList(values: readonly string[]): string {
  return values.map((v) => `'${v.replace(/'/g, "''")}'`).join(", ");
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

/** A job as `completeJobs` leaves it, built from the row it checked instead of read back. */
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
 * The first step of every store's `completeJobs`: refuses attempts whose job is gone or whose
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

/**
 * Who may join as a node key under a name, the same for both stores. A key is bound to the first
 * account it joins with, and a name belongs to its key's account: another account is refused
 * (`key_owned`, `name_taken`); the same account may move its name to a new key (`moveFrom`: the
 * old key, which gives the name up). Names of keys no account holds stay first come, first served.
 */
export function nodeClaim(
  keyRow: { readonly account_id: string | null } | undefined,
  nameRow: { readonly key: string; readonly account_id: string | null } | undefined,
  input: { readonly key: string; readonly accountId?: string | null | undefined },
):
  | { readonly ok: true; readonly accountId: string | null; readonly moveFrom?: string }
  | { readonly ok: false; readonly reason: "name_taken" | "key_owned" } {
  const joining = input.accountId ?? null;
  if (keyRow?.account_id && joining && keyRow.account_id !== joining) return { ok: false, reason: "key_owned" };
  const accountId = keyRow?.account_id ?? joining;
  if (nameRow === undefined || nameRow.key === input.key) return { ok: true, accountId };
  if (nameRow.account_id !== null && nameRow.account_id === accountId)
    return { ok: true, accountId, moveFrom: nameRow.key };
  return { ok: false, reason: "name_taken" };
}

/**
 * The name a key keeps when its account moves the name to another key: unique (the whole key,
 * and no node may choose a name with `~`), and says why.
 */
export function retiredName(name: string, key: string): string {
  return `${name}~${key}`;
}

/** Completed jobs waiting for settlement, with who ran them (the same SQL on both stores). */
export const settleableSql = (placeholder: (n: number) => string) =>
  `SELECT j.*, n.account_id AS node_account_id, a.wallet AS node_wallet,
     t.started_at AS attempt_started_at, t.ended_at AS attempt_ended_at
   FROM jobs j
   LEFT JOIN nodes n ON n.key = j.node_key
   LEFT JOIN accounts a ON a.id = n.account_id
   LEFT JOIN job_attempts t ON t.attempt_id = j.attempt_id
   WHERE j.money_state = 'charged' AND j.finished_at < ${placeholder(1)}
   ORDER BY j.finished_at LIMIT ${placeholder(2)}`;

export function rowToSettleCandidate(r: RawRow): SettleCandidate {
  const started = numOrNull(r.attempt_started_at);
  const ended = numOrNull(r.attempt_ended_at);
  return {
    job: rowToJob(r),
    node: {
      key: r.node_key as string,
      accountId: (r.node_account_id as string | null) ?? null,
      wallet: (r.node_wallet as string | null) ?? null,
    },
    observedMs: started !== null && ended !== null ? Math.max(0, ended - started) : null,
  };
}
