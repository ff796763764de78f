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
  /** The most a score reaches: a long record cannot bank enough to absorb a run of lies. */
  ceiling: 100,
  routingFloor: 30,
  probationShare: 0.05,
  weeklyDecay: 0.01,
  /** An accepted result. */
  completed: 10,
  /** An accepted result in the fastest quarter of its model's recent results, per output byte. */
  fast: 5,
  /** A lease that expired: the node held the job and said nothing in time. */
  timeout: -20,
  /** A result refused by the coordinator's check (a receipt that lies, a bad signature). */
  invalid: -50,
  /** An attempt the node reported failed, or lost when the node went away holding it. */
  failed: -10,
  /** Per hour online with heartbeats throughout (counted per heartbeat epoch). */
  uptime: 1,
  /** Per hour of a broken availability promise: offline, unhealthy or short of slots inside it. */
  broken_promise: -5,
} as const;

export type ReputationCause = "completed" | "fast" | "timeout" | "invalid" | "failed" | "uptime" | "broken_promise";

const weekMs = 7 * 24 * 3_600_000;

/** A score as it stands at `now`: decayed for the weeks since it was written, never below the floor. */
export function decayed(score: number, at: number, now: number): number {
  const weeks = Math.max(0, now - at) / weekMs;
  return Math.max(reputationRules.floor, score * (1 - reputationRules.weeklyDecay) ** weeks);
}

/** A node's stored score as it stands at `now` (`start` for a node never scored). */
export function storedScore(row: { reputation: number | null; reputationAt: number | null } | undefined, now: number) {
  return row?.reputation === null || row?.reputation === undefined || row.reputationAt === null
    ? reputationRules.start
    : decayed(row.reputation, row.reputationAt, now);
}

/**
 * A circuit breaker per connected node: after `breakerFailures` consecutive failed or refused
 * attempts it takes the node out of routing for `breakerOpenMs` (doubling with each trip, up to
 * `breakerMaxMs`); then the node is on probation until an attempt succeeds.
 */
export const breakerRules = { failures: 3, openMs: 30_000, maxMs: 10 * 60_000 } as const;

/**
 * Recent times per output byte of accepted results, per model: what "fast" means for that model.
 * Bytes, not the node's own token count: the output is what the coordinator holds, a token count
 * only what the node says.
 */
class Speeds {
  private readonly samples = new Map<string, number[]>();
  private readonly thresholds = new Map<string, number>();
  private readonly size = 256;
  private added = 0;

  /** Whether `msPerByte` is in the fastest quarter of the model's recent results (20 at least). */
  fast(model: string, msPerByte: number): boolean {
    let seen = this.samples.get(model);
    if (!seen) {
      if (this.samples.size >= maxModelsMeasured) return false;
      this.samples.set(model, (seen = []));
    }
    // The threshold is recomputed every 32 results, not sorted again for each.
    if (seen.length >= 20 && (this.added % 32 === 0 || !this.thresholds.has(model)))
      this.thresholds.set(model, quantile(seen, 0.25));
    const threshold = this.thresholds.get(model);
    const fast = threshold !== undefined && msPerByte <= threshold;
    seen.push(msPerByte);
    this.added++;
    if (seen.length > this.size) seen.shift();
    return fast;
  }
}

/** Models whose speeds are kept, at most (a catalog is far smaller). */
export const maxModelsMeasured = 1_000;
/** Reputation events held for a store that does not answer, at most; older ones are dropped. */
const maxPending = 100_000;

/** What a node's record holds between its connections: its breaker, and its score until written. */
interface Standing {
  score: number;
  at: number;
  failures: number;
  trips: number;
  breakerUntil: number;
  /** When its last connection here ended, and its presence as it stood then (see `presence`). */
  left?: { at: number; presentSince: number; awayMs: number };
}

