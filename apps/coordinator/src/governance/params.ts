import { HavnError } from "@havn/protocol";
import type { Store } from "@havn/store";
import type { FastifyBaseLogger } from "fastify";
import type { CoordinatorConfig } from "../config.js";

/** The unit a parameter is kept in. Amounts of $HAI are µHAI (1 HAI = 1 000 000 µHAI). */
export type ParamUnit = "µHAI" | "bp" | "percent" | "ms" | "count";

export interface ParamDefinition {
  readonly unit: ParamUnit;
  /** Why it exists and what moving it does. */
  readonly reason: string;
  readonly min: bigint;
  readonly max: bigint;
  /** Its value at first start, from the coordinator's configuration. */
  readonly initial: (c: CoordinatorConfig) => bigint;
  /** HavnAI's environment variable for it, honoured at first start: its name, and how its text reads. */
  readonly env?: { readonly name: string; readonly read: (text: string) => bigint };
}

const hai = 1_000_000n;
const day = 86_400_000n;
/** HavnAI writes amounts in HAI (`0.05`) and factors as multipliers (`1.5`). */
const fromDecimal = (scale: number) => (text: string) => {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new Error(`not a non-negative number: ${text}`);
  return BigInt(Math.round(n * scale));
};
const big = (n: number | bigint) => BigInt(n);

function def(
  unit: ParamUnit,
  min: number | bigint,
  max: number | bigint,
  initial: (c: CoordinatorConfig) => number | bigint,
  reason: string,
  env?: ParamDefinition["env"],
): ParamDefinition {
  return { unit, min: big(min), max: big(max), initial: (c) => big(initial(c)), reason, ...(env && { env }) };
}

/**
 * Every parameter governance owns, with its unit, bounds and reason (seed 001: "most parameters
 * are not hardcoded; they're adjustable by governance"). Each starts from configuration at first
 * start; afterwards only an executed proposal (or an admin's act in dev mode) changes it.
 */
