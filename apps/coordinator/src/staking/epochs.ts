import type { AvailabilityPromise, NodeRow, Store } from "@havn/store";
import type { FastifyBaseLogger } from "fastify";
import type { Params } from "../governance/params.js";
import { routable, type NodeRegistry, type NodeSession } from "../nodes/node-registry.js";
import type { ReputationBook } from "../nodes/reputation.js";
import type { StakeService } from "./stake-service.js";

const hourMs = 3_600_000;

/** The reconnect grace in force: the parameter, and never more than half an epoch. */
export function reconnectGrace(params: Params): number {
  return Math.min(params.num("quarantine.reconnect_grace_ms"), params.num("quarantine.epoch_ms") / 2);
}

/**
 * How long after this coordinator starts a node may take to reconnect and still count as present
 * for the whole epoch: a coordinator restart is not the nodes' downtime.
 */
const restartGraceMs = 60_000;

/** Hours of `[start, end)` that fall inside a daily promise (UTC), as a fraction of hours. */
export function promisedHours(promise: AvailabilityPromise, start: number, end: number): number {
  const { fromHour, toHour } = promise;
  const inside = (hourOfDay: number) =>
    fromHour === toHour ||
    (fromHour < toHour ? hourOfDay >= fromHour && hourOfDay < toHour : hourOfDay >= fromHour || hourOfDay < toHour);
  let ms = 0;
  for (let h = Math.floor(start / hourMs) * hourMs; h < end; h += hourMs) {
    if (!inside(new Date(h).getUTCHours())) continue;
    ms += Math.min(end, h + hourMs) - Math.max(start, h);
  }
  return ms / hourMs;
}

export type QuarantineChange = "entered" | "lifted";

/** Epochs in a row no replica judged a node marked online before it counts as abandoned. */
const abandonedAfterEpochs = 3;

/**
 * A node row that says online though no live replica holds it: a replica holding a node judges it
 * at every epoch's end, so one neither judged nor joined in the last three epochs (a pass that
 * failed, or ran slow, misses one) was left by a replica that stopped without marking it offline.
 */
export function orphaned(row: NodeRow, start: number, epochMs: number): boolean {
  const since = start - abandonedAfterEpochs * epochMs;
  return row.online && (row.lastEpoch ?? -Infinity) < since && row.lastSeenAt < since;
}

/**
 * Heartbeat epochs (seed 002) and the hourly points of seed 003. At the end of each epoch every
 * node this replica can judge is recorded once: clean (connected here, heartbeating, for the whole
 * epoch) or missed. A clean epoch earns +1 an hour of uptime; `quarantine.missed_epochs` missed
 * in a row quarantine a staked node's stake (no jobs, its earnings held) and slash it for
 * downtime; a later clean epoch lifts the quarantine. A node that promised hours and slots and was
 * offline, unhealthy or short of slots inside them loses 5 points an hour.
 *
 * Judged here: the nodes connected here, and nodes offline everywhere that have stake, a promise
 * or a quarantine. A node online at another replica is that replica's to judge; each node's epoch
 * is recorded once in the store, so replicas never count it twice.
 */
export class EpochKeeper {
  /** The start of the epoch under way at the last tick (epochs are known by their start, in ms). */
  private lastStart: number | undefined;
  private readonly startedAt = Date.now();
  private running: Promise<void> | undefined;

  constructor(
    private readonly deps: {
      readonly store: Store;
      readonly registry: NodeRegistry;
      readonly params: Params;
      readonly stake: StakeService;
      readonly reputation: ReputationBook;
      readonly log: FastifyBaseLogger;
      readonly onQuarantine?: (change: QuarantineChange) => void;
    },
  ) {}

  /**
   * Called each sweep: judges the epoch that just ended, once. Epochs are known by their start
   * time, so a governance change of their length never makes recorded epochs look like the future.
   */
  tick(now = Date.now()): Promise<void> {
    const epochMs = this.deps.params.num("quarantine.epoch_ms");
    const start = Math.floor(now / epochMs) * epochMs;
    // The epoch under way when this coordinator started is judged from the next one on.
    if (this.lastStart === undefined) this.lastStart = start;
    if (start <= this.lastStart || this.running) return this.running ?? Promise.resolve();
    this.lastStart = start;
    this.running = this.judge(start - epochMs, start, now).finally(() => (this.running = undefined));
    return this.running;
  }

