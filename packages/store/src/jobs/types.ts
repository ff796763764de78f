import type {
  ComputeClass,
  CosignedReceipt,
  ErrorBody,
  GenerationParams,
  JobInput,
  JobOutput,
  LogPosition,
  Receipt,
} from "@havn/protocol";
import type { JobEscrow, JobMoney } from "../ledger/types.js";
import type { JobStatus } from "./states.js";

/** Why the router picked a node: kept with the job and shown by `GET /jobs/{id}`. */
export interface RouteDecision {
  readonly node_key: string;
  readonly score: number;
  readonly candidates: number;
  readonly reasons: Readonly<Record<string, number>>;
}

export interface JobRow {
  readonly id: string;
  readonly status: JobStatus;
  readonly model: string;
  readonly workflowId: string | null;
  readonly input: JobInput;
  readonly params: GenerationParams;
  readonly inputHash: string;
  /** The salt of the receipt's input commitment (64 hex); null only for jobs finished before receipts v2. */
  readonly inputSalt: string | null;
  /** The version of `workflowId`, when the job runs a workflow. */
  readonly workflowVersion: string | null;
  readonly stream: boolean;
  /** Attempts started so far; a lease that expires or a node that is lost counts as one. */
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly attemptId: string | null;
  readonly nodeKey: string | null;
  readonly leaseExpiresAt: number | null;
  /** A queued job still waiting for an eligible node at this time fails with JOB_NO_CAPACITY. */
  readonly queueDeadlineAt: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly finishedAt: number | null;
  readonly output: JobOutput | null;
  readonly outputCid: string | null;
  readonly receipt: CosignedReceipt | null;
  readonly error: ErrorBody | null;
  readonly route: RouteDecision | null;
  /** The client's `x-request-id`, when it sent one: logged with the job wherever it goes. */
  readonly requestId: string | null;
  /** Nodes an attempt of this job failed on, oldest first: a retry prefers any other node. */
  readonly failedNodes: readonly string[];
  /** The account that submitted the job: it alone (and admins) may see or cancel it. */
  readonly accountId: string | null;
  /** The submission's `Idempotency-Key`, while it is kept. */
  readonly idempotencyKey: string | null;
  /** Whether the owner made the output readable by anyone who knows its CID. */
  readonly outputPublic: boolean;
  /** When the prompt and output were deleted (hashes and the receipt stay); null while kept. */
  readonly dataDeletedAt: number | null;
  /** Its money (escrow, charge, where it stands); null on a free network. */
  readonly money: JobMoney | null;
}

export interface NewJob {
  readonly id: string;
  readonly model: string;
  readonly workflowId: string | null;
  readonly input: JobInput;
  readonly params: GenerationParams;
  readonly inputHash: string;
  /** Random, 64 hex: the salt of the receipt's input commitment. */
  readonly inputSalt: string;
  readonly workflowVersion: string | null;
  readonly stream: boolean;
  readonly maxAttempts: number;
  readonly queueDeadlineAt: number;
  readonly now: number;
  /** The client's `x-request-id`, if any. */
  readonly requestId?: string | null;
  readonly accountId?: string | null;
  /** One job per (account, key): a second admission with the same key is not inserted. */
  readonly idempotencyKey?: string | null;
  /**
   * Its maximum cost, escrowed from its payer in the admission transaction; a payer who cannot
   * cover it gets `insufficient_funds` and the job is not written. Absent on a free network.
   */
  readonly money?: JobEscrow;
  /**
   * Set when the router placed the job on a node with a free slot at admission: the row is
   * written leased with its first attempt — queued → leased in the same transaction — and the
   * job never waits in the queue.
   */
  readonly lease?: AdmissionLease;
}

/** The lease a job takes at admission (see `NewJob.lease`). */
export type AdmissionLease = Omit<ClaimRequest, "jobId">;

/** One job the router assigned to one node; the claim succeeds only if the job is still queued. */
export interface ClaimRequest {
  readonly jobId: string;
  readonly attemptId: string;
  readonly nodeKey: string;
  readonly leaseExpiresAt: number;
  readonly route: RouteDecision;
}

/** A claim that won: the job is leased to the node under this attempt. */
export interface ClaimedAttempt {
  readonly jobId: string;
  readonly attemptId: string;
  readonly nodeKey: string;
  readonly leaseExpiresAt: number;
  /** Attempts started so far, this one included. */
  readonly attempts: number;
}

export interface CompleteJobInput {
  readonly jobId: string;
  readonly attemptId: string;
  readonly nodeKey: string;
  readonly output: JobOutput;
  readonly outputCid: string;
  readonly outputBytes: Uint8Array;
  readonly receipt: Receipt;
  readonly nodeSignature: string;
  /** The node's compute class: its fee multiplier applies to the job's charge. Default S. */
  readonly computeClass?: ComputeClass;
  readonly now: number;
}

/** A receipt at the log position it takes. */
export interface SealRequest {
  readonly log: LogPosition;
  readonly input: CompleteJobInput;
}

/** How the coordinator links receipts into its log and co-signs them; see `JobStore.complete`. */
export interface ReceiptSealer {
  /** The entry hash of this receipt following the entry `prevHash` (quick and synchronous). */
  link(prevHash: string, input: CompleteJobInput): string;
  /** Co-signs receipts at their positions, in order; may run off the event loop. */
  seal(requests: readonly SealRequest[]): Promise<readonly CosignedReceipt[]>;
}