export const paramDefinitions = {
  // How a job's charge splits without a workflow (sums to 10 000).
  "split.node_bp": def("bp", 0, 10_000, (c) => c.ledger.split.nodeBp, "The node operator's share of a job's charge."),
  "split.validators_bp": def("bp", 0, 10_000, (c) => c.ledger.split.validatorsBp, "The validator pool's share."),
  "split.treasury_bp": def("bp", 0, 10_000, (c) => c.ledger.split.treasuryBp, "The treasury's share."),
  // Fee multiplier per compute class (seed 002).
  "fees.S_bp": def("bp", 0, 1_000_000, (c) => c.ledger.classFeesBp.S, "The fee multiplier of compute class S."),
  "fees.M_bp": def("bp", 0, 1_000_000, (c) => c.ledger.classFeesBp.M, "The fee multiplier of compute class M."),
  "fees.L_bp": def("bp", 0, 1_000_000, (c) => c.ledger.classFeesBp.L, "The fee multiplier of compute class L."),
  "fees.XL_bp": def("bp", 0, 1_000_000, (c) => c.ledger.classFeesBp.XL, "The fee multiplier of compute class XL."),
  // Seed 000's rewards.
  "rewards.base": def(
    "µHAI",
    0,
    1_000_000n * hai,
    (c) => c.ledger.rewards.base,
    "New $HAI a job of weight 10 and baseline runtime earns its operator.",
    { name: "REWARD_BASE_HAI", read: fromDecimal(1e6) },
  ),
  "rewards.baseline_runtime_ms": def(
    "ms",
    1,
    3_600_000,
    (c) => Math.round(c.ledger.rewards.baselineRuntimeSeconds * 1000),
    "A job running longer than this earns proportionally more.",
    { name: "REWARD_BASELINE_RUNTIME", read: fromDecimal(1000) },
  ),
  "rewards.factor_sdxl_bp": def(
    "bp",
    0,
    1_000_000,
    (c) => c.ledger.rewards.pipelineFactorsBp.sdxl ?? 10_000,
    "The compute-cost factor of the sdxl pipeline.",
    { name: "REWARD_SDXL_FACTOR", read: fromDecimal(10_000) },
  ),
  "rewards.factor_sd15_bp": def(
    "bp",
    0,
    1_000_000,
    (c) => c.ledger.rewards.pipelineFactorsBp.sd15 ?? 10_000,
    "The compute-cost factor of the sd15 pipeline.",
    { name: "REWARD_SD15_FACTOR", read: fromDecimal(10_000) },
  ),
  "rewards.factor_anime_bp": def(
    "bp",
    0,
    1_000_000,
    (c) => c.ledger.rewards.pipelineFactorsBp.anime ?? 10_000,
    "The compute-cost factor of the anime and cartoon pipelines.",
    { name: "REWARD_ANIME_FACTOR", read: fromDecimal(10_000) },
  ),
  "rewards.max_runtime_ms": def(
    "ms",
    1_000,
    86_400_000,
    (c) => Math.round(c.ledger.rewards.maxRuntimeSeconds * 1000),
    "The most runtime a job is rewarded for, unless its model's manifest gives one.",
  ),
  "rewards.budget_per_period": def(
    "µHAI",
    0,
    10n ** 15n,
    (c) => c.ledger.rewards.budgetPerPeriod,
    "New $HAI minted as rewards per period, at most.",
  ),
  "rewards.period_ms": def("ms", 1_000, 365n * day, (c) => c.ledger.rewards.periodMs, "The rewards budget's period."),
  // Seed 001's workflow floors.
  "workflows.floor_node_pct": def(
    "percent",
    0,
    100,
    (c) => c.workflows.floors.node,
    "The least share of a workflow run its node is paid.",
  ),
  "workflows.floor_validators_pct": def(
    "percent",
    0,
    100,
    (c) => c.workflows.floors.validators,
    "The least share of a workflow run the validators are paid.",
  ),
  "workflows.floor_treasury_pct": def(
    "percent",
    0,
    100,
    (c) => c.workflows.floors.treasury,
    "The least share of a workflow run the treasury is paid.",
  ),
  "workflows.derivative_upstream_pct": def(
    "percent",
    0,
    100,
    (c) => c.workflows.derivativeUpstream,
    "The least upstream share of a derivative workflow: what its origin is owed.",
  ),
  // Stake (seeds 001, 002).
  "stake.floor_S": def(
    "µHAI",
    0,
    10n ** 15n,
    (c) => c.staking.floors.S,
    "Stake a node of compute class S must have bonded to get jobs (seed 002's collateral floor).",
  ),
  "stake.floor_M": def(
    "µHAI",
    0,
    10n ** 15n,
    (c) => c.staking.floors.M,
    "Stake a node of compute class M must have bonded to get jobs (seed 002's collateral floor).",
  ),
  "stake.floor_L": def(
    "µHAI",
    0,
    10n ** 15n,
    (c) => c.staking.floors.L,
    "Stake a node of compute class L must have bonded to get jobs (seed 002's collateral floor).",
  ),
  "stake.floor_XL": def(
    "µHAI",
    0,
    10n ** 15n,
    (c) => c.staking.floors.XL,
    "Stake a node of compute class XL must have bonded to get jobs (seed 002's collateral floor).",
  ),
  "stake.validator_floor": def(
    "µHAI",
    0,
    10n ** 15n,
    (c) => c.staking.validatorFloor,
    "Stake a validator must have bonded to sign off on executions.",
  ),
  "stake.slots_at_floor": def(
    "count",
    1,
    4096,
    (c) => c.staking.slotsAtFloor,
    "Slots a node's floor pays for: each further slot needs floor ÷ this more stake.",
  ),
  "stake.max_slots": def(
    "count",
    1,
    4_096,
    (c) => c.maxNodeSlots,
    "Slots a node may advertise, at most: more are ignored (a node cannot hoard jobs).",
  ),
  "stake.unbonding_delay_ms": def(
    "ms",
    0,
    365n * day,
    (c) => c.staking.unbondingDelayMs,
    "How long unbonded stake stays slashable before it goes back to its owner.",
  ),
  "slash.invalid_result": def(
    "µHAI",
    0,
    10n ** 15n,
    (c) => c.staking.slash.invalidResult,
    "Taken from a node that signed a result the coordinator proved wrong.",
  ),
  "slash.fraud": def(
    "µHAI",
    0,
    10n ** 15n,
    (c) => c.staking.slash.fraud,
    "Taken from a node or validator a validator verdict proves fraudulent.",
  ),
  "slash.downtime": def(
    "µHAI",
    0,
    10n ** 15n,
    (c) => c.staking.slash.downtime,
    "Taken from a node when its stake is quarantined for missed heartbeats.",
  ),
  "slash.injured_share_bp": def(
    "bp",
    0,
    10_000,
    (c) => c.staking.slash.injuredShareBp,
    "The share of a slash paid to the client whose job the offence hurt; the treasury gets the rest.",
  ),
  // Quarantine (seed 002).
  "quarantine.epoch_ms": def("ms", 60_000, 7n * day, (c) => c.quarantine.epochMs, "One heartbeat epoch."),
  "quarantine.missed_epochs": def(
    "count",
    1,
    100,
    (c) => c.quarantine.missedEpochs,
    "Epochs in a row with missed heartbeats that quarantine a node's stake.",
  ),
  "quarantine.reconnect_grace_ms": def(
    "ms",
    0,
    3_600_000,
    (c) => c.quarantine.reconnectGraceMs,
    "Time away in one epoch (reconnects) that still leaves it clean: a network blip or a node's restart is not downtime. At most half an epoch applies.",
  ),
  // The monthly pool (seed 003).
  "pool.amount": def(
    "µHAI",
    0,
    10n ** 15n,
    (c) => c.pool.amount,
    "Paid from the treasury each period to nodes that did verified work, by reputation share.",
  ),
  "pool.min_completed": def(
    "count",
    1,
    1_000_000,
    (c) => c.pool.minCompleted,
    "Accepted results a node needs in a period to share its pool: uptime alone, or a job per throwaway node, earns nothing.",
  ),
  "pool.period_ms": def("ms", 0, 365n * day, (c) => c.pool.periodMs, "The pool's period; 0: calendar months (UTC)."),
  // Governance itself.
  "governance.voting_period_ms": def(
    "ms",
    1_000,
    90n * day,
    (c) => c.governance.votingPeriodMs,
    "How long a proposal is open for votes.",
  ),
  "governance.quorum_bp": def(
    "bp",
    0,
    10_000,
    (c) => c.governance.quorumBp,
    "The share of all bonded stake that must vote for a proposal to count.",
  ),
  "governance.proposal_stake": def(
    "µHAI",
    0,
    10n ** 15n,
    (c) => c.governance.proposalStake,
    "Stake an account must have bonded to propose: proposals cost the network review.",
  ),
  "governance.threshold_bp": def(
    "bp",
    5_000,
    10_000,
    (c) => c.governance.thresholdBp,
    "The share of yes among yes and no votes a proposal needs to pass.",
  ),
} as const satisfies Record<string, ParamDefinition>;

