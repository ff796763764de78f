import {
  hashCanonical,
  HavnError,
  newJobId,
  randomHex,
  type ErrorBody,
  type GenerationParams,
  type JobInput,
} from "@havn/protocol";
import {
  insufficientFunds,
  isTerminal,
  newJobRow,
  type AdmissionOutcome,
  type JobRow,
  type NewJob,
  type Store,
} from "@havn/store";
import type { CoordinatorConfig } from "../config.js";
import type { NodeRegistry } from "../nodes/node-registry.js";
import type { Pricing } from "../ledger/pricing.js";
import type { Wallets } from "../ledger/wallets.js";
import type { Batcher } from "../queue/batcher.js";
import type { Dispatcher } from "../queue/dispatcher.js";
import { normaliseModelName, type ModelCatalog } from "../router/model-catalog.js";
import type { JobTelemetry } from "../telemetry/job-telemetry.js";
import type { WorkflowService } from "../workflows/workflow-service.js";
import type { JobEvents } from "./job-events.js";

export interface SubmitJob {
  /** A model name or `"auto"`. */
  readonly model: string;
  readonly input: JobInput;
  readonly params: GenerationParams;
  readonly stream: boolean;
  /** A published workflow to run (id, `name` or `name@version`): its model, template and parameters apply. */
  readonly workflow?: string | null;
  /** The sampling parameters the client set; the others a workflow's parameters replace. */
  readonly given?: ReadonlySet<keyof GenerationParams>;
  /** The client's `x-request-id`, when it sent one. */
  readonly requestId?: string | null;
  /** The account submitting (null only for jobs no account owns, which production never makes). */
  readonly accountId: string | null;
  /** The client's `Idempotency-Key`: a second submission with it returns the first job. */
  readonly idempotencyKey?: string | null;
}

/** What `submit` returns: the job, and whether it is one an earlier submission with the same key made. */
export interface Submitted {
  readonly job: JobRow;
  readonly replayed: boolean;
}

/** Who asks, for the checks that a job is theirs (see `AuthService.mayActFor`). */
export interface JobActor {
  readonly mayActFor: (accountId: string | null) => boolean;
}

/** How long a payer's balance, as read, stands for the pre-check of its next jobs, in ms. */
const fundsHintMs = 1_000;

const cancelledError: ErrorBody = { code: "JOB_CANCELLED", message: "The job was cancelled.", retryable: false };

function promptChars(input: JobInput): number {
  return input.kind === "completion" ? input.prompt.length : input.messages.reduce((n, m) => n + m.content.length, 0);
}

/** Admission and lifecycle of jobs: validate, write the row (before any answer), wake the dispatcher. */
export class JobService {
  constructor(
    private readonly store: Store,
    private readonly admissions: Batcher<NewJob, AdmissionOutcome>,
    private readonly dispatcher: Dispatcher,
    private readonly events: JobEvents,
    private readonly catalog: ModelCatalog,
    private readonly registry: NodeRegistry,
    private readonly telemetry: JobTelemetry,
    private readonly config: CoordinatorConfig,
    /** Prices and payers; absent on a free network (`ledger.enabled: false`). */
    private readonly money?: { readonly pricing: Pricing; readonly wallets: Wallets },
    private readonly workflows?: WorkflowService,
  ) {}

  /** Payers' balances as last read, counted down by the escrows taken since (see `escrowFor`). */
  private readonly funds = new Map<string, { balance: bigint; at: number }>();

  /** A paid job's escrow: its payer's ledger account and its maximum cost. */
  private async escrowFor(accountId: string | null, model: string, input: JobInput, params: GenerationParams) {
    if (!this.money || accountId === null) return undefined;
    const escrow = this.money.pricing.escrow(await this.money.wallets.of(accountId), model, input, params);
    // Refused before a node is asked to start: the admission transaction checks again, exactly.
    // The balance is read at most once a second per payer and counted down by each escrow
    // between reads, so a busy payer costs no read per job.
    const now = Date.now();
    let hint = this.funds.get(escrow.payer);
    if (!hint || now - hint.at > fundsHintMs || hint.balance < escrow.amount) {
      hint = { balance: await this.store.ledger.balance(escrow.payer), at: now };
      if (this.funds.size > 100_000) this.funds.clear();
      this.funds.set(escrow.payer, hint);
    }
    if (hint.balance < escrow.amount)
      throw insufficientFunds({ reason: "insufficient_funds", balance: hint.balance, needed: escrow.amount });
    hint.balance -= escrow.amount;
    return escrow;
  }

  resolveModel(requested: string): string {
    return requested.trim().toLowerCase() === "auto"
      ? this.catalog.pickAuto((name) => this.registry.serves(name))
      : this.catalog.resolve(requested, "chat");
  }

