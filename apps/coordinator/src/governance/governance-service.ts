import { randomUUID } from "node:crypto";
import { HavnError } from "@havn/protocol";
import type { HoldRow, ProposalEffects, ProposalRow, Store, Tally, VoteChoice } from "@havn/store";
import type { FastifyBaseLogger } from "fastify";
import { z } from "zod";
import type { CoordinatorConfig } from "../config.js";
import type { LedgerActor } from "../ledger/ledger-service.js";
import type { NodeRegistry } from "../nodes/node-registry.js";
import { modelNamePattern, normaliseModelName, type ModelCatalog } from "../router/model-catalog.js";
import type { StakeService } from "../staking/stake-service.js";
import type { WorkflowService } from "../workflows/workflow-service.js";
import { isParamName, paramProblems, type ParamName, type Params } from "./params.js";

const modelName = z.string().regex(modelNamePattern, "a model name");
const nodeRef = z.string().min(1).max(200);

/** What a proposal does. Admins may take the `emergency` ones without a vote in production. */
export const proposalActionSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("set_params"),
    params: z
      .record(z.string().max(64), z.union([z.string().regex(/^[0-9]{1,21}$/), z.number().int().min(0)]))
      .refine((p) => Object.keys(p).length > 0 && Object.keys(p).length <= 64, "1 to 64 parameters"),
  }),
  z.strictObject({ type: z.enum(["pause_node", "resume_node"]), node: nodeRef }),
  z.strictObject({
    type: z.enum(["pause_model", "resume_model", "flag_model", "unflag_model", "admit_model"]),
    model: modelName,
  }),
  z.strictObject({ type: z.enum(["flag_workflow", "unflag_workflow"]), workflow: z.string().min(1).max(100) }),
]);
export type ProposalAction = z.infer<typeof proposalActionSchema>;

/** What an admin may do without a vote outside dev mode: stop harm now, or let it go on. */
const emergencyActions = new Set<ProposalAction["type"]>([
  "pause_node",
  "resume_node",
  "pause_model",
  "resume_model",
  "flag_model",
  "unflag_model",
  "flag_workflow",
  "unflag_workflow",
]);

/** How many due proposals one pass decides, at most. */
const decideBatch = 50;

/**
 * Governance (seed 001): parameters change, nodes and model names are paused or flagged, and
 * workflows are flagged only through proposals — voted on with bonded stake, decided once their
 * period ends (quorum, then threshold), executed in the transaction that decides them. An admin's
 * act (any action in dev mode; emergencies in production) is recorded the same way, as a proposal
 * executed at once. Every step is replay-safe: a proposal's idempotency key, one vote per account.
 */
export class GovernanceService {
  private running: Promise<number> | undefined;
  private appliedHolds: string | undefined;

  constructor(
    private readonly deps: {
      readonly store: Store;
      readonly params: Params;
      readonly stake: StakeService;
      readonly registry: NodeRegistry;
      readonly catalog: ModelCatalog;
      readonly workflows: WorkflowService;
      readonly config: CoordinatorConfig;
      readonly log: FastifyBaseLogger;
    },
  ) {}

  /** Reads what governance holds and applies it: paused nodes, paused, flagged and admitted model names. */
  async applyHolds(): Promise<void> {
    const holds = await this.deps.store.governance.holds();
    // Read again every few seconds: applied (every node assessed) only when something changed.
    const signature = JSON.stringify(holds.map((h) => [h.subject, h.kind]));
    if (signature === this.appliedHolds) return;
    this.appliedHolds = signature;
    const paused = new Set<string>();
    const admitted: string[] = [];
    const held = new Map<string, "paused" | "flagged">();
    for (const h of holds) {
      if (h.subject.startsWith("node:") && h.kind === "paused") paused.add(h.subject.slice(5));
      if (!h.subject.startsWith("model:")) continue;
      const name = h.subject.slice(6);
      if (h.kind === "admitted") admitted.push(name);
      else held.set(name, h.kind);
    }
    const { stake, registry, catalog } = this.deps;
    stake.paused.clear();
    for (const k of paused) stake.paused.add(k);
    catalog.govern(admitted, held);
    registry.heldModels = new Set([...held.keys()].map((n) => catalog.canonical(n)));
    for (const s of registry.all()) stake.assess(s);
  }