export type ParamName = keyof typeof paramDefinitions;
export const paramNames = Object.keys(paramDefinitions) as ParamName[];
export type ParamValues = Readonly<Record<ParamName, bigint>>;

export function isParamName(name: string): name is ParamName {
  return Object.hasOwn(paramDefinitions, name);
}

/**
 * Checks a whole set of values (a proposal changes several at once): each within its bounds, and
 * the rules across them (the split sums to 10 000; the workflow floors to at most 100). Returns
 * what is wrong, or nothing.
 */
export function paramProblems(values: Readonly<Record<string, bigint>>): string[] {
  const problems: string[] = [];
  for (const name of paramNames) {
    const v = values[name];
    const d: ParamDefinition = paramDefinitions[name];
    if (v === undefined) problems.push(`${name} is missing`);
    else if (v < d.min || v > d.max) problems.push(`${name} must be within ${d.min}–${d.max} ${d.unit}`);
  }
  const sum = (...names: ParamName[]) => names.reduce((s, n) => s + (values[n] ?? 0n), 0n);
  if (sum("split.node_bp", "split.validators_bp", "split.treasury_bp") !== 10_000n)
    problems.push("split.node_bp + split.validators_bp + split.treasury_bp must be 10000");
  if (sum("workflows.floor_node_pct", "workflows.floor_validators_pct", "workflows.floor_treasury_pct") > 100n)
    problems.push("the workflow floors must sum to at most 100");
  // Stake that voted stays bonded or unbonding — slashable, and unable to vote again from another
  // account — until the vote is decided.
  if ((values["stake.unbonding_delay_ms"] ?? 0n) < (values["governance.voting_period_ms"] ?? 0n))
    problems.push("stake.unbonding_delay_ms must be at least governance.voting_period_ms");
  return problems;
}

