import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import type { FastifyBaseLogger } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ledgerAccounts, type Store } from "@havn/store";
import { openTestStore, storeKinds } from "@havn/store/testing";
import { compileConfig } from "../src/config.js";
import { GovernanceService, type ProposalAction } from "../src/governance/governance-service.js";
import { paramProblems, Params } from "../src/governance/params.js";
import { PoolService, splitByWeight } from "../src/ledger/pool.js";
import { Wallets } from "../src/ledger/wallets.js";
import { NodeRegistry } from "../src/nodes/node-registry.js";
import { ModelCatalog } from "../src/router/model-catalog.js";
import { StakeService, type Offence } from "../src/staking/stake-service.js";
import { WorkflowService } from "../src/workflows/workflow-service.js";

/**
 * Random sequences of stake and governance messages — credits, bonds, unbonds, slashes, payouts
 * of matured unbonds, proposals, votes, decisions, and replays of any message — against one
 * store. After each: no stake or unbonding balance is below zero, no slash took more than there
 * was, the ledger sums to zero, a replayed message changed nothing, and the parameters satisfy
 * their rules. The pool's split sums exactly to the pool for any weights, and so does a
 * distribution posted from the store.
 */
const runs = Number(process.env.HAVN_STAKE_PROPERTY_RUNS ?? 150);

type Op =
  | { kind: "credit"; who: number; amount: bigint }
  | { kind: "bond"; who: number; amount: bigint; key: number }
  | { kind: "unbond"; who: number; amount: bigint; key: number }
  | { kind: "slash"; who: number; offence: Offence; cause: number }
  | { kind: "release" }
  | { kind: "propose"; who: number; action: number; key: number }
  | { kind: "vote"; who: number; proposal: number; choice: "yes" | "no" | "abstain" }
  | { kind: "decide" }
  | { kind: "replay"; which: number };

const who = fc.integer({ min: 0, max: 1 });
const amount = fc.bigInt({ min: 1n, max: 3_000n });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("credit" as const), who, amount }),
  fc.record({ kind: fc.constant("bond" as const), who, amount, key: fc.nat(3) }),
  fc.record({ kind: fc.constant("unbond" as const), who, amount, key: fc.nat(3) }),
  fc.record({
    kind: fc.constant("slash" as const),
    who,
    offence: fc.constantFrom<Offence>("invalid_result", "fraud", "downtime"),
    cause: fc.nat(3),
  }),
  fc.record({ kind: fc.constant("release" as const) }),
  fc.record({ kind: fc.constant("propose" as const), who, action: fc.nat(4), key: fc.nat(2) }),
  fc.record({
    kind: fc.constant("vote" as const),
    who,
    proposal: fc.nat(3),
    choice: fc.constantFrom("yes" as const, "no" as const, "abstain" as const),
  }),
  fc.record({ kind: fc.constant("decide" as const) }),
  fc.record({ kind: fc.constant("replay" as const), which: fc.nat(30) }),
);

/** Proposals to draw from: valid changes, a split that does not sum, a pause. */
const actions: ProposalAction[] = [
  { type: "set_params", params: { "slash.fraud": 700 } },
  { type: "set_params", params: { "split.node_bp": 8_000, "split.validators_bp": 1_000, "split.treasury_bp": 1_000 } },
  { type: "set_params", params: { "split.node_bp": 9_999 } },
  { type: "set_params", params: { "stake.floor_S": 1_500 } },
  { type: "pause_model", model: "some-model" },
];

const silent = pino({ level: "silent" }) as unknown as FastifyBaseLogger;