export type CompleteJobResult =
  | { readonly ok: true; readonly job: JobRow }
  | { readonly ok: false; readonly reason: "not_found" | "lease_conflict"; readonly job: JobRow | null };

export interface FailAttemptInput {
  readonly jobId: string;
  readonly attemptId: string;
  readonly error: ErrorBody;
  /** Whether another attempt may help (the error is retryable and attempts remain). */
  readonly retry: boolean;
  readonly now: number;
}

/** An attempt the store ended, with the job as it is now. */
export interface EndedAttempt {
  readonly job: JobRow;
  readonly attemptId: string;
}

/** What became of each job of an admission batch. */
export type AdmissionOutcome = "inserted" | "duplicate" | InsufficientFunds;

/** A job whose payer could not cover its escrow: not written. */
export interface InsufficientFunds {
  readonly reason: "insufficient_funds";
  readonly balance: bigint;
  readonly needed: bigint;
}

/**
 * Jobs, their attempts and their outputs. Every status change goes through these methods; each is
 * one atomic transaction, which also makes the money and log writes the change stands for
 * (an escrow at admission, a charge and a log entry at completion, a refund at failure).
 */
export interface JobStore {
  /** Admits one job (see `admit`); throws LEDGER_INSUFFICIENT_FUNDS when its payer cannot cover it. */
  insert(job: NewJob): Promise<JobRow>;
  /**
   * Inserts many jobs in one transaction (one round trip on PostgreSQL): admission batches. Jobs
   * with a `lease` are written leased, each with its first attempt. A job whose (account,
   * idempotency key) is taken is not inserted (`duplicate`), nor one its payer cannot cover
   * (`insufficient_funds`); neither rolls back its neighbours.
   */
  admit(jobs: readonly NewJob[]): Promise<readonly AdmissionOutcome[]>;
  /** The job an account submitted with this idempotency key, while the key is kept. */
  byIdempotencyKey(accountId: string, key: string): Promise<JobRow | undefined>;
  get(id: string): Promise<JobRow | undefined>;
  /** Those of these jobs that have ended (completed, failed or cancelled), in one query. */
  ended(ids: readonly string[]): Promise<JobRow[]>;
  /** Queued jobs for these models, oldest first. */
  claimable(models: readonly string[], limit: number): Promise<JobRow[]>;
  /** Atomically moves each still-queued job to `leased`; returns the claims that won. */
  claim(claims: readonly ClaimRequest[], now: number): Promise<ClaimedAttempt[]>;
  /** leased → running for the current attempt; false when the attempt is stale. */
  markRunning(jobId: string, attemptId: string, now: number): Promise<boolean>;
  /** Extends the leases of these attempts held by this node; returns how many were extended. */
  renewLeases(nodeKey: string, attemptIds: readonly string[], leaseExpiresAt: number, now: number): Promise<number>;
  /**
   * Completes a batch of attempts in one transaction: stores each output by CID, appends each
   * receipt to the execution log at consecutive positions (linked by `sealer.link`, co-signed by
   * `sealer.seal`), charges each paid job and marks the job completed. One transaction per batch
   * keeps the single log chain from serialising every job. Attempts that are stale or finished
   * are refused, not written; nothing is written with a position or signature that does not hold.
   */
  complete(inputs: readonly CompleteJobInput[], sealer: ReceiptSealer): Promise<CompleteJobResult[]>;
  /** Ends the current attempt: back to queued when `retry` and attempts remain, else failed (refunded). */
  failAttempt(input: FailAttemptInput): Promise<JobRow | undefined>;
  /** Attempts of a lost node go back to the queue (or fail when out of attempts). */
  releaseNode(nodeKey: string, error: ErrorBody, now: number): Promise<EndedAttempt[]>;
  /** Leases past their expiry go back to the queue (or fail when out of attempts). */
  expireLeases(error: ErrorBody, now: number): Promise<EndedAttempt[]>;
  /** Queued jobs past their queue deadline fail. */
  expireQueued(error: ErrorBody, now: number): Promise<JobRow[]>;
  cancel(id: string, error: ErrorBody, now: number): Promise<JobRow | undefined>;
  /** Jobs by status, for the operator and `/health`. */
  countByStatus(): Promise<Record<JobStatus, number>>;
  /** Queued jobs per model (models with none are absent): queue depth for `/health` and `/metrics`. */
  queuedByModel(): Promise<Record<string, number>>;

  output(cid: string): Promise<Uint8Array | undefined>;
  /**
   * Whether a job whose output is `cid` (and still kept) belongs to `accountId`, or was made
   * public by its owner; `accountId` null asks for public ones only.
   */
  outputReadableBy(cid: string, accountId: string | null): Promise<boolean>;
  /** Makes a job's output readable, or not, by anyone who knows its CID. */
  setOutputPublic(jobId: string, outputPublic: boolean, now: number): Promise<JobRow | undefined>;
  /**
   * Deletes an ended job's prompt and output (its output's bytes too, when no kept job shares
   * them), leaving hashes, the receipt and the log entry. Undefined when there is no ended job.
   */
  deleteData(jobId: string, now: number): Promise<JobRow | undefined>;
  /** Retention: deletes the data of up to `limit` jobs that ended before `endedBefore`; returns how many. */
  expireData(endedBefore: number, now: number, limit: number): Promise<number>;
  /** Forgets idempotency keys of jobs created before `createdBefore`: they may be used again. */
  clearIdempotencyKeys(createdBefore: number): Promise<number>;
}
