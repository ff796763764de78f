import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ledgerAccounts, type LedgerTransfer, type PriceTerms, type Store } from "../src/index.ts";
import { openTestStore, storeKinds } from "../src/testing.ts";
import { claimOf, completion, err, newJob, seal } from "./fixtures.ts";

/**
 * Random sequences of money operations — credits, transfers, paid admissions, completions,
 * failures, cancels, settlements with rewards, and replays of any of them — against one store.
 * After every sequence: the balances sum to zero, none but mint is below zero, no charge exceeds
 * its escrow, a replay changed nothing, and the rewards minted stay within the budget.
 */
const runs = Number(process.env.HAVN_LEDGER_PROPERTY_RUNS ?? 10_000);

const price: PriceTerms = {
  input_per_1k: "700",
  output_per_1k: "1300",
  surge_bp: 12_500,
  class_bp: { S: 10_000, M: 15_000, L: 25_000, XL: 40_000 },
};

type Op =
  | { kind: "credit"; to: number; amount: bigint; key: number }
  | { kind: "transfer"; from: number; to: number; amount: bigint; key: number }
  | { kind: "admit"; payer: number; escrow: bigint; jobs: number }
  | { kind: "complete"; job: number; prompt: number; output: number; cls: "S" | "M" | "L" | "XL" }
  | { kind: "fail"; job: number }
  | { kind: "cancel"; job: number }
  | { kind: "settle"; job: number; reward: bigint }
  | { kind: "replay"; which: number };