describe.each(storeKinds)("stake, slashing, pool and governance properties on %s", (kind) => {
  let store: Store;
  let stake: StakeService;
  let governance: GovernanceService;
  let params: Params;
  let pool: PoolService;
  let registry: NodeRegistry;
  beforeAll(async () => {
    store = await openTestStore(kind, inject("pgAdminUrl"));
    const config = compileConfig({
      mode: "production",
      dataDir: mkdtempSync(join(tmpdir(), "havn-stake-props-")),
      staking: {
        floors: { S: 1_000, M: 2_000, L: 3_000, XL: 4_000 },
        slash: { invalidResult: 400, fraud: 900, downtime: 150, injuredShareBp: 5_000 },
        unbondingDelayMs: 60_000,
      },
      governance: { votingPeriodMs: 1_000, quorumBp: 2_000, proposalStake: 0 },
      pool: { minCompleted: 1 },
    });
    params = new Params(store, silent);
    await params.init(config, {});
    registry = new NodeRegistry();
    const wallets = new Wallets(store);
    stake = new StakeService({ store, params, registry, wallets, config, log: silent, notify: () => {} });
    const workflows = new WorkflowService(store, wallets, config, silent);
    governance = new GovernanceService({
      store,
      params,
      stake,
      registry,
      catalog: new ModelCatalog(null),
      workflows,
      config,
      log: silent,
    });
    pool = new PoolService({ store, params, registry, stake, log: silent });
  });
  afterAll(() => store?.close());

  let run = 0;
  it(`${runs} random sequences: stake never negative, slashes within stake, replays inert, the ledger sums to zero`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 24 }),
        fc.bigInt({ min: 0n, max: 8_000n }),
        async (ops, funds) => {
          run++;
          const accounts = [`acc-p${run}-a`, `acc-p${run}-b`];
          const nodes = [`node-p${run}-a`, `node-p${run}-b`];
          for (const [i, key] of nodes.entries())
            await store.nodes.upsert({
              key,
              name: key,
              accountId: accounts[i]!,
              capabilities: { backend: "x", engine_version: "1", models: [], slots: 1 },
              hardware: { cpu: { model: "x", cores: 1 }, memory_mb: 1, gpus: [], compute_class: "S" },
              now: Date.now(),
            });
          const actor = (i: number) => ({ accountId: accounts[i]!, admin: false });
          // Both operators start with some funds (none, at times), so most bonds can go through.
          if (funds > 0n)
            for (const a of accounts)
              await store.ledger.post({
                kind: "credit",
                idempotencyKey: `funds:${a}`,
                now: Date.now(),
                postings: [
                  { account: ledgerAccounts.mint, amount: -funds },
                  { account: ledgerAccounts.custodial(a), amount: funds },
                ],
              });
          const watched = [
            ...accounts.map((a) => ledgerAccounts.custodial(a)),
            ...nodes.map((n) => ledgerAccounts.stake(`node:${n}`)),
          ];
          const snapshot = async () => {
            const balances = await store.ledger.balances(watched);
            const unbonding = (await store.ledger.positiveBalances("unbonding:", 100_000)).filter((u) =>
              u.account.includes(`:node:node-p${run}-`),
            );
            const proposals = await store.governance.proposals({ limit: 1000 });
            const votes = await Promise.all(proposals.map((p) => store.governance.votes(p.id)));
            return JSON.stringify(
              { balances, unbonding, proposals, votes, params: params.current },
              (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v),
            );
          };
          const proposalIds: string[] = [];
          // Messages that were accepted, to replay: one refused (no funds yet, say) may succeed later.
          const done: ((replay: boolean) => Promise<boolean>)[] = [];
          for (const o of ops) {
            let call: ((replay: boolean) => Promise<boolean>) | undefined;
            switch (o.kind) {
              case "credit":
                await store.ledger.post({
                  kind: "credit",
                  idempotencyKey: `credit:${run}:${done.length}`,
                  now: Date.now(),
                  postings: [
                    { account: ledgerAccounts.mint, amount: -o.amount },
                    { account: ledgerAccounts.custodial(accounts[o.who]!), amount: o.amount },
                  ],
                });
                break;
              case "bond":
                call = () =>
                  stake.bond(actor(o.who), { node: nodes[o.who]! }, o.amount, `b${o.key}`).then(
                    () => true,
                    () => false,
                  );
                break;
              case "unbond":
                call = () =>
                  stake.unbond(actor(o.who), { node: nodes[o.who]! }, o.amount, `u${o.key}`).then(
                    () => true,
                    () => false,
                  );
                break;
              case "slash":
                call = async (replay) => {
                  const subject = `node:${nodes[o.who]!}` as const;
                  const before = await stake.view(subject);
                  const available = before.bonded + before.unbonding.reduce((a, u) => a + u.amount, 0n);
                  const taken = await stake.slash(
                    subject,
                    o.offence,
                    `c${o.cause}`,
                    ledgerAccounts.custodial(accounts[1 - o.who]!),
                  );
                  expect(taken).toBeLessThanOrEqual(available);
                  expect(taken).toBeLessThanOrEqual(params.current[`slash.${o.offence}`]);
                  if (replay) expect(taken).toBe(0n);
                  return taken > 0n;
                };
                break;
              case "release":
                await stake.releaseMatured(Date.now() + 120_000);
                break;
              case "propose":
                call = async () => {
                  try {
                    const { proposal } = await governance.propose(
                      actor(o.who),
                      { action: actions[o.action]!, reason: "property" },
                      `p${o.key}`,
                    );
                    if (!proposalIds.includes(proposal.id)) proposalIds.push(proposal.id);
                    return true;
                  } catch {
                    return false; // refused: no stake, or a change that breaks the parameters' rules
                  }
                };
                break;
              case "vote": {
                const id = proposalIds[o.proposal % Math.max(1, proposalIds.length)];
                if (id)
                  call = () =>
                    governance.vote(actor(o.who), id, o.choice).then(
                      () => true,
                      () => false,
                    );
                break;
              }
              case "decide":
                await governance.decideDue(Date.now() + 2_000);
                break;
              case "replay": {
                const again = done[o.which % Math.max(1, done.length)];
                if (!again) break;
                const before = await snapshot();
                await again(true);
                expect(await snapshot()).toBe(before);
                break;
              }
            }
            if (call && (await call(false))) done.push(call);
          }
          const balances = await store.ledger.balances(watched);
          for (const n of nodes) expect(balances[ledgerAccounts.stake(`node:${n}`)]).toBeGreaterThanOrEqual(0n);
          for (const a of accounts) expect(balances[ledgerAccounts.custodial(a)]).toBeGreaterThanOrEqual(0n);
          expect(await store.ledger.total()).toBe(0n);
          expect(paramProblems(params.current)).toEqual([]);
        },
      ),
      { numRuns: runs },
    );
  });

  it("a pool distribution pays exactly the pool, by reputation share, once per period", async () => {
    await store.ledger.post({
      kind: "genesis",
      idempotencyKey: "pool-props-treasury",
      now: Date.now(),
      postings: [
        { account: ledgerAccounts.mint, amount: -(10n ** 12n) },
        { account: ledgerAccounts.treasury, amount: 10n ** 12n },
      ],
    });
    let period = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ score: fc.integer({ min: 10, max: 100 }), completed: fc.nat(3) }), {
          minLength: 1,
          maxLength: 6,
        }),
        async (nodes) => {
          period++;
          const start = period * 1_000_000_000;
          const keys = nodes.map((_, i) => `pool-node-${period}-${i}`);
          for (const [i, n] of nodes.entries()) {
            await store.nodes.upsert({
              key: keys[i]!,
              name: keys[i]!,
              capabilities: { backend: "x", engine_version: "1", models: [], slots: 1 },
              hardware: { cpu: { model: "x", cores: 1 }, memory_mb: 1, gpus: [], compute_class: "S" },
              now: start,
            });
            await store.nodes.recordReputation([
              { nodeKey: keys[i]!, delta: 0, score: n.score, cause: "uptime", jobId: null, at: start + 1, count: 1 },
              ...(n.completed > 0
                ? [
                    {
                      nodeKey: keys[i]!,
                      delta: 10,
                      score: n.score,
                      cause: "completed",
                      jobId: null,
                      at: start + 2,
                      count: n.completed,
                    },
                  ]
                : []),
            ]);
          }
          const treasury = await store.ledger.balance(ledgerAccounts.treasury);
          // Scores are read at `now` (decayed from when they were written): now is the period's end.
          const tx = await pool.distribute(start, start + 1_000, start + 1_000);
          const paid = (tx?.postings ?? []).filter((p) => p.account !== ledgerAccounts.treasury);
          const total = paid.reduce((a, p) => a + p.amount, 0n);
          const worked = nodes.filter((n) => n.completed > 0).length;
          if (worked === 0) expect(tx).toBeUndefined();
          else {
            expect(total).toBe(params.current["pool.amount"]);
            expect(await store.ledger.balance(ledgerAccounts.treasury)).toBe(treasury - total);
            // Only nodes that did verified work share; uptime alone earns nothing.
            for (const [i, n] of nodes.entries())
              if (n.completed === 0) expect(paid.some((p) => p.account.endsWith(keys[i]!))).toBe(false);
          }
          // The same period again pays nothing more.
          await pool.distribute(start, start + 1_000, start + 1_000);
          expect(await store.ledger.balance(ledgerAccounts.treasury)).toBe(treasury - total);
        },
      ),
      { numRuns: Math.max(20, Math.floor(runs / 5)) },
    );
  });
});

describe("the pool's split", () => {
  it("sums exactly to the pool for any weights, each share within one µHAI of its proportion", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 15n }),
        fc.array(fc.bigInt({ min: 0n, max: 10n ** 6n }), { minLength: 1, maxLength: 50 }),
        (amount, weights) => {
          const shares = splitByWeight(amount, weights);
          const total = weights.reduce((a, b) => a + b, 0n);
          if (total === 0n) {
            expect(shares.every((s) => s === 0n)).toBe(true);
            return;
          }
          expect(shares.reduce((a, b) => a + b, 0n)).toBe(amount);
          for (const [i, w] of weights.entries()) {
            const exact = (amount * w) / total;
            expect(shares[i]! - exact).toBeGreaterThanOrEqual(0n);
            expect(shares[i]! - exact).toBeLessThanOrEqual(1n);
          }
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