/** The `q` quantile of `values` (nearest rank, from below). */
export function quantile(values: readonly number[], q: number): number {
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
  /** This batch's running tally of completions and fast bonuses, per node (see `record`). */
  private readonly tallies = new Map<string, { -readonly [K in keyof ReputationEvent]: ReputationEvent[K] }>();
  private readonly speeds = new Speeds();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** node key → its standing as this replica last saw it: reconnecting resets nothing. */
  private readonly standing = new Map<string, Standing>();

  constructor(
    private readonly store: Store,
    private readonly log: FastifyBaseLogger,
    private readonly onEvent: (cause: ReputationCause) => void = () => {},
    private readonly flushMs = 250,
  ) {}

  /**
   * How a joining node starts: its score (this replica's latest, else the stored one, decayed;
   * `start` for a new node) and its breaker as it was when it left — reconnecting resets nothing.
   */
  async standingOf(
    nodeKey: string,
    now = Date.now(),
  ): Promise<{ reputation: number; failures: number; trips: number; breakerUntil: number }> {
    const known = this.standing.get(nodeKey);
    if (known)
      return {
        reputation: decayed(known.score, known.at, now),
        failures: known.failures,
        trips: known.trips,
        breakerUntil: known.breakerUntil,
      };
    return {
      reputation: storedScore(await this.store.nodes.get(nodeKey), now),
      failures: 0,
      trips: 0,
      breakerUntil: 0,
    };
  }

  /**
   * How a joining node's presence continues (heartbeat epochs judge it, `staking/epochs.ts`): a node
   * that left here less than `graceMs` ago — or whose old connection, `open`, still looks open
   * (half-open) and was last heard from that recently — is present since it was before, its time
   * away added up; any other starts present now.
   */
  presence(
    nodeKey: string,
    now: number,
    graceMs: number,
    open?: NodeSession,
  ): { presentSince: number; awayMs: number } {
    const left = open
      ? { at: open.lastSeenAt, presentSince: open.presentSince, awayMs: open.awayMs }
      : this.standing.get(nodeKey)?.left;
    if (!left || now - left.at > graceMs) return { presentSince: now, awayMs: 0 };
    return { presentSince: left.presentSince, awayMs: left.awayMs + Math.max(0, now - left.at) };
  }

  /** A node's connection here ended: its standing, and when it left, for when it comes back. */
  departed(session: NodeSession, now = Date.now()): void {
    this.remember(session, now);
    this.standing.get(session.key)!.left = { at: now, presentSince: session.presentSince, awayMs: session.awayMs };
  }

  /** Keeps a leaving node's standing (its score and breaker) for when it comes back. */
  remember(session: NodeSession, now = Date.now()): void {
    // Called for every change (one a job): the node's record is updated in place.
    const known = this.standing.get(session.key) ?? ({} as Standing);
    known.score = session.reputation;
    known.at = now;
    known.failures = session.failures;
    known.trips = session.trips;
    known.breakerUntil = session.breakerUntil;
    this.standing.set(session.key, known);
  }

  /**
   * Applies one change to a node: its score now, and an event to write. `scale` multiplies the
   * rule's points (hours, for uptime and broken promises).
   */
  record(session: NodeSession, cause: ReputationCause, jobId: string | null, now = Date.now(), scale = 1): void {
    const delta = reputationRules[cause] * scale;
    const score = Math.min(reputationRules.ceiling, Math.max(reputationRules.floor, session.reputation + delta));
    session.reputation = score;
    this.remember(session, now);
    if (this.pending.length >= maxPending) {
      this.log.error({ dropped: this.pending.length / 2 }, "reputation events dropped: the store is not taking them");
      this.pending = this.pending.slice(this.pending.length / 2);
    }
    this.onEvent(cause);
    // Completions and fast bonuses, one a job, are written as one event per node and batch (with
    // their count): at a thousand jobs a second, a row each would be most of the database's work.
    if (cause === "completed" || cause === "fast") {
      const key = `${session.key}\n${cause}`;
      const tally = this.tallies.get(key);
      if (tally) {
        tally.count++;
        tally.delta += delta;
        tally.score = score;
        tally.at = now;
        tally.jobId = null;
      } else {
        const event = { nodeKey: session.key, delta, score, cause, jobId, at: now, count: 1 };
        this.tallies.set(key, event);
        this.pending.push(event);
      }
    } else this.pending.push({ nodeKey: session.key, delta, score, cause, jobId, at: now, count: 1 });
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
    this.timer.unref?.();
  }

  /** A change to a node not connected here (a broken promise while offline): its kept or stored score moves. */
  async recordAway(nodeKey: string, cause: ReputationCause, scale: number, now = Date.now()): Promise<void> {
    const standing = await this.standingOf(nodeKey, now);
    const delta = reputationRules[cause] * scale;
    const score = Math.min(reputationRules.ceiling, Math.max(reputationRules.floor, standing.reputation + delta));
    // When it left stays known: it may be back within the reconnect grace.
    const left = this.standing.get(nodeKey)?.left;
    this.standing.set(nodeKey, { ...standing, score, at: now, ...(left && { left }) });
    this.onEvent(cause);
    this.pending.push({ nodeKey, delta, score, cause, jobId: null, at: now, count: 1 });
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs);
    this.timer.unref?.();
  }

  /** An accepted result: +10, and +5 when it was fast for its model (per byte of its output). */
  completed(session: NodeSession, model: string, jobId: string, observedMs: number, outputBytes: number): void {
    this.record(session, "completed", jobId);
    if (this.speeds.fast(model, observedMs / Math.max(1, outputBytes))) this.record(session, "fast", jobId);
  }

  /** Writes what is pending (one transaction); a failed write is logged and retried with the next. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.then(async () => {
      const batch = this.pending;
      this.pending = [];
      this.tallies.clear();
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
