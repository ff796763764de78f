import { newAttemptId, type JobSpec } from "@havn/protocol";
import {
  type AdmissionLease,
  type ClaimedAttempt,
  type ClaimRequest,
  type FailAttemptInput,
  type JobRow,
  type NewJob,
  type Store,
} from "@havn/store";
import type { FastifyBaseLogger } from "fastify";
import type { InFlightAttempt, NodeRegistry, NodeSession } from "../nodes/node-registry.js";
import type { JobEvents } from "../jobs/job-events.js";
import { probationDraw, type Router } from "../router/router.js";
import type { JobTelemetry } from "../telemetry/job-telemetry.js";
import { attemptErrors } from "./attempt-errors.js";

/** How much further down the queue a pass reads when the oldest jobs it read all wait. */
const lookFurther = 8;

export interface DispatcherOptions {
  readonly leaseMs: number;
  readonly batchSize: number;
}

const noSalt = "0".repeat(64);

export function jobSpecOf(job: JobRow, attemptId: string): JobSpec {
  return {
    job_id: job.id,
    attempt_id: attemptId,
    workflow_id: job.workflowId,
    workflow_version: job.workflowId === null ? null : (job.workflowVersion ?? "unknown"),
    model: job.model,
    input: job.input,
    params: job.params,
    stream: job.stream,
    input_hash: job.inputHash,
    // Every job admitted or still to run since receipts v2 has a salt (the migration gave one to
    // those waiting); a job without one never reaches a node.
    input_salt: job.inputSalt ?? noSalt,
    ...(job.requestId === null ? {} : { request_id: job.requestId }),
  };
}

/**
 * Matches jobs to connected nodes, two ways:
 *
 * - **At admission** (`place` / `deliver`): while the queue holds nothing for a model — known
 *   because the last pass drained it and nothing was queued since — a new job is routed at once,
 *   sent to its node, and written leased by its admission transaction meanwhile. No queue read,
 *   no claim.
 * - **From the queue** (passes): a pass reads the oldest queued jobs for models that have a free
 *   slot, routes each to the best eligible node, claims the batch in one atomic statement (a job
 *   another replica claimed first is simply skipped) and sends each claimed job down its node's
 *   WebSocket. Passes never overlap; a wake-up during a pass runs one more.
 *
 * Slots promised to a claim still being written are reserved, so a placement never takes one; a
 * placed job is delivered in the turn it was placed, so it holds its slot at once.
 */