/** Parameter values at first start: configuration, then HavnAI's environment names over it. */
export function initialParams(config: CoordinatorConfig, env: NodeJS.ProcessEnv): Record<ParamName, bigint> {
  const values = {} as Record<ParamName, bigint>;
  for (const name of paramNames) {
    const d: ParamDefinition = paramDefinitions[name];
    const text = d.env && env[d.env.name];
    if (d.env && text !== undefined && text !== "") {
      try {
        values[name] = d.env.read(text);
      } catch (err) {
        throw new HavnError("CONFIG_INVALID", `${d.env.name}: ${(err as Error).message}.`);
      }
    } else values[name] = d.initial(config);
  }
  const problems = paramProblems(values);
  if (problems.length > 0) throw new HavnError("CONFIG_INVALID", `Invalid parameters: ${problems.join("; ")}.`);
  return values;
}

/**
 * What settlement, pricing and the workflow registry read, in the shapes configuration gave them,
 * from the parameter table as it stands.
 */
export interface GovernedTerms {
  readonly split: { readonly nodeBp: number; readonly validatorsBp: number; readonly treasuryBp: number };
  readonly classFeesBp: Readonly<Record<"S" | "M" | "L" | "XL", number>>;
  readonly rewards: {
    readonly base: bigint;
    readonly baselineRuntimeSeconds: number;
    readonly pipelineFactorsBp: Readonly<Record<string, number>>;
    readonly maxRuntimeSeconds: number;
    readonly budgetPerPeriod: bigint;
    readonly periodMs: number;
  };
  readonly workflowFloors: { readonly node: number; readonly validators: number; readonly treasury: number };
  readonly derivativeUpstream: number;
}

/** Terms straight from configuration: for a settlement or pricing built without the table (tests). */
export function configTerms(c: CoordinatorConfig): GovernedTerms {
  return {
    split: c.ledger.split,
    classFeesBp: c.ledger.classFeesBp,
    rewards: c.ledger.rewards,
    workflowFloors: c.workflows.floors,
    derivativeUpstream: c.workflows.derivativeUpstream,
  };
}

const termsCache = new WeakMap<ParamValues, GovernedTerms>();

export function governedTerms(v: ParamValues): GovernedTerms {
  let terms = termsCache.get(v);
  if (terms) return terms;
  const n = (name: ParamName) => Number(v[name]);
  terms = {
    split: { nodeBp: n("split.node_bp"), validatorsBp: n("split.validators_bp"), treasuryBp: n("split.treasury_bp") },
    classFeesBp: { S: n("fees.S_bp"), M: n("fees.M_bp"), L: n("fees.L_bp"), XL: n("fees.XL_bp") },
    rewards: {
      base: v["rewards.base"],
      baselineRuntimeSeconds: n("rewards.baseline_runtime_ms") / 1000,
      pipelineFactorsBp: {
        sdxl: n("rewards.factor_sdxl_bp"),
        sd15: n("rewards.factor_sd15_bp"),
        anime: n("rewards.factor_anime_bp"),
        cartoon: n("rewards.factor_anime_bp"),
      },
      maxRuntimeSeconds: n("rewards.max_runtime_ms") / 1000,
      budgetPerPeriod: v["rewards.budget_per_period"],
      periodMs: n("rewards.period_ms"),
    },
    workflowFloors: {
      node: n("workflows.floor_node_pct"),
      validators: n("workflows.floor_validators_pct"),
      treasury: n("workflows.floor_treasury_pct"),
    },
    derivativeUpstream: n("workflows.derivative_upstream_pct"),
  };
  termsCache.set(v, terms);
  return terms;
}

