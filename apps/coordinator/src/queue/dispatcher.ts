import { newAttemptId, type JobSpec } from "@havn/protocol";
import type { ClaimRequest, JobRow, Store } from "@havn/store";
import type { FastifyBaseLogger } from "fastify";
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
 * Matches queued jobs to connected nodes. A pass reads the oldest queued jobs for models that
 * have a free slot, routes each to the best eligible node, claims the batch in one atomic
 * statement (a job another replica claimed first is simply skipped) and sends each claimed job
 * down its node's WebSocket. Passes never overlap; a wake-up during a pass runs one more.
 */
export class Dispatcher {
  private running = false;
  private again = false;
  private scheduled = false;

  constructor(
    private readonly store: Store,
    private readonly registry: NodeRegistry,
    private readonly router: Router,
    private readonly events: JobEvents,
    private readonly log: FastifyBaseLogger,
    private readonly options: DispatcherOptions,
  ) {}

  /** Asks for a dispatch pass soon; calls in the same turn share one pass. */
  notify(): void {
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
    if (jobs.length === 0) return false;

    const nodes = this.registry.all();
    const reserved = new Map<string, number>();
    const claims: ClaimRequest[] = [];
    const chosen = new Map<string, NodeSession>();
    const now = Date.now();
    for (const job of jobs) {
      const pick = this.router.choose(this.router.eligible(nodes, job.model, job.input.kind, reserved), reserved);
      if (pick === undefined) continue;
      reserved.set(pick.node.key, (reserved.get(pick.node.key) ?? 0) + 1);
      const attemptId = newAttemptId();
      chosen.set(job.id, pick.node);
      claims.push({
        jobId: job.id,
        attemptId,
        nodeKey: pick.node.key,
        leaseExpiresAt: now + this.options.leaseMs,
        route: pick.decision,
      });
    }
    if (claims.length === 0) return false;

    const claimed = await this.store.claimJobs(claims, now);
    const byId = new Map(jobs.map((j) => [j.id, j]));
    for (const claim of claimed) {
      const node = chosen.get(claim.jobId)!;
      // The node may have gone while the claim was in flight: the lease reaper re-queues it.
      if (this.registry.get(node.key) !== node) continue;
      const spec = jobSpecOf(byId.get(claim.jobId)!, claim.attemptId);
      node.inFlight.set(claim.attemptId, { spec, dispatchedAt: Date.now(), running: false });
      node.send({ type: "job", spec, lease_expires_at: claim.leaseExpiresAt });
      this.events.emit(claim.jobId, { type: "dispatched", attemptId: claim.attemptId, nodeKey: node.key });
    }
    return jobs.length === limit || claimed.length < claims.length;
  }
}
