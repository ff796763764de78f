import type { FastifyBaseLogger } from "fastify";
import type { GovernanceService } from "../governance/governance-service.js";
import type { PoolService } from "../ledger/pool.js";
import type { EpochKeeper } from "./epochs.js";
import type { StakeService } from "./stake-service.js";

/** Each task, how often it runs, in ms (the loop itself turns each `tickMs`). */
const every = { refresh: 5_000, release: 1_000, pool: 10_000 } as const;

/**
 * The background turn of stake, governance and the pool, beside the sweeper: proposals whose
 * period ended are decided, heartbeat epochs judged, unbonded stake paid out, the pool paid at
 * its period's end, and what other replicas changed (stake, parameters, holds) read again. A
 * failed task is logged; the others go on, and it runs again next turn.
 */
export class EconomyLoop {
  private timer: NodeJS.Timeout | undefined;
  private turning = false;
  private readonly lastRun = new Map<string, number>();

  constructor(
    private readonly deps: {
      readonly stake: StakeService;
      readonly governance: GovernanceService;
      readonly epochs: EpochKeeper;
      readonly pool: PoolService | undefined;
      readonly log: FastifyBaseLogger;
      readonly tickMs: number;
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.turn(), this.deps.tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One turn: every task due now. */
  async turn(now = Date.now()): Promise<void> {
    if (this.turning) return;
    this.turning = true;
    try {
      const { stake, governance, epochs, pool } = this.deps;
      await this.run("governance.decide", 0, now, () => governance.decideDue(now));
      await this.run("epochs", 0, now, () => epochs.tick(now));
      await this.run("refresh", every.refresh, now, async () => {
        await governance.refresh(now);
        await stake.refresh();
      });
      await this.run("stake.release", every.release, now, () => stake.releaseMatured(now));
      if (pool) await this.run("pool", every.pool, now, () => pool.tick(now));
    } finally {
      this.turning = false;
    }
  }

  private async run(name: string, periodMs: number, now: number, task: () => Promise<unknown>): Promise<void> {
    if (now - (this.lastRun.get(name) ?? 0) < periodMs) return;
    this.lastRun.set(name, now);
    try {
      await task();
    } catch (err) {
      this.deps.log.error({ err, task: name }, "a stake or governance task failed; it runs again next turn");
    }
  }
}