/** How often a replica reads the table again (another replica's proposal may have changed it), in ms. */
const refreshMs = 5_000;

/**
 * The parameter table as this replica holds it: read at start and after each decided proposal,
 * and every few seconds for changes decided elsewhere. Readers get a consistent snapshot.
 */
export class Params {
  private values!: ParamValues;
  private meta = new Map<string, { updatedAt: number; updatedBy: string }>();
  private readAt = 0;
  private reading: Promise<void> | undefined;
  private readonly listeners: ((values: ParamValues) => void)[] = [];

  constructor(
    private readonly store: Store,
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * First start: the table takes configuration's values. Later starts: a configured value that
   * differs from the table's is reported, not applied (only governance changes a parameter).
   */
  async init(config: CoordinatorConfig, env: NodeJS.ProcessEnv = process.env, now = Date.now()): Promise<void> {
    const configured = initialParams(config, env);
    await this.store.governance.initParams(
      Object.fromEntries(paramNames.map((n) => [n, configured[n].toString()])),
      now,
    );
    await this.reload(now);
    for (const name of paramNames) {
      if (this.values[name] === configured[name]) continue;
      const m = this.meta.get(name);
      this.log.warn(
        {
          param: name,
          configured: configured[name].toString(),
          value: this.values[name].toString(),
          set_by: m?.updatedBy,
        },
        "a configured parameter differs from the parameter table; governance holds it, so configuration is not applied",
      );
    }
  }

  get current(): ParamValues {
    return this.values;
  }

  /** The parameters as settlement, pricing and workflows read them. */
  terms(): GovernedTerms {
    return governedTerms(this.values);
  }

  /** A parameter as a number (bounded well below 2^53: basis points, percents, counts, ms). */
  num(name: ParamName): number {
    return Number(this.values[name]);
  }

  /** The table with who set each value and when, for `GET /v1/params`. */
  described() {
    return paramNames.map((name) => {
      const d: ParamDefinition = paramDefinitions[name];
      const m = this.meta.get(name);
      return {
        name,
        value: this.values[name].toString(),
        unit: d.unit,
        min: d.min.toString(),
        max: d.max.toString(),
        reason: d.reason,
        ...(d.env && { env: d.env.name }),
        updated_at: m ? new Date(m.updatedAt).toISOString() : null,
        updated_by: m?.updatedBy ?? null,
      };
    });
  }

  onChange(listener: (values: ParamValues) => void): void {
    this.listeners.push(listener);
  }

  /** Reads the table again when it was last read more than a few seconds ago. */
  async refreshIfStale(now = Date.now()): Promise<void> {
    if (now - this.readAt >= refreshMs) await this.reload(now);
  }

  async reload(now = Date.now()): Promise<void> {
    this.reading ??= (async () => {
      try {
        const rows = await this.store.governance.params();
        const values = { ...(this.values ?? {}) } as Record<ParamName, bigint>;
        let changed = this.values === undefined;
        for (const r of rows) {
          if (!isParamName(r.name)) continue;
          const v = BigInt(r.value);
          if (values[r.name] !== v) changed = true;
          values[r.name] = v;
          this.meta.set(r.name, { updatedAt: r.updatedAt, updatedBy: r.updatedBy });
        }
        const problems = paramProblems(values);
        if (problems.length > 0 && this.values !== undefined) {
          // A table that breaks the rules is not taken up: the values before it stay.
          this.log.error({ problems }, "the parameter table breaks its rules; keeping the values read before");
          this.readAt = now;
          return;
        }
        this.values = Object.freeze(values);
        this.readAt = now;
        if (changed) for (const l of this.listeners) l(this.values);
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }
}