  /**
   * The request a workflow makes of it (its model, template and parameters), with the workflow's
   * id. A replay (`replayOf`: the workflow its first submission ran) is rendered by that same
   * version, flagged or not, to compare it with the first.
   */
  private async withWorkflow(
    request: SubmitJob,
    replayOf?: string | null,
  ): Promise<SubmitJob & { readonly workflowId: string | null; readonly workflowVersion: string | null }> {
    if (!request.workflow) return { ...request, workflowId: null, workflowVersion: null };
    if (!this.workflows) throw new HavnError("WORKFLOW_NOT_FOUND", "This coordinator runs no workflows.");
    const applied = await this.workflows.apply(replayOf ?? request.workflow, request, request.given ?? new Set(), {
      maxPromptChars: this.config.maxPromptChars,
      evenIfFlagged: replayOf !== undefined && replayOf !== null,
    });
    return {
      ...request,
      model: applied.model,
      input: applied.input,
      params: applied.params,
      workflowId: applied.workflow.id,
      workflowVersion: applied.workflow.version,
    };
  }

  /**
   * Admits a job. With an idempotency key, a job the account already submitted with it (within
   * `idempotencyWindowMs`) is returned instead — the same request must come with it — and two
   * submissions racing with one key still make one job: the store admits only the first.
   */
  async submit(asked: SubmitJob): Promise<Submitted> {
    const key = asked.accountId !== null ? (asked.idempotencyKey ?? null) : null;
    // A replay is answered before the model is resolved: a retry after a restart, with no node
    // for the model online yet, still gets the job it already has.
    if (key !== null) {
      const earlier = await this.store.jobs.byIdempotencyKey(asked.accountId!, key);
      if (earlier)
        return { job: this.sameRequest(earlier, await this.withWorkflow(asked, earlier.workflowId)), replayed: true };
    }
    const request = await this.withWorkflow(asked);
    const model = this.resolveModel(request.model);
    const chars = promptChars(request.input);
    if (chars > this.config.maxPromptChars) {
      throw new HavnError("REQUEST_PROMPT_TOO_LONG", "The prompt is longer than this coordinator accepts.", {
        context: { Characters: chars, Limit: this.config.maxPromptChars },
      });
    }
    const money = await this.escrowFor(request.accountId, model, request.input, request.params);
    const now = Date.now();
    const job: NewJob = {
      id: newJobId(),
      model,
      workflowId: request.workflowId,
      input: request.input,
      params: request.params,
      inputHash: hashCanonical(request.input),
      inputSalt: randomHex(32),
      workflowVersion: request.workflowVersion,
      stream: request.stream,
      maxAttempts: this.config.maxAttempts,
      queueDeadlineAt: now + this.config.queueWaitMs,
      now,
      requestId: request.requestId ?? null,
      accountId: request.accountId,
      idempotencyKey: key,
      ...(money && { money }),
    };
    // Placed on a node now when nothing older waits for this model; else it joins the queue.
    const lease = this.dispatcher.place(job);
    // The row is written (with others from the same turn) before anyone is answered.
    let outcome: AdmissionOutcome;
    let row: JobRow;
    let node: string | null = null;
    if (lease === undefined) {
      outcome = await this.admissions.add(job);
      row = newJobRow(job);
    } else {
      const leased = { ...job, lease };
      const written = this.admissions.add(leased);
      row = newJobRow(leased);
      node = this.registry.get(lease.nodeKey)!.name;
      // Sent to its node now; what the node answers waits until the row is written (and a
      // duplicate, never written, is taken back from the node).
      await this.dispatcher.deliver(
        row,
        lease,
        written.then((o) => {
          if (o === "duplicate") throw new Error("duplicate idempotency key");
          if (typeof o === "object") throw insufficientFunds(o);
        }),
      );
      outcome = await written;
    }
    if (typeof outcome === "object") throw insufficientFunds(outcome);
    if (outcome === "duplicate") {
      // Another submission with this key was written first (same turn, or another replica).
      const earlier = await this.store.jobs.byIdempotencyKey(request.accountId!, key!);
      if (!earlier) throw new HavnError("INTERNAL_ERROR", "An idempotent job was neither written nor found.");
      return { job: this.sameRequest(earlier, request), replayed: true };
    }
    if (lease === undefined) this.dispatcher.notify();
    this.telemetry.admitted(row, node);
    return { job: row, replayed: false };
  }

  /** A job the actor may see: its own (or any, for an admin). Another account's is "not found", not "forbidden". */
  async get(id: string, actor?: JobActor): Promise<JobRow> {
    const job = await this.store.jobs.get(id);
    if (!job || (actor && !actor.mayActFor(job.accountId)))
      throw new HavnError("JOB_NOT_FOUND", "No job with this id.", { context: { Job: id } });
    return job;
  }

  /** Deletes an ended job's prompt and output now (a job still running is cancelled first). */
  async deleteData(id: string, actor: JobActor): Promise<JobRow> {
    const job = await this.get(id, actor);
    if (!isTerminal(job.status)) await this.cancel(id, actor).catch(() => undefined);
    return (await this.store.jobs.deleteData(id, Date.now())) ?? (await this.get(id, actor));
  }

