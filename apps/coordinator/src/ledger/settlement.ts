import { HavnError } from "@havn/protocol";
import {
  ledgerAccounts,
  type LedgerAccount,
  type LedgerTransfer,
  type SettleCandidate,
  type SettleJobInput,
  type SettlementSealer,
  type Store,
} from "@havn/store";
import { royaltySplit, type RoyaltySplitResult, type RoyaltyWorkflow } from "../workflows/royalties.js";
import type { WorkflowService } from "../workflows/workflow-service.js";
import type { FastifyBaseLogger } from "fastify";
import type { CoordinatorConfig } from "../config.js";
import type { ModelCatalog } from "../router/model-catalog.js";
import { configTerms, type GovernedTerms } from "../governance/params.js";

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

/** Money settlement moves, for metrics: a split, a reward minted, a hold, a held charge refunded. */
export type SettlementEvent = "settled" | "rewarded" | "held" | "refunded";

/** What a hold ends with: the charge split as usual (the node's favour), or back to the payer. */
export type HoldVerdict = "settle" | "refund";

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
    private readonly observe: (what: SettlementEvent, amount: bigint) => void = () => {},
    /** Splits workflow runs by their royalties (without it, every run splits by `ledger.split`). */
    private readonly workflows?: WorkflowService,
    /** Records each settled run in the execution log, signed (without it, nothing is logged). */
    private readonly sealer?: SettlementSealer,
    /** The split, rewards and workflow floors as governance has them now (default: configuration's). */
    private readonly terms: () => GovernedTerms = () => configTerms(config),
    /** Where a node's earnings go now (a quarantined node's are held): default its operator. */
    private readonly payee: (nodeKey: string, operator: LedgerAccount) => LedgerAccount = (_k, operator) => operator,
  ) {}

  /** Settles the jobs whose window has passed, in one transaction; returns how many. */
  async settleDue(now = Date.now()): Promise<number> {
    // Royalties held for a workflow whose flag was cleared while a settlement was under way go on.
    await this.workflows?.releaseCleared(now);
    const due = (
      await this.store.ledger.settleable(now - this.config.ledger.challengeWindowMs + 1, settleBatch)
    ).filter((c) => c.job.money);
    if (due.length === 0) return 0;
    const inputs = [];
    const graphs = new Map<string, RoyaltyWorkflow | null>(); // workflows read once per pass
    for (const candidate of due) inputs.push(await this.settleInput(candidate, "charged", now, graphs));
    const results = await this.store.ledger.settleMany(inputs, this.sealer);
    let settled = 0;
    results.forEach((r, i) => {
      if (!r.settled) return;
      settled++;
      this.settledOne(due[i]!, r.rewarded, "debug");
    });
    return settled;
  }

  private settledOne(c: SettleCandidate, rewarded: bigint, level: "debug" | "info", extra: object = {}): void {
    const charge = c.job.money!.charge ?? 0n;
    this.observe("settled", charge);
    if (rewarded > 0n) this.observe("rewarded", rewarded);
    this.log[level](
      { job: c.job.id, charge_uhai: charge.toString(), reward_uhai: rewarded.toString(), ...extra },
      "job settled",
    );
  }

  /**
   * Holds a completed job's settlement — a dispute, until verification gives verdicts — so its
   * charge stays in escrow: charged → held. LEDGER_SETTLEMENT_CONFLICT when it is not charged.
   */
  async hold(jobId: string, reason: string, by: string): Promise<void> {
    if (!(await this.store.ledger.hold(jobId))) throw await this.conflict(jobId, "charged");
    const job = await this.store.jobs.get(jobId);
    this.observe("held", job?.money?.charge ?? 0n);
    this.log.info({ job: jobId, charge_uhai: String(job?.money?.charge ?? 0n), reason, by }, "job settlement held");
  }

  /** Ends a hold: the charge split as usual (`settle`), or returned to the payer (`refund`). */
  async release(jobId: string, verdict: HoldVerdict, reason: string, by: string, now = Date.now()): Promise<void> {
    if (verdict === "refund") {
      if (!(await this.store.ledger.refundHeld(jobId, now))) throw await this.conflict(jobId, "held");
      const job = await this.store.jobs.get(jobId);
      this.observe("refunded", job?.money?.charge ?? 0n);
      this.log.info(
        { job: jobId, refund_uhai: String(job?.money?.charge ?? 0n), payer: job?.money?.payer, reason, by },
        "held job refunded",
      );
      return;
    }
    const candidate = await this.store.ledger.heldJob(jobId);
    if (!candidate) throw await this.conflict(jobId, "held");
    const [result] = await this.store.ledger.settleMany([await this.settleInput(candidate, "held", now)], this.sealer);
    if (!result?.settled) throw await this.conflict(jobId, "held");
    this.settledOne(candidate, result.rewarded, "info", { reason, by, hold: "released" });
  }

  private async conflict(jobId: string, needed: "charged" | "held"): Promise<HavnError> {
    const job = await this.store.jobs.get(jobId);
    if (!job) return new HavnError("JOB_NOT_FOUND", "No job with this id.", { context: { Job: jobId.slice(0, 80) } });
    const state = job.money?.state ?? "none (a free job)";
    return new HavnError("LEDGER_SETTLEMENT_CONFLICT", `The job's money is ${state}; this change needs it ${needed}.`, {
      context: { Job: jobId, Money: state },
    });
  }

  /** One job's settlement: its split (by its workflow's royalties, if it ran one), its reward. */
  private async settleInput(
    c: SettleCandidate,
    from: "charged" | "held",
    now: number,
    graphs?: Map<string, RoyaltyWorkflow | null>,
  ): Promise<SettleJobInput> {
    const split = await this.splitOf(c, graphs);
    const transfer = this.settleTransfer(c, split.credits, now);
    const reward = this.rewardFor(c, now);
    const money = c.job.money;
    // The settled run as the public log shows it: ids and amounts, never the prompt or output.
    const record = money && {
      settlement: {
        v: 1 as const,
        job_id: c.job.id,
        workflow_id: c.job.workflowId,
        caller: money.payer,
        node_key: c.node.key,
        fee_uhai: (money.charge ?? 0n).toString(),
        split: [...split.credits]
          .filter(([, amount]) => amount > 0n)
          .map(([account, amount]) => ({ account, amount_uhai: amount.toString() })),
        settled_at: now,
      },
      attemptId: c.job.attemptId ?? "",
      nodeKey: c.node.key,
    };
    return {
      jobId: c.job.id,
      from,
      ...(transfer && { settle: transfer }),
      ...(reward && { reward }),
      ...(split.earnings.length > 0 && { earnings: split.earnings }),
      ...(record && { record }),
      now,
    };
  }

  /** Who the charge goes to: the workflow's royalty split for a workflow run, else `ledger.split`. */
  private async splitOf(
    c: SettleCandidate,
    graphs?: Map<string, RoyaltyWorkflow | null>,
  ): Promise<Pick<RoyaltySplitResult, "credits" | "earnings">> {
    const charge = c.job.money?.charge ?? 0n;
    const node = this.payee(c.node.key, operatorAccount(c.node));
    const terms = this.terms();
    if (c.job.workflowId && this.workflows) {
      const graph = await this.workflows.royaltyGraph(c.job.workflowId, graphs);
      const run = graph.get(c.job.workflowId);
      if (run) return royaltySplit(charge, run, (id) => graph.get(id), { node }, terms.workflowFloors);
    }
    const parts = splitCharge(charge, terms.split);
    const credits = new Map<LedgerAccount, bigint>();
    for (const [account, amount] of [
      [node, parts.node],
      [ledgerAccounts.validators, parts.validators],
      [ledgerAccounts.treasury, parts.treasury],
    ] as const)
      credits.set(account, (credits.get(account) ?? 0n) + amount);
    return { credits, earnings: [] };
  }

  private settleTransfer(
    c: SettleCandidate,
    credits: ReadonlyMap<LedgerAccount, bigint>,
    now: number,
  ): LedgerTransfer | undefined {
    const charge = c.job.money?.charge ?? 0n;
    const postings = [
      { account: ledgerAccounts.escrow(c.job.id), amount: -charge },
      ...[...credits].map(([account, amount]) => ({ account, amount })),
    ].filter((p) => p.amount !== 0n);
    // A job that cost nothing settles with no transfer: only its money state moves.
    if (postings.length === 0) return undefined;
    return {
      kind: "settle",
      idempotencyKey: `settle:${c.job.id}`,
      jobId: c.job.id,
      now,
      postings,
      ...(c.job.workflowId && { memo: { workflow: c.job.workflowId } }),
    };
  }

  /** The job's reward, before the budget; undefined when there is none (rewards off, self-dealing, nothing earned). */
  private rewardFor(
    c: SettleCandidate,
    now: number,
  ): { transfer: LedgerTransfer; budget: bigint; since: number } | undefined {
    if (!this.config.ledger.rewards.enabled) return undefined;
    const rewards = this.terms().rewards;
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
          { account: this.payee(c.node.key, operator), amount },
        ],
      },
    };
  }
}
