import type { FastifyInstance, FastifyRequest } from "fastify";
import { HavnError, parseRequestBody } from "@havn/protocol";
import {
  ledgerAccounts,
  proposalStates,
  type ProposalRow,
  type StakeSubject,
  type Store,
  type VoteRow,
} from "@havn/store";
import type { AuthService } from "../../auth/auth-service.js";
import type { CoordinatorConfig } from "../../config.js";
import type { GovernanceService } from "../../governance/governance-service.js";
import type { Params } from "../../governance/params.js";
import type { LedgerActor } from "../../ledger/ledger-service.js";
import { poolPeriod, type PoolService } from "../../ledger/pool.js";
import type { NodeRegistry } from "../../nodes/node-registry.js";
import type { StakeService, StakeTarget } from "../../staking/stake-service.js";
import { idempotencyKeyOf } from "../idempotency.js";
import { ledgerTransactionView } from "../ledger/views.js";
import { registerRoute, routes } from "../route-table.js";
import {
  availabilityPromiseRequestSchema,
  proposalRequestSchema,
  stakeRequestSchema,
  voteRequestSchema,
} from "../schemas.js";

export interface StakeRouteDeps {
  readonly stake: StakeService;
  readonly governance: GovernanceService;
  readonly params: Params;
  readonly pool: PoolService | undefined;
  readonly registry: NodeRegistry;
  readonly store: Store;
  readonly auth: AuthService;
  readonly config: CoordinatorConfig;
}

function proposalView(p: ProposalRow, votes?: readonly VoteRow[]) {
  return {
    object: "proposal" as const,
    id: p.id,
    proposer: p.proposer,
    action: p.action,
    reason: p.reason,
    state: p.state,
    by_admin: p.byAdmin,
    created_at: p.createdAt,
    ends_at: p.endsAt,
    decided_at: p.decidedAt,
    tally: p.tally,
    ...(votes && { votes: votes.map(voteView) }),
  };
}

const voteView = (v: VoteRow) => ({ voter: v.voter, choice: v.choice, weight_uhai: v.weight, at: v.at });