  /** Makes a job's output readable by anyone who knows its CID, or not. */
  async setOutputPublic(id: string, outputPublic: boolean, actor: JobActor): Promise<JobRow> {
    await this.get(id, actor);
    return (await this.store.jobs.setOutputPublic(id, outputPublic, Date.now()))!;
  }

  /** Cancels a job that has not finished; cancelling a cancelled job again is a no-op. */
  async cancel(id: string, actor?: JobActor): Promise<JobRow> {
    const before = await this.get(id, actor);
    if (before.status === "cancelled") return before;
    const job = await this.store.jobs.cancel(id, cancelledError, Date.now());
    if (!job) {
      throw new HavnError("JOB_ILLEGAL_TRANSITION", `A ${before.status} job cannot be cancelled.`, {
        context: { Job: id },
      });
    }
    // The cancelled row, not the one read before: the job may have been leased in between.
    const node = job.nodeKey ? this.registry.get(job.nodeKey) : undefined;
    if (job.attemptId && node?.inFlight.delete(job.attemptId)) {
      node.send({ type: "cancel", job_id: id, attempt_id: job.attemptId, reason: "cancelled by the client" });
      this.dispatcher.capacityFreed(node);
    }
    this.events.emitTransition(job, job.attemptId, node?.name);
    return job;
  }

  /**
   * Resolves when a job this request just submitted ends, or with `undefined` after
   * `timeoutMs`. `submitted` is the row `submit` returned: fresh from its transaction, and
   * nothing the node says about it is acted on before its submitter can subscribe, so only
   * events can change it. A row that has ended already is returned as it is.
   */
  waitForEnd(submitted: JobRow, timeoutMs: number, readBack = false): Promise<JobRow | undefined> {
    if (isTerminal(submitted.status)) return Promise.resolve(submitted);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        resolve(undefined);
      }, timeoutMs);
      const unsubscribe = this.events.subscribe(submitted.id, (event) => {
        if (event.type === "completed" || event.type === "failed" || event.type === "cancelled") {
          clearTimeout(timer);
          unsubscribe();
          resolve(event.job);
        } else if (event.type === "shutdown") {
          clearTimeout(timer);
          unsubscribe();
          reject(shuttingDown(submitted.id));
        }
      });
      // A row read from the database (a replayed submission) may have ended between the read and
      // the subscription: read it once more, now that no end can be missed.
      if (readBack)
        void this.store.jobs.get(submitted.id).then((job) => {
          if (job && isTerminal(job.status)) {
            clearTimeout(timer);
            unsubscribe();
            resolve(job);
          }
        }, reject);
    });
  }
  /**
   * An earlier job found by its idempotency key, if it is the same request: same model (as
   * resolved; "auto" matches any), same input, same sampling settings (the seed aside: a request
   * without one gets a random one). Another request under the same key is refused.
   */
  private sameRequest(earlier: JobRow, request: SubmitJob): JobRow {
    const a = earlier.params;
    const b = request.params;
    const same =
      earlier.inputHash === hashCanonical(request.input) &&
      this.sameModel(earlier.model, request.model) &&
      a.max_tokens === b.max_tokens &&
      a.temperature === b.temperature &&
      a.top_p === b.top_p &&
      JSON.stringify(a.stop) === JSON.stringify(b.stop);
    if (!same)
      throw new HavnError(
        "REQUEST_IDEMPOTENCY_MISMATCH",
        "This Idempotency-Key was used for a different request; use a new key for a new request.",
        { context: { Job: earlier.id } },
      );
    return earlier;
  }

  private sameModel(resolved: string, requested: string): boolean {
    const asked = normaliseModelName(requested);
    if (asked === normaliseModelName(resolved) || asked === "auto") return true;
    try {
      return this.catalog.resolve(requested, "chat") === resolved;
    } catch {
      return false;
    }
  }
}

export function shuttingDown(jobId: string): HavnError {
  return new HavnError(
    "REQUEST_SHUTTING_DOWN",
    "The coordinator is shutting down; the job is kept and runs when it is back.",
    {
      context: { Job: jobId },
      details: { job_id: jobId, poll: `/v1/jobs/${jobId}` },
    },
  );
}

/** The error a client sees for a job that ended without output. */
export function errorOfEndedJob(job: JobRow): HavnError {
  const e = job.error;
  if (job.status === "cancelled")
    return new HavnError("JOB_CANCELLED", "The job was cancelled.", { context: { Job: job.id } });
  if (
    e &&
    (e.code === "JOB_NO_CAPACITY" || e.code === "REQUEST_PROMPT_TOO_LONG" || e.code === "BACKEND_MODEL_NOT_LOADED")
  ) {
    return new HavnError(e.code, e.message, { context: { Job: job.id } });
  }
  return new HavnError("JOB_FAILED", `The job failed after ${job.attempts} attempt(s).`, {
    context: { Job: job.id },
    details: { job_id: job.id, last_error: e },
  });
}
