import {
  hashCanonical,
  HavnError,
  newJobId,
  type ErrorBody,
  type GenerationParams,
  type JobInput,
} from "@havn/protocol";
import { isTerminal, newJobRow, type AdmissionOutcome, type JobRow, type NewJob, type Store } from "@havn/store";
import type { CoordinatorConfig } from "../config.js";
import type { NodeRegistry } from "../gateway/node-registry.js";
import type { Batcher } from "../queue/batcher.js";
import type { Dispatcher } from "../queue/dispatcher.js";
import type { ModelCatalog } from "../router/model-catalog.js";
import type { JobTelemetry } from "../telemetry/job-telemetry.js";
import type { JobEvents } from "./job-events.js";

export interface SubmitJob {
  /** A model name or `"auto"`. */
  readonly model: string;
  readonly input: JobInput;
  readonly params: GenerationParams;
  readonly stream: boolean;
  readonly workflowId?: string | null;
  /** The client's `x-request-id`, when it sent one. */
  readonly requestId?: string | null;
}

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
  ) {}

  resolveModel(requested: string): string {
    return requested.trim().toLowerCase() === "auto"
      ? this.catalog.pickAuto((name) => this.registry.serves(name))
      : this.catalog.resolve(requested, "chat");
  }

  async submit(request: SubmitJob): Promise<JobRow> {
    const model = this.resolveModel(request.model);
    const chars = promptChars(request.input);
    if (chars > this.config.maxPromptChars) {
      throw new HavnError("REQUEST_PROMPT_TOO_LONG", "The prompt is longer than this coordinator accepts.", {
        context: { Characters: chars, Limit: this.config.maxPromptChars },
      });
    }
    const now = Date.now();
    const job: NewJob = {
      id: newJobId(),
      model,
      workflowId: request.workflowId ?? null,
      input: request.input,
      params: request.params,
      inputHash: hashCanonical(request.input),
      stream: request.stream,
      maxAttempts: this.config.maxAttempts,
      queueDeadlineAt: now + this.config.queueWaitMs,
      now,
      requestId: request.requestId ?? null,
    };
    // Placed on a node now when nothing older waits for this model; else it joins the queue.
    const lease = this.dispatcher.place(job);
    // The row is written (with others from the same turn) before anyone is answered.
    if (lease === undefined) {
      await this.admissions.add(job);
      this.dispatcher.notify();
      const row = newJobRow(job);
      this.telemetry.admitted(row, null);
      return row;
    }
    const leased = { ...job, lease };
    const written = this.admissions.add(leased);
    const row = newJobRow(leased);
    const node = this.registry.get(lease.nodeKey)!.name;
    // Sent to its node now; what the node answers waits until the row is written.
    await this.dispatcher.deliver(row, lease, written);
    await written;
    this.telemetry.admitted(row, node);
    return row;
  }

  async get(id: string): Promise<JobRow> {
    const job = await this.store.getJob(id);
    if (!job) throw new HavnError("JOB_NOT_FOUND", "No job with this id.", { context: { Job: id } });
    return job;
  }

  /** Cancels a job that has not finished; cancelling a cancelled job again is a no-op. */
  async cancel(id: string): Promise<JobRow> {
    const before = await this.get(id);
    if (before.status === "cancelled") return before;
    const job = await this.store.cancelJob(id, cancelledError, Date.now());
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
  waitForEnd(submitted: JobRow, timeoutMs: number): Promise<JobRow | undefined> {
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
    });
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