  /** Judges the epoch `[start, end)` for every node this replica can. */
  async judge(start: number, end: number, now: number): Promise<void> {
    const epoch = start;
    const { store, registry, stake } = this.deps;
    const threshold = this.deps.params.num("quarantine.missed_epochs");
    const rows = await store.nodes.list();
    const staked = new Set(
      (await store.ledger.positiveBalances("stake:node:", 100_000)).map((b) => b.account.slice("stake:node:".length)),
    );
    const epochMs = end - start;
    let judged = 0;
    for (const row of rows) {
      // An embedded store answers synchronously: 10,000 nodes' epochs would hold the event loop
      // for a second. Let requests and heartbeats in between.
      if (++judged % 256 === 0) await new Promise((resolve) => setImmediate(resolve));
      const session = registry.get(row.key);
      // Online at another replica: that replica judges it — unless no replica judged it for the
      // epoch before nor saw it join since: the replica that held it is gone (crashed; its rows
      // still say online), and the node is judged offline.
      if (!session && row.online) {
        if (!orphaned(row, start, epochMs)) continue;
        if (!(await store.nodes.markAbandoned(row.key, row.lastSeenAt, row.lastEpoch))) continue;
        this.deps.log.warn(
          { node: row.name, key: row.key },
          "node left online by a replica that stopped; judged offline",
        );
      }
      // Connected here though its row says offline (another replica judged it abandoned while this
      // one was slow to judge it): the row is set right, so no replica judges it offline again.
      if (session && !row.online) await store.nodes.setOnline(row.key, true, row.lastSeenAt);
      if (!session && !staked.has(row.key) && row.promise === null && row.quarantinedAt === null) continue;
      const clean = session !== undefined && this.present(session, start);
      if (session) session.awayMs = 0; // breaks count toward the epoch they ended in
      const outcome = await store.nodes.recordEpoch({ key: row.key, epoch, clean, threshold, now });
      if (!outcome) continue; // judged already (another replica)
      if (outcome.change === "entered") await this.quarantine(row.key, row.name, epoch, outcome.missedEpochs);
      if (outcome.change === "lifted") await this.lift(row.key, row.name);
      // Uptime counts only while the node could take work: connected but held or unhealthy earns nothing.
      if (clean && routable(session)) this.deps.reputation.record(session, "uptime", null, now, (end - start) / hourMs);
      if (row.promise) {
        const hours = promisedHours(row.promise, start, end);
        const kept =
          clean && session.available && session.held === null && session.advertisedSlots >= row.promise.slots;
        if (hours > 0 && !kept) {
          if (session) this.deps.reputation.record(session, "broken_promise", null, now, hours);
          else await this.deps.reputation.recordAway(row.key, "broken_promise", hours, now);
        }
      }
      if (session && (outcome.change || stake.quarantined.has(row.key) !== outcome.quarantined)) stake.assess(session);
    }
  }

  /**
   * Present for the whole epoch: here since its start (or since this coordinator's start, plus a
   * grace), reconnects within `quarantine.reconnect_grace_ms` continuing its presence, and away in
   * them for no longer than that in all.
   */
  private present(session: NodeSession, start: number): boolean {
    return (
      session.presentSince <= Math.max(start, this.startedAt + restartGraceMs) &&
      session.awayMs <= reconnectGrace(this.deps.params)
    );
  }

  private async quarantine(key: string, name: string, epoch: number, missed: number): Promise<void> {
    this.deps.stake.quarantined.add(key);
    this.deps.onQuarantine?.("entered");
    this.deps.log.warn(
      { alert: "quarantine", node: name, key, missed_epochs: missed },
      "node quarantined: heartbeats missed in consecutive epochs; no jobs and no payouts until a clean epoch",
    );
    await this.deps.stake.slash(`node:${key}`, "downtime", `epoch:${epoch}`);
  }

  private async lift(key: string, name: string): Promise<void> {
    this.deps.stake.quarantined.delete(key);
    this.deps.onQuarantine?.("lifted");
    this.deps.log.info({ alert: "quarantine", node: name, key }, "node quarantine lifted after a clean epoch");
    await this.deps.stake.releaseQuarantined(key);
  }
}
