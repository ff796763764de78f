import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { RoyaltySplit } from "@havn/protocol";
import { ledgerAccounts, type Store } from "@havn/store";
import { openTestStore } from "@havn/store/testing";
import { maxRoyaltyDepth, royaltySplit, type RoyaltyWorkflow } from "../src/workflows/royalties.ts";

/** Percentages summing to 100, from four cut points. */
const split = fc.array(fc.integer({ min: 0, max: 100 }), { minLength: 4, maxLength: 4 }).map((cuts): RoyaltySplit => {
  const [a, b, c, d] = [...cuts].sort((x, y) => x - y) as [number, number, number, number];
  return { creator: a, upstream: b - a, node: c - b, validators: d - c, treasury: 100 - d };
});

/** Shares of n dependencies summing to 100 (each at least 1). */
const shares = (n: number) =>
  fc.array(fc.integer({ min: 1, max: 100 }), { minLength: n, maxLength: n }).map((w) => {
    const total = w.reduce((x, y) => x + y, 0);
    const out = w.map((x) => Math.max(1, Math.floor((x * 100) / total)));
    out[0]! += 100 - out.reduce((x, y) => x + y, 0); // at most 3 shares: the first stays above 90
    return out;
  });

/** A random registry: workflow i depends on earlier ones only (published before it), some flagged. */
const registry = fc.integer({ min: 1, max: 14 }).chain((size) =>
  fc.tuple(
    ...Array.from({ length: size }, (_, i) =>
      fc
        .tuple(
          split,
          fc.boolean(),
          fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, i - 1) }), { maxLength: Math.min(i, 3) }),
        )
        .chain(([royalties, flagged, deps]) =>
          shares(Math.max(1, deps.length)).map((s): RoyaltyWorkflow => ({
            id: `wf-${i}`,
            creatorAccount: `custodial:acc-${i % 4}`,
            royalties,
            flagged,
            dependencies: i === 0 ? [] : deps.map((d, k) => ({ workflow: `wf-${d}`, share: s[k]! })),
          })),
        ),
    ),
  ),
);

const charge = fc.bigInt({ min: 0n, max: 10n ** 13n });

describe("royalty splits", () => {
  it("conserve every µHAI, at any depth and share mix; no credit is negative; earnings are what creators got", () => {
    fc.assert(
      fc.property(registry, charge, (workflows, c) => {
        const byId = new Map(workflows.map((w) => [w.id, w]));
        const run = workflows[workflows.length - 1]!;
        const result = royaltySplit(c, run, (id) => byId.get(id), { node: "node:k" });
        let total = 0n;
        for (const amount of result.credits.values()) {
          expect(amount).toBeGreaterThan(0n);
          total += amount;
        }
        expect(total).toBe(c);
        const toCreators = [...result.credits]
          .filter(([a]) => a.startsWith("custodial:") || a.startsWith("held:"))
          .reduce((n, [, v]) => n + v, 0n);
        expect(result.earnings.reduce((n, e) => n + e.amount, 0n)).toBe(toCreators);
        for (const e of result.earnings) expect(e.direct).toBe(e.workflowId === run.id);
      }),
      { numRuns: 2_000 },
    );
  });

  it("pays every ancestor up a chain, and past the depth bound the rest goes to the treasury", () => {
    const chain: RoyaltyWorkflow[] = Array.from({ length: maxRoyaltyDepth + 3 }, (_, i) => ({
      id: `wf-${i}`,
      creatorAccount: `custodial:acc-${i}`,
      royalties: { creator: 50, upstream: 50, node: 0, validators: 0, treasury: 0 },
      flagged: false,
      dependencies: i === 0 ? [] : [{ workflow: `wf-${i - 1}`, share: 100 }],
    }));
    const byId = new Map(chain.map((w) => [w.id, w]));
    const run = chain[chain.length - 1]!;
    const { credits } = royaltySplit(1n << 20n, run, (id) => byId.get(id), { node: "node:k" });
    // The run's creator 1/2, its parent 1/4, … each ancestor up to the bound half of what reached it.
    expect(credits.get(run.creatorAccount)).toBe(1n << 19n);
    expect(credits.get(chain[chain.length - 2]!.creatorAccount)).toBe(1n << 18n);
    for (let i = 0; i < chain.length - 1 - maxRoyaltyDepth; i++)
      expect(credits.has(chain[i]!.creatorAccount)).toBe(false);
    expect(credits.get(ledgerAccounts.treasury)).toBeGreaterThan(0n);
    expect([...credits.values()].reduce((a, b) => a + b, 0n)).toBe(1n << 20n);
  });
});

describe("royalty splits on a wide, deep graph", () => {
  it("sum flows per workflow and level: every path of a 16-wide, 8-deep lattice is paid, in one pass", () => {
    // Level k has 16 workflows, each depending on all 16 of level k − 1: 16^8 paths from the top.
    const levels = 9;
    const byId = new Map<string, RoyaltyWorkflow>();
    for (let k = 0; k < levels; k++)
      for (let j = 0; j < 16; j++)
        byId.set(`wf-${k}-${j}`, {
          id: `wf-${k}-${j}`,
          creatorAccount: `custodial:acc-${k}-${j}`,
          royalties: { creator: 40, upstream: 25, node: 25, validators: 5, treasury: 5 },
          flagged: false,
          dependencies:
            k === 0
              ? []
              : Array.from({ length: 16 }, (_, i) => ({ workflow: `wf-${k - 1}-${i}`, share: i < 4 ? 7 : 6 })),
        });
    const charge = 10n ** 13n;
    const run = byId.get(`wf-${levels - 1}-0`)!;
    const { credits, earnings } = royaltySplit(charge, run, (id) => byId.get(id), { node: "node:k" });
    expect([...credits.values()].reduce((a, b) => a + b, 0n)).toBe(charge);
    // Every ancestor within the bound was paid something.
    expect(earnings.length).toBe(1 + 16 * maxRoyaltyDepth);
  });
});

describe.each(["sqlite", "postgres"] as const)("royalty splits posted, on %s", (kind) => {
  let store: Store;
  beforeAll(async () => {
    store = await openTestStore(kind, inject("pgAdminUrl"));
  });
  afterAll(async () => store?.close());

  it("every split posts as one balanced settlement out of the job's escrow, and the ledger sums to zero", async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(registry, charge, async (workflows, c) => {
        const byId = new Map(workflows.map((w) => [w.id, w]));
        const run = workflows[workflows.length - 1]!;
        const { credits } = royaltySplit(c, run, (id) => byId.get(id), { node: "node:k" });
        const job = `job-prop-${n++}`;
        const escrow = ledgerAccounts.escrow(job);
        if (c > 0n)
          await store.ledger.post({
            kind: "escrow",
            idempotencyKey: `escrow:${job}`,
            now: n,
            postings: [
              { account: ledgerAccounts.mint, amount: -c },
              { account: escrow, amount: c },
            ],
          });
        const postings = [
          { account: escrow, amount: -c },
          ...[...credits].map(([account, amount]) => ({ account, amount })),
        ].filter((p) => p.amount !== 0n);
        if (postings.length > 0) {
          const posted = await store.ledger.post({ kind: "settle", idempotencyKey: `settle:${job}`, now: n, postings });
          expect(posted.ok).toBe(true);
        }
        expect(await store.ledger.balance(escrow)).toBe(0n);
      }),
      { numRuns: 300 },
    );
    expect(await store.ledger.total()).toBe(0n);
  }, 120_000);
});
