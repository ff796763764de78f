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
import { nodeLostError } from "../gateway/node-gateway.js";
import type { NodeRegistry, NodeSession } from "../gateway/node-registry.js";
import type { JobEvents } from "../jobs/job-events.js";
import type { Router } from "../router/router.js";

export interface DispatcherOptions {
  readonly leaseMs: number;
  readonly batchSize: number;
}

export function jobSpecOf(job: JobRow, attemptId: string): JobSpec {
  return {
    job_id: job.id,
    attempt_id: attemptId,
    workflow_id: job.workflowId,
    model: job.model,
    input: job.input,
    params: job.params,
    stream: job.stream,
    input_hash: job.inputHash,
  };
}

/**
 * Matches jobs to connected nodes, two ways:
 *
 * - **At admission** (`place` / `deliver`): while the queue holds nothing for a model — known
 *   because the last pass drained it and nothing was queued since — a new job is routed at once,
 *   written leased in its admission transaction and sent to its node. No queue read, no claim.
 * - **From the queue** (passes): a pass reads the oldest queued jobs for models that have a free
 *   slot, routes each to the best eligible node, claims the batch in one atomic statement (a job
 *   another replica claimed first is simply skipped) and sends each claimed job down its node's
 *   WebSocket. Passes never overlap; a wake-up during a pass runs one more.
 *
 * Slots promised to a placement or a claim still being written are reserved, so the two ways
 * never give one slot twice.
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
   * Returns the job as it now stands (undefined when the attempt was stale).
   */
  async endAttempt(input: FailAttemptInput): Promise<JobRow | undefined> {
    const job = await this.store.failAttempt(input);
    if (job) this.events.emitTransition(job, input.attemptId);
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
   * queue (a new job must not overtake older ones) and a node has a free slot. The slot stays
   * reserved until `deliver` or `release`.
   */
  place(job: NewJob): AdmissionLease | undefined {
    if (this.running || this.scheduled || !this.drained.has(job.model)) return undefined;
    const pick = this.router.choose(
      this.router.eligible(this.registry.all(), job.model, job.input.kind, this.reserved),
      this.reserved,
    );
    if (pick === undefined) return undefined;
    this.reserve(pick.node.key, 1);
    return {
      attemptId: newAttemptId(),
      nodeKey: pick.node.key,
      leaseExpiresAt: job.now + this.options.leaseMs,
      route: pick.decision,
    };
  }

  /** The admission holding this lease was not written: its slot is free again. */
  release(lease: AdmissionLease): void {
    this.reserve(lease.nodeKey, -1);
  }

  /**
   * The job was written leased at admission: sends it to its node. Returns the job's new row
   * when the node went away meanwhile and the attempt was ended instead.
   */
  async deliver(job: JobRow, lease: AdmissionLease): Promise<JobRow | undefined> {
    this.reserve(lease.nodeKey, -1);
    return this.send(job, lease.attemptId, lease.nodeKey, lease.leaseExpiresAt);
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

  /** One pass; returns true when the queue may hold more work for free slots. */
  private async pass(): Promise<boolean> {
    const free = this.registry.freeSlots();
    const models = this.registry.modelsWithFreeSlots();
    if (free === 0 || models.length === 0) return false;
    const limit = Math.min(free, this.options.batchSize);
    const jobs = await this.store.listClaimable(models, limit);
    const unrouted = new Set<string>();

    const nodes = this.registry.all();
    const claims: ClaimRequest[] = [];
    const now = Date.now();
    for (const job of jobs) {
      const pick = this.router.choose(
        this.router.eligible(nodes, job.model, job.input.kind, this.reserved),
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

    let claimed: ClaimedAttempt[] = [];
    try {
      if (claims.length > 0) claimed = await this.store.claimJobs(claims, now);
    } finally {
      for (const c of claims) this.reserve(c.nodeKey, -1);
    }
    const byId = new Map(jobs.map((j) => [j.id, j]));
    for (const claim of claimed) {
      await this.send(byId.get(claim.jobId)!, claim.attemptId, claim.nodeKey, claim.leaseExpiresAt);
    }
    const exhausted = jobs.length < limit && claimed.length === claims.length;
    // Everything queued for these models is now on a node: new jobs for them may skip the queue.
    if (exhausted && !this.again) for (const m of models) if (!unrouted.has(m)) this.drained.add(m);
    return jobs.length === limit || claimed.length < claims.length;
  }

  /**
   * Sends a leased attempt down its node's socket. If the node has gone meanwhile, the attempt
   * ends at once (re-queued, or failed when out of attempts) and the job's new row is returned.
   */
  private async send(
    job: JobRow,
    attemptId: string,
    nodeKey: string,
    leaseExpiresAt: number,
  ): Promise<JobRow | undefined> {
    const node = this.registry.get(nodeKey);
    if (node === undefined) {
      return this.endAttempt({ jobId: job.id, attemptId, error: nodeLostError, retry: true, now: Date.now() });
    }
    const spec = jobSpecOf(job, attemptId);
    node.inFlight.set(attemptId, { spec, dispatchedAt: Date.now(), running: false });
    node.send({ type: "job", spec, lease_expires_at: leaseExpiresAt });
    this.events.emit(job.id, { type: "dispatched", attemptId, nodeKey });
    return undefined;
  }
}