  /** Checks an action against the network as it is now; returns it with the node resolved to its key. */
  private async validate(action: ProposalAction): Promise<ProposalAction> {
    const invalid = (problems: string[]) =>
      new HavnError("GOVERNANCE_INVALID", `This proposal cannot execute: ${problems.join("; ")}.`, {
        details: { problems },
      });
    switch (action.type) {
      case "set_params": {
        const unknown = Object.keys(action.params).filter((n) => !isParamName(n));
        if (unknown.length > 0) throw invalid(unknown.map((n) => `no parameter is named ${n}`));
        const problems = paramProblems(this.withChanges(action.params));
        if (problems.length > 0) throw invalid(problems);
        return { ...action, params: Object.fromEntries(Object.entries(action.params).map(([n, v]) => [n, String(v)])) };
      }
      case "pause_node":
      case "resume_node":
        return { ...action, node: (await this.deps.stake.findNode(action.node)).key };
      case "flag_workflow":
      case "unflag_workflow":
        if (!(await this.deps.store.workflows.get(action.workflow)))
          throw new HavnError("WORKFLOW_NOT_FOUND", "No workflow with this id.", {
            context: { Workflow: action.workflow },
          });
        return action;
      default:
        return { ...action, model: normaliseModelName(action.model) };
    }
  }

  private withChanges(changes: Readonly<Record<string, string | number>>): Record<string, bigint> {
    const values: Record<string, bigint> = { ...this.deps.params.current };
    for (const [n, v] of Object.entries(changes)) values[n] = BigInt(v);
    return values;
  }

  /**
   * Records a proposal (`admin`: an admin's act, executed at once). A replay of its idempotency
   * key records nothing and returns the first.
   */
  async propose(
    actor: LedgerActor,
    input: { readonly action: ProposalAction; readonly reason: string; readonly admin?: boolean },
    idempotencyKey: string | null,
    now = Date.now(),
  ): Promise<{ proposal: ProposalRow; replayed: boolean }> {
    const { store, config } = this.deps;
    const action = await this.validate(input.action);
    if (input.admin) {
      if (!actor.admin) throw new HavnError("AUTH_FORBIDDEN", "Only an admin acts without a vote.");
      if (config.mode !== "dev" && !emergencyActions.has(action.type))
        throw new HavnError(
          "GOVERNANCE_ADMIN_FORBIDDEN",
          "Outside dev mode an admin acts without a vote only in emergencies (pausing, resuming, flagging); propose this instead.",
        );
    } else {
      const needed = this.deps.params.current["governance.proposal_stake"];
      const weight = await this.deps.stake.weightOf(actor.accountId);
      if (weight <= 0n || weight < needed)
        throw new HavnError(
          "GOVERNANCE_NO_STAKE",
          `Proposals come from accounts with at least ${needed} µHAI of stake bonded (governance.proposal_stake); this one has ${weight}.`,
        );
    }
    const recorded = await store.governance.propose({
      id: `prop-${randomUUID()}`,
      idempotencyKey: `proposal:${actor.accountId}:${idempotencyKey ?? randomUUID()}`,
      proposer: actor.accountId,
      action,
      reason: input.reason,
      byAdmin: input.admin === true,
      createdAt: now,
      endsAt: input.admin ? now : now + this.deps.params.num("governance.voting_period_ms"),
    });
    if (input.admin && !recorded.replayed) {
      await this.execute(
        recorded.proposal,
        { yes: "0", no: "0", abstain: "0", eligible: "0", outcome: "an admin's act" },
        now,
      );
      return { proposal: (await store.governance.proposal(recorded.proposal.id))!, replayed: false };
    }
    if (!recorded.replayed)
      this.deps.log.info(
        { proposal: recorded.proposal.id, action: action.type, by: actor.accountId },
        "proposal opened",
      );
    return recorded;
  }

  /** A vote, weighted by the voter's bonded stake now. The same vote again is a replay; another choice is refused. */
  async vote(actor: LedgerActor, proposalId: string, choice: VoteChoice, now = Date.now()) {
    const weight = await this.deps.stake.weightOf(actor.accountId);
    if (weight <= 0n)
      throw new HavnError("GOVERNANCE_NO_STAKE", "Votes are weighted by bonded stake; this account has none bonded.");
    const r = await this.deps.store.governance.vote({
      proposalId,
      voter: actor.accountId,
      choice,
      weight: weight.toString(),
      at: now,
    });
    if (r.ok) return r;
    if (r.reason === "not_found") throw notFound(proposalId);
    if (r.reason === "closed")
      throw new HavnError("GOVERNANCE_VOTING_CLOSED", "This proposal's voting period is over.", {
        context: { Proposal: proposalId },
      });
    throw new HavnError("GOVERNANCE_ALREADY_VOTED", `This account already voted ${r.vote?.choice} on this proposal.`, {
      context: { Proposal: proposalId },
    });
  }

  async get(id: string) {
    const proposal = await this.deps.store.governance.proposal(id);
    if (!proposal) throw notFound(id);
    return { proposal, votes: await this.deps.store.governance.votes(id) };
  }

