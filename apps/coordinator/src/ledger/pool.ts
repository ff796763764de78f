import { ledgerAccounts, type LedgerAccount, type LedgerTxRow, type Store } from "@havn/store";
import type { FastifyBaseLogger } from "fastify";
import type { Params } from "../governance/params.js";
import { storedScore } from "../nodes/reputation.js";
import type { NodeRegistry } from "../nodes/node-registry.js";
import type { StakeService } from "../staking/stake-service.js";

/** One node's part of a distribution. */
export interface PoolShare {
  readonly nodeKey: string;
  readonly score: number;
  readonly completed: number;
  readonly amount: bigint;
}

/**
 * Splits `pool` by weight, exactly: each share is its weight's part rounded down, and the µHAI
 * left over go one each to the largest remainders (ties: the earlier entry) — so the shares
 * always sum to the pool (the largest-remainder method).
 */
export function splitByWeight(pool: bigint, weights: readonly bigint[]): bigint[] {
  const total = weights.reduce((a, b) => a + b, 0n);
  if (pool <= 0n || total <= 0n) return weights.map(() => 0n);
  const shares = weights.map((w) => (pool * w) / total);
  const remainders = weights.map((w, i) => ({ i, r: (pool * w) % total }));
  let left = pool - shares.reduce((a, b) => a + b, 0n);
  remainders.sort((a, b) => (a.r === b.r ? a.i - b.i : a.r > b.r ? -1 : 1));
  for (const { i } of remainders) {
    if (left === 0n) break;
    shares[i]! += 1n;
    left -= 1n;
  }
  return shares;
}

/** A period `[start, end)` containing `at`: calendar months (UTC) for 0, else fixed lengths from the epoch. */
export function poolPeriod(at: number, periodMs: number): { start: number; end: number } {
  if (periodMs > 0) {
    const start = Math.floor(at / periodMs) * periodMs;
    return { start, end: start + periodMs };
  }
  const d = new Date(at);
  return {
    start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1),
    end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1),
  };
}

/** Reputation counts in tenths of a point in the snapshot (scores are kept as decimals). */
const scoreScale = 10;

/**
 * The monthly pool (seed 003): at each period's end, `pool.amount` (at most what the treasury
 * holds) goes to the nodes that completed verified work in the period — accepted results, so
 * uptime alone cannot farm it — in proportion to their reputation at the snapshot. One ledger
 * transaction per period (its idempotency key is the period), with the snapshot in its memo.
 */
export class PoolService {
  private distributed = -1;

  constructor(
    private readonly deps: {
      readonly store: Store;
      readonly params: Params;
      readonly registry: NodeRegistry;
      readonly stake: StakeService;
      readonly log: FastifyBaseLogger;
    },
  ) {}

  /** The shares a snapshot at `now` would pay for the period `[start, end)`. */
  async snapshot(start: number, end: number, now = Date.now()): Promise<{ amount: bigint; shares: PoolShare[] }> {
    const { store, params, registry } = this.deps;
    const worked = await store.nodes.completedBetween(start, end);
    const rows = new Map((await store.nodes.list()).map((r) => [r.key, r]));
    // A share needs verified work in the period — `pool.min_completed` accepted results — so
    // neither uptime alone nor one job per throwaway node farms the pool.
    const least = Math.max(1, params.num("pool.min_completed"));
    const eligible = worked
      .filter((w) => w.completed >= least && rows.has(w.nodeKey))
      .map((w) => {
        const live = registry.get(w.nodeKey);
        const score = live ? live.reputation : storedScore(rows.get(w.nodeKey), now);
        return { nodeKey: w.nodeKey, completed: w.completed, score: Math.round(score * scoreScale) / scoreScale };
      });
    const treasury = await store.ledger.balance(ledgerAccounts.treasury);
    const wanted = params.current["pool.amount"];
    const amount = treasury < wanted ? (treasury > 0n ? treasury : 0n) : wanted;
    const split = splitByWeight(
      amount,
      eligible.map((e) => BigInt(Math.round(e.score * scoreScale))),
    );
    return { amount, shares: eligible.map((e, i) => ({ ...e, amount: split[i]! })) };
  }

  /** Called each sweep: distributes the period that just ended, once. */
  async tick(now = Date.now()): Promise<LedgerTxRow | undefined> {
    const periodMs = this.deps.params.num("pool.period_ms");
    const current = poolPeriod(now, periodMs);
    if (this.distributed === current.start) return undefined;
    const previous = poolPeriod(current.start - 1, periodMs);
    const tx = await this.distribute(previous.start, previous.end, now);
    this.distributed = current.start;
    return tx;
  }

  /** Pays one period's pool (a replay, here or on another replica, pays nothing). */
  async distribute(start: number, end: number, now = Date.now()): Promise<LedgerTxRow | undefined> {
    const { store, stake, log } = this.deps;
    const { amount, shares } = await this.snapshot(start, end, now);
    const paid = shares.filter((s) => s.amount > 0n);
    if (paid.length === 0) return undefined;
    const accounts = new Map<string, LedgerAccount>();
    for (const s of paid) accounts.set(s.nodeKey, stake.payee(s.nodeKey, await stake.operatorOf(s.nodeKey)));
    const r = await store.ledger.post({
      kind: "pool",
      idempotencyKey: `pool:${start}`,
      now,
      memo: {
        period_start: start,
        period_end: end,
        amount: amount.toString(),
        shares: shares.map((s) => ({
          node: s.nodeKey,
          score: s.score,
          completed: s.completed,
          amount: s.amount.toString(),
        })),
      },
      postings: [
        { account: ledgerAccounts.treasury, amount: -amount },
        ...paid.map((s) => ({ account: accounts.get(s.nodeKey)!, amount: s.amount })),
      ],
    });
    if (!r.ok) {
      log.warn({ period_start: start, amount_uhai: amount.toString() }, "pool not paid: the treasury moved meanwhile");
      return undefined;
    }
    if (!r.replayed)
      log.info(
        { period_start: start, amount_uhai: amount.toString(), nodes: paid.length },
        "monthly pool distributed by reputation share",
      );
    return r.tx;
  }
}
