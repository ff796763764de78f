import { ledgerAccounts, type LedgerAccount, type LedgerTransfer, type SettleCandidate, type Store } from "@havn/store";
import type { FastifyBaseLogger } from "fastify";
import type { CoordinatorConfig } from "../config.js";
import type { ModelCatalog } from "../router/model-catalog.js";

/** Jobs settled per pass (each its own transaction); the rest wait for the next pass. */
const settleBatch = 200;

/** What a job's charge splits into: the node's operator, the validator pool, the treasury. */
export interface SplitShares {
  readonly nodeBp: number;
  readonly validatorsBp: number;
  readonly treasuryBp: number;
}

/** Seed 000's reward inputs, as the coordinator resolves them for one job. */
export interface RewardInputs {
  /** µHAI (`REWARD_BASE_HAI`). */
  readonly base: bigint;
  /** The model's manifest weight (HavnAI's default 10). */
  readonly weight: number;
  /** The pipeline's compute-cost factor, in basis points (sdxl 15 000, sd15 10 000, anime 7 000, others 10 000). */
  readonly factorBp: number;
  /** The runtime rewarded, in ms (already bounded). */
  readonly runtimeMs: number;
  /** `REWARD_BASELINE_RUNTIME`, in ms. */
  readonly baselineMs: number;
  readonly success: boolean;
}

/**
 * Seed 000's formula in µHAI: base × (weight ÷ 10) × compute-cost factor × max(1, runtime ÷
 * baseline) × success, rounded to the µHAI (the seed rounds HAI to six decimals).
 */
export function rewardOf(r: RewardInputs): bigint {
  if (!r.success || r.weight <= 0) return 0n;
  const weightMilli = BigInt(Math.round(r.weight * 1000));
  const runtime = BigInt(Math.max(Math.round(r.runtimeMs), Math.round(r.baselineMs)));
  const numerator = r.base * weightMilli * BigInt(r.factorBp) * runtime;
  const denominator = 10n * 1000n * 10_000n * BigInt(Math.round(r.baselineMs));
  return (numerator + denominator / 2n) / denominator;
}

/**
 * A job's charge split: the node's share and the validators' rounded down, the treasury takes
 * the rest — so the parts always sum to the charge, and no µHAI is made or lost.
 */
export function splitCharge(
  charge: bigint,
  shares: SplitShares,
): { node: bigint; validators: bigint; treasury: bigint } {
  const node = (charge * BigInt(shares.nodeBp)) / 10_000n;
  const validators = (charge * BigInt(shares.validatorsBp)) / 10_000n;
  return { node, validators, treasury: charge - node - validators };
}

/** Who a node's earnings go to: its operator's wallet, else their custodial one, else the node's own. */
export function operatorAccount(node: SettleCandidate["node"]): LedgerAccount {
  if (node.wallet) return ledgerAccounts.wallet(node.wallet);
  if (node.accountId) return ledgerAccounts.custodial(node.accountId);
  return ledgerAccounts.node(node.key);
}

/**
 * Settlement: once a completed job's challenge window has passed, its charge is split (node
 * operator, validators, treasury) and its node's operator is rewarded with new $HAI (seed 000),
 * in one transaction that also moves the job's money to `settled`. A job held by verification is
 * not settled here.
 */
export class Settlement {
  constructor(
    private readonly store: Store,
    private readonly catalog: ModelCatalog,
    private readonly config: CoordinatorConfig,
    private readonly log: FastifyBaseLogger,
    private readonly observe: (event: { settled: bigint; rewarded: bigint }) => void = () => {},
  ) {}

  /** Settles the jobs whose window has passed, in one transaction; returns how many. */
  async settleDue(now = Date.now()): Promise<number> {
    const due = (await this.store.settleableJobs(now - this.config.ledger.challengeWindowMs + 1, settleBatch)).filter(
      (c) => c.job.money,
    );
    if (due.length === 0) return 0;
    const results = await this.store.settleJobs(
      due.map((candidate) => {
        const transfer = this.settleTransfer(candidate, now);
        const reward = this.rewardFor(candidate, now);
        return {
          jobId: candidate.job.id,
          from: "charged" as const,
          ...(transfer && { settle: transfer }),
          ...(reward && { reward }),
          now,
        };
      }),
    );
    let settled = 0;
    results.forEach((r, i) => {
      if (!r.settled) return;
      settled++;
      const job = due[i]!.job;
      const charge = job.money!.charge ?? 0n;
      this.observe({ settled: charge, rewarded: r.rewarded });
      this.log.debug(
        { job: job.id, charge_uhai: charge.toString(), reward_uhai: r.rewarded.toString() },
        "job settled",
      );
    });
    return settled;
  }

  private settleTransfer(c: SettleCandidate, now: number): LedgerTransfer | undefined {
    const money = c.job.money;
    if (!money) return undefined;
    const charge = money.charge ?? 0n;
    const parts = splitCharge(charge, this.config.ledger.split);
    const postings = [
      { account: ledgerAccounts.escrow(c.job.id), amount: -charge },
      { account: operatorAccount(c.node), amount: parts.node },
      { account: ledgerAccounts.validators, amount: parts.validators },
      { account: ledgerAccounts.treasury, amount: parts.treasury },
    ].filter((p) => p.amount !== 0n);
    // A job that cost nothing settles with no transfer: only its money state moves.
    if (postings.length === 0) return undefined;
    return { kind: "settle", idempotencyKey: `settle:${c.job.id}`, jobId: c.job.id, now, postings };
  }

  /** The job's reward, before the budget; undefined when there is none (rewards off, self-dealing, nothing earned). */
  private rewardFor(
    c: SettleCandidate,
    now: number,
  ): { transfer: LedgerTransfer; budget: bigint; since: number } | undefined {
    const rewards = this.config.ledger.rewards;
    if (!rewards.enabled) return undefined;
    const operator = operatorAccount(c.node);
    // Self-dealing earns nothing: the payer runs the node that ran its job.
    if (c.job.money?.payer === operator || (c.node.accountId !== null && c.node.accountId === c.job.accountId))
      return undefined;
    const entry = this.catalog.entry(c.job.model);
    const claimedMs = c.job.receipt?.receipt.latency_ms ?? 0;
    const ceilingMs = (entry?.maxRuntimeSeconds ?? rewards.maxRuntimeSeconds) * 1000;
    const runtimeMs = Math.min(claimedMs, c.observedMs ?? claimedMs, ceilingMs);
    const pipeline = entry?.pipeline ?? "";
    const amount = rewardOf({
      base: rewards.base,
      weight: entry?.weight ?? 10,
      factorBp: rewards.pipelineFactorsBp[pipeline] ?? 10_000,
      runtimeMs,
      baselineMs: rewards.baselineRuntimeSeconds * 1000,
      success: true,
    });
    if (amount <= 0n) return undefined;
    const since = Math.floor(now / rewards.periodMs) * rewards.periodMs;
    return {
      budget: rewards.budgetPerPeriod,
      since,
      transfer: {
        kind: "reward",
        idempotencyKey: `reward:${c.job.id}`,
        jobId: c.job.id,
        now,
        memo: { runtime_ms: runtimeMs, claimed_ms: claimedMs, observed_ms: c.observedMs, pipeline: pipeline || null },
        postings: [
          { account: ledgerAccounts.mint, amount: -amount },
          { account: operator, amount },
        ],
      },
    };
  }
}