/** Stake (bond, unbond, promises, the pool) and governance (parameters, proposals, votes). */
export function registerStakeRoutes(app: FastifyInstance, deps: StakeRouteDeps): void {
  const { stake, governance, params, pool, registry, store, auth, config } = deps;
  const actor = (request: FastifyRequest): LedgerActor => ({
    accountId: request.principal!.accountId,
    admin: auth.mayActFor(request.principal!, null),
  });
  const needLedger = () => {
    if (!config.ledger.enabled) throw new HavnError("LEDGER_DISABLED", "This network runs free: no stake moves.");
  };

  /** A subject's stake as the API shows it. */
  const stakeView = async (subject: StakeSubject) => {
    const v = await stake.view(subject);
    const key = subject.startsWith("node:") ? subject.slice(5) : null;
    const row = key ? await store.nodes.get(key) : undefined;
    const session = key ? registry.get(key) : undefined;
    return {
      object: "stake" as const,
      subject,
      bonded_uhai: v.bonded.toString(),
      unbonding: v.unbonding.map((u) => ({ amount_uhai: u.amount.toString(), matures_at: u.maturesAt })),
      floor_uhai: (row ? stake.floorOf(row.computeClass) : params.current["stake.validator_floor"]).toString(),
      node: row
        ? {
            name: row.name,
            compute_class: row.computeClass,
            promise: row.promise && {
              from_hour: row.promise.fromHour,
              to_hour: row.promise.toHour,
              slots: row.promise.slots,
            },
            quarantined: stake.quarantined.has(row.key),
            held: session?.held ?? null,
            slots: session?.slots ?? null,
          }
        : null,
    };
  };
  const targetOf = (body: { node?: string | undefined; validator?: true | undefined }): StakeTarget =>
    body.validator ? { validator: true } : { node: body.node! };
  const subjectOf = async (target: StakeTarget, accountId: string): Promise<StakeSubject> =>
    "validator" in target ? `validator:${accountId}` : `node:${(await stake.findNode(target.node)).key}`;

  registerRoute(app, routes.listStake, async (request) => {
    const subjects = await stake.subjectsOf(request.principal!.accountId);
    return { object: "list" as const, data: await Promise.all(subjects.map(stakeView)) };
  });

  registerRoute<{ node: string }>(
    app,
    routes.nodeStake,
    async (_request, _reply, { node }) => stakeView(`node:${(await stake.findNode(node)).key}`),
    (raw) =>
      new HavnError("NODE_NOT_FOUND", "No node with this key or name.", {
        context: { Node: String(raw.node).slice(0, 80) },
      }),
  );

  for (const [spec, move] of [
    [routes.bond, "bond"],
    [routes.unbond, "unbond"],
  ] as const) {
    registerRoute(app, spec, async (request) => {
      needLedger();
      const body = parseRequestBody(stakeRequestSchema, request.body);
      const target = targetOf(body);
      const key = idempotencyKeyOf(request, 200);
      const result =
        move === "bond"
          ? { tx: await stake.bond(actor(request), target, body.amount_uhai, key), maturesAt: null }
          : await stake.unbond(actor(request), target, body.amount_uhai, key);
      return {
        object: "stake_change" as const,
        transaction: ledgerTransactionView(result.tx),
        matures_at: result.maturesAt,
        stake: await stakeView(await subjectOf(target, request.principal!.accountId)),
      };
    });
  }

  const mayOperate = async (request: FastifyRequest, ref: string) => {
    const node = await stake.findNode(ref);
    const who = actor(request);
    if (node.accountId !== who.accountId && !who.admin)
      throw new HavnError(
        "STAKE_FORBIDDEN",
        "Only the account that operates this node (or an admin) may change its promise.",
      );
    return node;
  };
  const noNode = (raw: Record<string, string>) =>
    new HavnError("NODE_NOT_FOUND", "No node with this key or name.", {
      context: { Node: String(raw.node).slice(0, 80) },
    });
  registerRoute<{ node: string }>(
    app,
    routes.setPromise,
    async (request, _reply, { node: ref }) => {
      const node = await mayOperate(request, ref);
      const body = parseRequestBody(availabilityPromiseRequestSchema, request.body);
      await store.nodes.setPromise(node.key, { fromHour: body.from_hour, toHour: body.to_hour, slots: body.slots });
      return stakeView(`node:${node.key}`);
    },
    noNode,
  );
  registerRoute<{ node: string }>(
    app,
    routes.deletePromise,
    async (request, _reply, { node: ref }) => {
      const node = await mayOperate(request, ref);
      await store.nodes.setPromise(node.key, null);
      return stakeView(`node:${node.key}`);
    },
    noNode,
  );

  // The pool's page is public and its snapshot reads a period's events: strangers get it from a
  // copy at most 5 s old.
  let poolPage: { at: number; page: Promise<unknown> } | undefined;
  registerRoute(app, routes.pool, async () => {
    if (!pool) throw new HavnError("LEDGER_DISABLED", "This network runs free: there is no pool.");
    const now = Date.now();
    if (!poolPage || now - poolPage.at > 5_000) {
      const page = poolView(pool, now);
      page.catch(() => (poolPage = undefined));
      poolPage = { at: now, page };
    }
    return poolPage.page;
  });

  const poolView = async (pool: PoolService, now: number) => {
    const period = poolPeriod(now, params.num("pool.period_ms"));
    const snapshot = await pool.snapshot(period.start, period.end, now);
    const distributions = await store.ledger.transactions({
      account: ledgerAccounts.treasury,
      kind: "pool",
      limit: 24,
    });
    return {
      object: "pool" as const,
      period,
      amount_uhai: snapshot.amount.toString(),
      shares: snapshot.shares.map((s) => ({
        node_key: s.nodeKey,
        score: s.score,
        completed: s.completed,
        amount_uhai: s.amount.toString(),
      })),
      distributions: distributions.map(ledgerTransactionView),
    };
  };

  registerRoute(app, routes.params, async () => ({ object: "list" as const, data: params.described() }));

  registerRoute(app, routes.listProposals, async (request) => {
    const state = (request.query as Record<string, unknown>).state;
    if (state !== undefined && !proposalStates.includes(state as never))
      throw new HavnError("REQUEST_INVALID", `\`state\` is one of ${proposalStates.join(", ")}.`);
    const rows = await store.governance.proposals({
      limit: 100,
      ...(state ? { state: state as ProposalRow["state"] } : {}),
    });
    return { object: "list" as const, data: rows.map((p) => proposalView(p)) };
  });

  const noProposal = (raw: Record<string, string>) =>
    new HavnError("GOVERNANCE_PROPOSAL_NOT_FOUND", "No proposal has this id.", {
      context: { Proposal: String(raw.id).slice(0, 80) },
    });
  registerRoute<{ id: string }>(
    app,
    routes.getProposal,
    async (_request, _reply, { id }) => {
      const { proposal, votes } = await governance.get(id);
      return proposalView(proposal, votes);
    },
    noProposal,
  );

  registerRoute(app, routes.propose, async (request, reply) => {
    const body = parseRequestBody(proposalRequestSchema, request.body);
    const { proposal, replayed } = await governance.propose(
      actor(request),
      { action: body.action, reason: body.reason, ...(body.admin !== undefined && { admin: body.admin }) },
      idempotencyKeyOf(request, 200),
    );
    if (replayed) reply.header("idempotent-replayed", "true");
    reply.code(replayed ? 200 : 201);
    return proposalView(proposal);
  });

  registerRoute<{ id: string }>(
    app,
    routes.vote,
    async (request, _reply, { id }) => {
      const body = parseRequestBody(voteRequestSchema, request.body);
      const r = await governance.vote(actor(request), id, body.choice);
      return { object: "vote" as const, proposal_id: id, replayed: r.replayed, ...voteView(r.vote) };
    },
    noProposal,
  );
}