  /** Called each sweep: decides the proposals whose voting period ended. Returns how many. */
  decideDue(now = Date.now()): Promise<number> {
    this.running ??= (async () => {
      try {
        const due = await this.deps.store.governance.due(now, decideBatch);
        if (due.length === 0) return 0;
        const eligible = await this.deps.stake.totalBonded();
        let decided = 0;
        for (const p of due) if (await this.decide(p, eligible, now)) decided++;
        return decided;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  private async decide(p: ProposalRow, eligible: bigint, now: number): Promise<boolean> {
    const sums = { yes: 0n, no: 0n, abstain: 0n };
    for (const v of await this.deps.store.governance.votes(p.id)) sums[v.choice] += BigInt(v.weight);
    const voted = sums.yes + sums.no + sums.abstain;
    const quorum = voted * 10_000n >= this.deps.params.current["governance.quorum_bp"] * eligible && voted > 0n;
    const passed = sums.yes * 10_000n > this.deps.params.current["governance.threshold_bp"] * (sums.yes + sums.no);
    const tally = (outcome: string): Tally => ({
      yes: sums.yes.toString(),
      no: sums.no.toString(),
      abstain: sums.abstain.toString(),
      eligible: eligible.toString(),
      outcome,
    });
    if (!quorum) return this.end(p, "rejected", tally("quorum not reached"), now);
    if (!passed) return this.end(p, "rejected", tally("threshold not reached"), now);
    return this.execute(p, tally("passed"), now);
  }

  private async end(p: ProposalRow, state: "rejected" | "failed", tally: Tally, now: number): Promise<boolean> {
    const ended = await this.deps.store.governance.decide({ id: p.id, state, tally, now });
    if (ended) this.deps.log.info({ proposal: p.id, state, outcome: tally.outcome }, "proposal decided");
    return ended !== undefined;
  }

  /** Executes a passed proposal (or an admin's act): its effects and its decision in one transaction. */
  private async execute(p: ProposalRow, tally: Tally, now: number): Promise<boolean> {
    const action = proposalActionSchema.parse(p.action);
    let effects: ProposalEffects = {};
    const hold = (subject: string, kind: HoldRow["kind"]): ProposalEffects => ({
      hold: { subject, kind, reason: p.reason, proposalId: p.id, at: now },
    });
    switch (action.type) {
      case "set_params": {
        // Checked again against the values of now: another proposal may have changed them.
        const problems = paramProblems(this.withChanges(action.params));
        if (problems.length > 0) return this.end(p, "failed", { ...tally, outcome: problems.join("; ") }, now);
        effects = { params: Object.fromEntries(Object.entries(action.params).map(([n, v]) => [n, String(v)])) };
        break;
      }
      case "pause_node":
        effects = hold(`node:${action.node}`, "paused");
        break;
      case "resume_node":
        effects = { release: { subject: `node:${action.node}`, kind: "paused" } };
        break;
      case "pause_model":
        effects = hold(`model:${action.model}`, "paused");
        break;
      case "flag_model":
        effects = hold(`model:${action.model}`, "flagged");
        break;
      case "admit_model":
        effects = hold(`model:${action.model}`, "admitted");
        break;
      case "resume_model":
        effects = { release: { subject: `model:${action.model}`, kind: "paused" } };
        break;
      case "unflag_model":
        effects = { release: { subject: `model:${action.model}`, kind: "flagged" } };
        break;
      case "flag_workflow":
      case "unflag_workflow":
        // The workflow registry keeps its own flag (and releases held royalties when it clears).
        try {
          await this.deps.workflows.setFlag(action.workflow, action.type === "flag_workflow", p.reason, p.id, now);
        } catch (err) {
          return this.end(p, "failed", { ...tally, outcome: (err as Error).message }, now);
        }
        break;
    }
    // The table is checked again inside the decision's transaction: two proposals decided at once
    // (here and on another replica) must not together break the rules each kept alone.
    const state = await this.deps.store.governance.decide({
      id: p.id,
      state: "executed",
      tally,
      effects,
      validate: (table) =>
        paramProblems(
          Object.fromEntries(
            Object.entries(table)
              .filter(([n]) => isParamName(n))
              .map(([n, v]) => [n, BigInt(v)]),
          ),
        ),
      now,
    });
    if (state === undefined) return false;
    this.deps.log.info(
      { proposal: p.id, action: action.type, by_admin: p.byAdmin, state, outcome: tally.outcome },
      state === "executed" ? "proposal executed" : "proposal failed: the parameters it leaves break a rule",
    );
    if (state !== "executed") return true;
    if (effects.params) await this.deps.params.reload(now);
    if (effects.hold || effects.release) await this.applyHolds();
    return true;
  }

  /** A replica's view of parameters and holds, read again (decisions taken on other replicas). */
  async refresh(now = Date.now()): Promise<void> {
    await this.deps.params.refreshIfStale(now);
    await this.applyHolds();
  }
}

function notFound(id: string) {
  return new HavnError("GOVERNANCE_PROPOSAL_NOT_FOUND", "No proposal has this id.", {
    context: { Proposal: id.slice(0, 80) },
  });
}

export type { ParamName };