export class Dispatcher {
  private running = false;
  private again = false;
  private scheduled = false;
  /** node key → slots promised to writes in flight */
  private readonly reserved = new Map<string, number>();
  /** Models whose queued jobs the last pass took in full, with nothing queued since. */
  private readonly drained = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly registry: NodeRegistry,
    private readonly router: Router,
    private readonly events: JobEvents,
    private readonly telemetry: JobTelemetry,
    private readonly log: FastifyBaseLogger,
    private readonly options: DispatcherOptions,
  ) {}

  /** The queue may have changed (work queued or re-queued, nodes came or went): run a pass soon. */
  notify(): void {
    this.drained.clear();
    this.schedule();
  }

  /**
   * Ends an attempt — re-queued when `retry` and attempts remain, else failed — tells whoever
   * waits on the job, and wakes the dispatcher for the slot (and the job) it leaves. Every way an
   * attempt can fail (node error, rejected result, lost node, timeout) goes through here.
   * `node` names the node it ran on. Returns the job as it now stands (undefined when the
   * attempt was stale).
   */
  async endAttempt(input: FailAttemptInput, node?: string): Promise<JobRow | undefined> {
    const job = await this.store.jobs.failAttempt(input);
    if (job) this.events.emitTransition(job, input.attemptId, node);
    this.notify();
    return job;
  }

  /** A slot on this node came free: a pass is needed only if one of its models may have queued work. */
  capacityFreed(node: NodeSession): void {
    for (const model of node.models) {
      if (!this.drained.has(model)) return this.schedule();
    }
  }

  /**
   * Routes a job being admitted straight to a node when nothing for its model waits in the
   * queue (a new job must not overtake older ones) and a node has a free slot. The caller
   * hands the job to `deliver` in the same turn, which takes the slot.
   */
  place(job: NewJob): AdmissionLease | undefined {
    if (this.running || this.scheduled || !this.drained.has(job.model)) return undefined;
    const pick = this.router.choose(
      this.router.eligible(
        this.registry.serving(job.model),
        job.model,
        job.input.kind,
        this.reserved,
        [],
        probationDraw(job.id),
      ),
      this.reserved,
    );
    if (pick === undefined) return undefined;
    return {
      attemptId: newAttemptId(),
      nodeKey: pick.node.key,
      leaseExpiresAt: job.now + this.options.leaseMs,
      route: pick.decision,
    };
  }

  /**
   * Sends a job placed at admission to its node at once, while its admission row is still being
   * written (`written` settles when that write does): the node starts work one database write
   * sooner. Nothing the node says about the attempt is acted on before the row is written (see
   * `InFlightAttempt.admission`). If the write fails, the node is told to drop the job.
   */
  async deliver(job: JobRow, lease: AdmissionLease, written: Promise<unknown>): Promise<void> {
    const stored = written.then(
      () => true,
      () => false,
    );
    // Placed in this same turn of the event loop: the node is still connected.
    const node = this.registry.get(lease.nodeKey)!;
    const attempt = this.send(node, job, lease.attemptId, lease.leaseExpiresAt);
    // Messages about the attempt wait for the row, and then for one more turn of the event loop:
    // whoever submitted the job subscribes to its events as soon as the row is written.
    attempt.admission = stored.then(
      (ok) =>
        new Promise<boolean>((resolve) =>
          setImmediate(() => {
            attempt.admission = undefined;
            resolve(ok);
          }),
        ),
    );
    if (!(await stored) && node.inFlight.get(lease.attemptId) === attempt) {
      node.inFlight.delete(lease.attemptId);
      node.send({ type: "cancel", job_id: job.id, attempt_id: lease.attemptId, reason: "the job was not admitted" });
      this.capacityFreed(node);
    }
  }

  private reserve(nodeKey: string, n: number) {
    const left = (this.reserved.get(nodeKey) ?? 0) + n;
    if (left > 0) this.reserved.set(nodeKey, left);
    else this.reserved.delete(nodeKey);
  }

  private schedule() {
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      let more = true;
      while (more) {
        this.again = false;
        more = (await this.pass()) || this.again;
      }
    } catch (err) {
      // A failed pass (database hiccup) is retried by the next wake-up or sweep; never fatal.
      this.log.error({ err }, "dispatch pass failed");
    } finally {
      this.running = false;
    }
  }

  /** Routes jobs to nodes with free slots, reserving each slot it promises; `unrouted` are models left waiting. */
  private route(jobs: readonly JobRow[], now: number): { claims: ClaimRequest[]; unrouted: Set<string> } {
    const claims: ClaimRequest[] = [];
    const unrouted = new Set<string>();
    for (const job of jobs) {
      const pick = this.router.choose(
        this.router.eligible(
          this.registry.serving(job.model),
          job.model,
          job.input.kind,
          this.reserved,
          job.failedNodes,
          probationDraw(job.id),
        ),
        this.reserved,
      );
      if (pick === undefined) {
        unrouted.add(job.model);
        continue;
      }
      this.reserve(pick.node.key, 1);
      claims.push({
        jobId: job.id,
        attemptId: newAttemptId(),
        nodeKey: pick.node.key,
        leaseExpiresAt: now + this.options.leaseMs,
        route: pick.decision,
      });
    }
    return { claims, unrouted };
  }

  /** One pass; returns true when the queue may hold more work for free slots. */
  private async pass(): Promise<boolean> {
    const free = this.registry.freeSlots();
    const models = this.registry.modelsWithFreeSlots();
    if (free === 0 || models.length === 0) return false;
    const now = Date.now();
    let limit = Math.min(free, this.options.batchSize);
    let jobs = await this.store.jobs.claimable(models, limit);
    let { claims, unrouted } = this.route(jobs, now);
    // The oldest jobs may all wait for one busy node (the only one that has not failed them),
    // leaving free slots idle while younger jobs could take them: look once further down the queue.
    if (claims.length < free && jobs.length === limit && limit < this.options.batchSize) {
      for (const c of claims) this.reserve(c.nodeKey, -1);
      limit = Math.min(this.options.batchSize, limit * lookFurther);
      jobs = await this.store.jobs.claimable(models, limit);
      ({ claims, unrouted } = this.route(jobs, now));
    }

    let claimed: ClaimedAttempt[] = [];
    try {
      if (claims.length > 0) claimed = await this.store.jobs.claim(claims, now);
    } finally {
      for (const c of claims) this.reserve(c.nodeKey, -1);
    }
    const byId = new Map(jobs.map((j) => [j.id, j]));
    for (const claim of claimed) {
      const job = byId.get(claim.jobId)!;
      const node = this.registry.get(claim.nodeKey);
      // The node left while the claim was written: the attempt ends at once (re-queued, or
      // failed when out of attempts).
      if (node === undefined)
        await this.endAttempt({
          jobId: job.id,
          attemptId: claim.attemptId,
          error: attemptErrors.nodeLost,
          retry: true,
          now: Date.now(),
        });
      else this.send(node, job, claim.attemptId, claim.leaseExpiresAt);
    }
    const exhausted = jobs.length < limit && claimed.length === claims.length;
    // Everything queued for these models is now on a node: new jobs for them may skip the queue.
    if (exhausted && !this.again) for (const m of models) if (!unrouted.has(m)) this.drained.add(m);
    // Another pass at once only if this one got somewhere: a full read that placed nothing (every
    // job waits for a busy node, say the one node that did not fail it) would otherwise spin
    // without yielding; a freed slot or a new node wakes the dispatcher instead.
    return (jobs.length === limit && claimed.length > 0) || claimed.length < claims.length;
  }

  /** Sends a leased attempt down its node's socket and records it as in flight there. */
  private send(node: NodeSession, job: JobRow, attemptId: string, leaseExpiresAt: number): InFlightAttempt {
    const spec = jobSpecOf(job, attemptId);
    const now = Date.now();
    const attempt: InFlightAttempt = { spec, dispatchedAt: now, admittedAt: job.createdAt, running: false };
    node.inFlight.set(attemptId, attempt);
    node.send({ type: "job", spec, lease_expires_at: leaseExpiresAt });
    // A queued job's row was last updated when it (re-)entered the queue.
    this.telemetry.placed(spec, node.name, job.updatedAt, now);
    this.events.emit(job.id, { type: "dispatched", attemptId, nodeKey: node.key });
    return attempt;
  }
}