const holder = fc.integer({ min: 0, max: 3 });
const amount = fc.bigInt({ min: 1n, max: 2_000_000n });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("credit" as const), to: holder, amount, key: fc.integer({ min: 0, max: 3 }) }),
  fc.record({
    kind: fc.constant("transfer" as const),
    from: holder,
    to: holder,
    amount,
    key: fc.integer({ min: 0, max: 3 }),
  }),
  fc.record({
    kind: fc.constant("admit" as const),
    payer: holder,
    escrow: fc.bigInt({ min: 1n, max: 1_500_000n }),
    jobs: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({
    kind: fc.constant("complete" as const),
    job: fc.nat(8),
    prompt: fc.nat(5_000),
    output: fc.nat(5_000),
    cls: fc.constantFrom("S" as const, "M" as const, "L" as const, "XL" as const),
  }),
  fc.record({ kind: fc.constant("fail" as const), job: fc.nat(8) }),
  fc.record({ kind: fc.constant("cancel" as const), job: fc.nat(8) }),
  fc.record({ kind: fc.constant("settle" as const), job: fc.nat(8), reward: fc.bigInt({ min: 0n, max: 80_000n }) }),
  fc.record({ kind: fc.constant("replay" as const), which: fc.nat(10) }),
);

describe.each(storeKinds)("ledger properties on %s", (kind) => {
  let store: Store;
  beforeAll(async () => {
    store = await openTestStore(kind, inject("pgAdminUrl"));
  });
  afterAll(() => store?.close());

  it(`${runs.toLocaleString("en")} random sequences: sums to zero, nothing overdrawn, charges within escrow, replays inert, emission within budget`, async () => {
    let sequence = 0;
    const budget = 100_000n;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 6 }), async (ops) => {
        const seq = ++sequence;
        const base = seq * 1_000_000;
        let clock = base;
        const tick = () => ++clock;
        const accounts = [0, 1, 2, 3].map((i) => ledgerAccounts.custodial(`acc-p${seq}-${i}`));
        const jobs: { id: string; escrow: bigint; attempt: string; claimed: boolean }[] = [];
        // What took effect, to replay: a request that was refused (no funds, a job in another
        // state) did nothing, and may be sent again to do its work then.
        const done: (() => Promise<boolean>)[] = [];

        const post = async (t: LedgerTransfer) => (await store.ledger.post(t)).ok;
        for (const o of ops) {
          let action: (() => Promise<boolean>) | undefined;
          switch (o.kind) {
            case "credit": {
              const t: LedgerTransfer = {
                kind: "credit",
                idempotencyKey: `p${seq}:credit:${o.key}`,
                now: tick(),
                postings: [
                  { account: ledgerAccounts.mint, amount: -o.amount },
                  { account: accounts[o.to]!, amount: o.amount },
                ],
              };
              action = () => post(t);
              break;
            }
            case "transfer": {
              if (o.from === o.to) break;
              const t: LedgerTransfer = {
                kind: "debit",
                idempotencyKey: `p${seq}:transfer:${o.key}`,
                now: tick(),
                postings: [
                  { account: accounts[o.from]!, amount: -o.amount },
                  { account: accounts[o.to]!, amount: o.amount },
                ],
              };
              action = () => post(t);
              break;
            }
            case "admit": {
              const batch = Array.from({ length: o.jobs }, () => ({
                ...newJob(tick()),
                money: { payer: accounts[o.payer]!, amount: o.escrow, price },
              }));
              await store.jobs.admit(batch).then((outcomes) =>
                outcomes.forEach((outcome, i) => {
                  if (outcome === "inserted")
                    jobs.push({ id: batch[i]!.id, escrow: o.escrow, attempt: `att-${batch[i]!.id}`, claimed: false });
                }),
              );
              break;
            }
            case "complete": {
              const j = jobs[o.job % Math.max(1, jobs.length)];
              if (!j) break;
              if (!j.claimed) {
                await store.jobs.claim([claimOf(j.id, j.attempt, clock + 60_000)], tick());
                j.claimed = true;
              }
              const c = completion(j.id, j.attempt, "out", tick());
              const input = {
                ...c,
                output: { ...c.output, usage: { prompt_tokens: o.prompt, completion_tokens: o.output } },
                computeClass: o.cls,
              };
              action = async () => (await store.jobs.complete([input], seal))[0]!.ok;
              break;
            }
            case "fail": {
              const j = jobs[o.job % Math.max(1, jobs.length)];
              if (!j) break;
              if (!j.claimed) {
                await store.jobs.claim([claimOf(j.id, j.attempt, clock + 60_000)], tick());
                j.claimed = true;
              }
              const now = tick();
              action = async () =>
                (await store.jobs.failAttempt({ jobId: j.id, attemptId: j.attempt, error: err, retry: false, now })) !==
                undefined;
              break;
            }
            case "cancel": {
              const j = jobs[o.job % Math.max(1, jobs.length)];
              if (!j) break;
              const now = tick();
              action = async () => (await store.jobs.cancel(j.id, err, now)) !== undefined;
              break;
            }
            case "settle": {
              const j = jobs[o.job % Math.max(1, jobs.length)];
              if (!j) break;
              const row = await store.jobs.get(j.id);
              const charge = row?.money?.state === "charged" ? (row.money.charge ?? 0n) : 0n;
              const now = tick();
              const operator = accounts[3]!;
              action = async () =>
                (
                  await store.ledger.settle({
                    jobId: j.id,
                    from: "charged",
                    now,
                    ...(charge > 0n && {
                      settle: {
                        kind: "settle",
                        idempotencyKey: `settle:${j.id}`,
                        jobId: j.id,
                        now,
                        postings: [
                          { account: ledgerAccounts.escrow(j.id), amount: -charge },
                          { account: operator, amount: charge - charge / 10n },
                          { account: ledgerAccounts.treasury, amount: charge / 10n },
                        ].filter((p) => p.amount !== 0n),
                      },
                    }),
                    ...(o.reward > 0n && {
                      reward: {
                        budget,
                        since: base,
                        transfer: {
                          kind: "reward",
                          idempotencyKey: `reward:${j.id}`,
                          jobId: j.id,
                          now,
                          postings: [
                            { account: ledgerAccounts.mint, amount: -o.reward },
                            { account: operator, amount: o.reward },
                          ],
                        },
                      },
                    }),
                  })
                ).settled;
              break;
            }
            case "replay": {
              const again = done[o.which % Math.max(1, done.length)];
              if (!again) break;
              // A replay of anything already done moves no money.
              const watched = [...accounts, ...jobs.map((j) => ledgerAccounts.escrow(j.id)), ledgerAccounts.mint];
              const before = await store.ledger.balances(watched);
              await again();
              expect(await store.ledger.balances(watched)).toEqual(before);
              break;
            }
          }
          if (action && (await action())) done.push(action);
        }

        expect(await store.ledger.total()).toBe(0n);
        for (const [account, balance] of Object.entries(await store.ledger.balances(accounts)))
          expect([account, balance >= 0n]).toEqual([account, true]);
        for (const j of jobs) {
          const row = await store.jobs.get(j.id);
          const money = row?.money;
          if (!money) continue;
          if (money.charge !== null) expect(money.charge <= money.escrow).toBe(true);
          // What is left in escrow: all of it while escrowed, the charge until settled, nothing after.
          const left = await store.ledger.balance(ledgerAccounts.escrow(j.id));
          const expected =
            money.state === "escrowed" ? money.escrow : money.state === "charged" ? (money.charge ?? 0n) : 0n;
          expect([j.id, money.state, left]).toEqual([j.id, money.state, expected]);
        }
        expect(await store.ledger.receivedSince("reward", base)).toBeLessThanOrEqual(budget);
      }),
      { numRuns: runs },
    );
  }, 600_000);
});
