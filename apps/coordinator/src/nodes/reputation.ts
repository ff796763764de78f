import type { FastifyBaseLogger } from "fastify";
import type { ReputationEvent, Store } from "@havn/store";
import type { NodeSession } from "./node-registry.js";

/**
 * Seed 003's reputation table, and what havn adds to it. A node starts at `start`; every change is
 * an event with its cause; the score decays 1 % a week and never falls below `floor`. Below
 * `routingFloor` a node gets no work, except on probation: a `probationShare` of the routing
 * decisions it is eligible for (and any job no trusted node can run). Completing work on
 * probation is how it earns its way back (+10 a job, +5 when fast).
 */
export const reputationRules = {
  start: 50,
  floor: 10,
  routingFloor: 30,
  probationShare: 0.05,
  weeklyDecay: 0.01,
  /** An accepted result. */
  completed: 10,
  /** An accepted result in the fastest quarter of its model's recent results, per output token. */
  fast: 5,
  /** A lease that expired: the node held the job and said nothing in time. */
  timeout: -20,
  /** A result refused by the coordinator's check (a receipt that lies, a bad signature). */
  invalid: -50,
  /** An attempt the node reported failed, or lost when the node went away holding it. */
  failed: -10,
} as const;

export type ReputationCause = "completed" | "fast" | "timeout" | "invalid" | "failed";

const weekMs = 7 * 24 * 3_600_000;

/** A score as it stands at `now`: decayed for the weeks since it was written, never below the floor. */
export function decayed(score: number, at: number, now: number): number {
  const weeks = Math.max(0, now - at) / weekMs;
  return Math.max(reputationRules.floor, score * (1 - reputationRules.weeklyDecay) ** weeks);
}

/**
 * A circuit breaker per connected node: after `breakerFailures` consecutive failed or refused
 * attempts it takes the node out of routing for `breakerOpenMs` (doubling with each trip, up to
 * `breakerMaxMs`); then the node is on probation until an attempt succeeds.
 */
export const breakerRules = { failures: 3, openMs: 30_000, maxMs: 10 * 60_000 } as const;

/** Recent per-token times of accepted results, per model: what "fast" means for that model. */
class Speeds {
  private readonly samples = new Map<string, number[]>();
  private readonly size = 256;

  /** Whether `msPerToken` is in the fastest quarter of the model's recent results (20 at least). */
  fast(model: string, msPerToken: number): boolean {
    const seen = this.samples.get(model) ?? [];
    const fast = seen.length >= 20 && msPerToken <= quantile(seen, 0.25);
    seen.push(msPerToken);
    if (seen.length > this.size) seen.shift();
    this.samples.set(model, seen);
    return fast;
  }
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * Keeps connected nodes' reputation: the score in memory (the session's, which routing reads) and
 * every change written to the store in batches (a flush each `flushMs`, and at close). A node's
 * score is read from the store when it joins, so it survives reconnects and restarts.
 */
export class ReputationBook {
  private pending: ReputationEvent[] = [];
  private readonly speeds = new Speeds();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly log: FastifyBaseLogger,
    private readonly onEvent: (cause: ReputationCause) => void = () => {},
    private readonly flushMs = 250,
  ) {}

  /** The score a joining node starts with: its stored one, decayed; `start` for a new node. */
  async scoreOf(nodeKey: string, now = Date.now()): Promise<number> {
    const row = await this.store.nodes.get(nodeKey);
    return row?.reputation === null || row?.reputation === undefined || row.reputationAt === null
      ? reputationRules.start
      : decayed(row.reputation, row.reputationAt, now);
  }

  /** Applies one change to a node: its score now, and an event to write. */
  record(session: NodeSession, cause: ReputationCause, jobId: string | null, now = Date.now()): void {
    const delta = reputationRules[cause];
    const score = Math.max(reputationRules.floor, session.reputation + delta);
    session.reputation = score;
    this.pending.push({ nodeKey: session.key, delta, score, cause, jobId, at: now });
    this.onEvent(cause);
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
    this.timer.unref?.();
  }

  /** An accepted result: +10, and +5 when it was fast for its model. */
  completed(session: NodeSession, model: string, jobId: string, observedMs: number, tokens: number): void {
    this.record(session, "completed", jobId);
    if (this.speeds.fast(model, observedMs / Math.max(1, tokens))) this.record(session, "fast", jobId);
  }

  /** Writes what is pending (one transaction); a failed write is logged and retried with the next. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.then(async () => {
      const batch = this.pending;
      this.pending = [];
      if (batch.length === 0) return;
      try {
        await this.store.nodes.recordReputation(batch);
      } catch (err) {
        this.log.error({ err, events: batch.length }, "reputation events not written; retrying with the next batch");
        this.pending = [...batch, ...this.pending];
      }
    });
    return this.flushing;
  }
}
