import type { Store } from "@havn/store";
import type { FastifyBaseLogger } from "fastify";
import type { CoordinatorConfig } from "../config.js";
import type { InFlightAttempt, NodeRegistry, NodeSession } from "../nodes/node-registry.js";
import type { JobEvents } from "../jobs/job-events.js";
import { attemptErrors } from "./attempt-errors.js";
import type { Settlement } from "../ledger/settlement.js";
import type { LogSealer } from "../log/log-sealer.js";
import type { Dispatcher } from "./dispatcher.js";

/** Jobs checked per sweep (one query) for waiters on other replicas' work; the rest wait for the next. */
const maxWatchedPerSweep = 500;
/** How often retention runs (deleting old jobs' data, forgetting old idempotency keys), in ms. */
const retentionEveryMs = 60_000;
/** Jobs whose data one retention pass deletes at most (one transaction); the rest wait a minute. */
const retentionBatch = 1_000;

/**
 * The background loop: re-queues expired leases, fails jobs past their queue wait, drops nodes
 * that stopped sending heartbeats, and wakes the dispatcher (jobs written by other replicas).
 * An error in one sweep is logged and the next sweep runs as usual.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private retainedAt = 0;
  private nodeKeysAt = 0;

  constructor(
    private readonly store: Store,
    private readonly registry: NodeRegistry,
    private readonly dispatcher: Dispatcher,
    private readonly events: JobEvents,
    private readonly config: CoordinatorConfig,
    private readonly log: FastifyBaseLogger,
    /** Closes the nodes that joined with a key revoked since (here or on another replica). */
    private readonly closeJoinedWith: (keyId: string) => void = () => {},
    /** Settles jobs whose challenge window passed (absent on a free network). */
    private readonly settlement?: Settlement,
    /** Seals the execution log's periods as they come due. */
    private readonly logSealer?: LogSealer,
    /** An attempt ran past its time on this node: its reputation and breaker hear of it. */
    private readonly timedOut: (session: NodeSession, jobId: string, now: number) => void = () => {},
    /** Whether an attempt missed its deadline (first token, per token, or the attempt timeout). */
    private readonly overdue: (attempt: InFlightAttempt, now: number) => boolean = (a, now) =>
      now - a.dispatchedAt > this.config.attemptTimeoutMs,
  ) {}

  /** Nodes whose API key was revoked — on any replica — are closed within `nodeKeyCheckMs`. */
  async checkNodeKeys(): Promise<void> {
    const keyIds = new Set<string>();
    for (const session of this.registry.all()) if (session.joinedWithKey) keyIds.add(session.joinedWithKey);
    for (const keyId of await this.store.accounts.deadKeys([...keyIds])) this.closeJoinedWith(keyId);
  }

  start(): void {
    this.timer = setInterval(() => void this.sweep(), this.config.sweepIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * With several coordinators on one database, a job admitted here may run on a node connected
   * to another replica, whose events never reach this process. Jobs someone here waits on are
   * read back each sweep, and their end is announced (at most `sweepIntervalMs` late).
   */
  private async watchOtherReplicas(): Promise<void> {
    const ended = await this.store.jobs.ended(this.events.watched().slice(0, maxWatchedPerSweep));
    for (const job of ended) this.events.announceEnded(job);
  }

  /**
   * Retention: prompts and outputs of jobs that ended longer than `retentionMs` ago are deleted
   * (hashes, receipts and the log stay), and idempotency keys older than their window are
   * forgotten, so a key may name a new job again; used or expired sign-in nonces, expired
   * sessions and expired unused invites are removed.
   */
  async retain(now = Date.now()): Promise<{ deleted: number; forgotten: number; purged: number }> {
    const deleted =
      this.config.retentionMs > 0
        ? await this.store.jobs.expireData(now - this.config.retentionMs, now, retentionBatch)
        : 0;
    const forgotten = await this.store.jobs.clearIdempotencyKeys(now - this.config.idempotencyWindowMs);
    const purged = await this.store.accounts.purgeExpired(now);
    if (deleted > 0 || forgotten > 0 || purged > 0) this.log.info({ deleted, forgotten, purged }, "retention");
    return { deleted, forgotten, purged };
  }

  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const now = Date.now();
      for (const session of this.registry.all()) {
        if (now - session.lastSeenAt > this.config.nodeTimeoutMs) {
          this.log.warn({ node: session.name }, "node missed its heartbeats; dropping it");
          // No close handshake: a node that sends nothing would not finish one, and ws would wait
          // 30 s before its attempts are re-queued.
          session.terminate();
        }
      }
      for (const session of this.registry.all()) {
        for (const [attemptId, attempt] of session.inFlight) {
          if (!this.overdue(attempt, now)) continue;
          session.inFlight.delete(attemptId);
          session.send({
            type: "cancel",
            job_id: attempt.spec.job_id,
            attempt_id: attemptId,
            reason: "attempt timeout",
          });
          this.timedOut(session, attempt.spec.job_id, now);
          await this.dispatcher.endAttempt(
            { jobId: attempt.spec.job_id, attemptId, error: attemptErrors.timedOut, retry: true, now },
            session.name,
          );
        }
      }
      for (const { job, attemptId } of await this.store.jobs.expireLeases(attemptErrors.leaseExpired, now)) {
        let node: string | undefined;
        for (const session of this.registry.all()) {
          if (session.inFlight.delete(attemptId)) {
            node = session.name;
            this.timedOut(session, job.id, now);
            session.send({ type: "cancel", job_id: job.id, attempt_id: attemptId, reason: "lease expired" });
          }
        }
        this.events.emitTransition(job, attemptId, node);
      }
      for (const job of await this.store.jobs.expireQueued(attemptErrors.noCapacity, now))
        this.events.emitTransition(job, null);
      if (this.store.caps.sharedByReplicas) await this.watchOtherReplicas();
      if (this.settlement) await this.settlement.settleDue(now);
      if (this.logSealer) await this.logSealer.sealDue(now);
      if (now - this.nodeKeysAt >= this.config.nodeKeyCheckMs) {
        this.nodeKeysAt = now;
        await this.checkNodeKeys();
      }
      if (now - this.retainedAt >= retentionEveryMs) {
        this.retainedAt = now;
        await this.retain(now);
      }
      this.dispatcher.notify();
    } catch (err) {
      this.log.error({ err }, "sweep failed");
    } finally {
      this.sweeping = false;
    }
  }
}
