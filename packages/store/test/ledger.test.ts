import { afterEach, describe, expect, inject, it } from "vitest";
import { chargeFor, ledgerAccounts, type PriceTerms, type Store } from "../src/index.ts";
import { openTestStore, storeKinds } from "../src/testing.ts";
import { claimOf, completion, err, newJob, seal } from "./fixtures.ts";

const { mint, treasury, escrow } = ledgerAccounts;
const alice = ledgerAccounts.wallet("0x" + "aa".repeat(20));
const bob = ledgerAccounts.custodial("acc-bob");

/** 1 000 µHAI per 1k tokens in and out, no surge, seed 002's class multipliers. */
const price: PriceTerms = {
  input_per_1k: "1000",
  output_per_1k: "1000",
  surge_bp: 10_000,
  class_bp: { S: 10_000, M: 15_000, L: 25_000, XL: 40_000 },
};

describe("a job's charge", () => {
  it("is tokens × price × class multiplier × surge, rounded down, and never more than the escrow", () => {
    const usage = { prompt_tokens: 1_234, completion_tokens: 567 };
    // 1 801 tokens × 1 µHAI/token = 1 801; × 2.5 (L) = 4 502.5; × 1.2 surge = 5 403 (down).
    expect(chargeFor({ ...price, surge_bp: 12_000 }, usage, "L", 10n ** 9n)).toBe(5_403n);
    expect(chargeFor(price, { prompt_tokens: 10 ** 9, completion_tokens: 10 ** 9 }, "XL", 123n)).toBe(123n);
  });
});

describe.each(storeKinds)("the ledger on %s", (kind) => {
  let store: Store;
  let opened: Store | undefined;
  const open = async () => (opened = store = await openTestStore(kind, inject("pgAdminUrl")));
  afterEach(async () => {
    await opened?.close();
    opened = undefined;
  });

  const fund = (account: string, amount: bigint, key = `fund:${account}:${amount}`) =>
    store.ledger.post({
      kind: "credit",
      idempotencyKey: key,
      now: 1,
      postings: [
        { account: mint, amount: -amount },
        { account, amount },
      ],
    });

  it("posts balanced transactions once per idempotency key, never below zero, and sums to zero", async () => {
    await open();
    expect(await fund(alice, 5_000_000n)).toMatchObject({ ok: true, replayed: false });
    // A replay posts nothing.
    expect(await fund(alice, 5_000_000n)).toMatchObject({ ok: true, replayed: true });
    expect(await store.ledger.balance(alice)).toBe(5_000_000n);
    expect(await store.ledger.balance(mint)).toBe(-5_000_000n);
    const pay = (amount: bigint, key: string) =>
      store.ledger.post({
        kind: "debit",
        idempotencyKey: key,
        now: 2,
        postings: [
          { account: alice, amount: -amount },
          { account: treasury, amount },
        ],
      });
    expect(await pay(6_000_000n, "too-much")).toEqual({
      ok: false,
      reason: "insufficient_funds",
      account: alice,
      balance: 5_000_000n,
      needed: 6_000_000n,
    });
    // Refused means nothing written: the same key may be used again.
    expect(await pay(2_000_000n, "too-much")).toMatchObject({ ok: true, replayed: false });
    expect(await store.ledger.balances([alice, treasury, bob])).toEqual({
      [alice]: 3_000_000n,
      [treasury]: 2_000_000n,
      [bob]: 0n,
    });
    expect(await store.ledger.total()).toBe(0n);
    await expect(
      store.ledger.post({
        kind: "credit",
        idempotencyKey: "unbalanced",
        now: 3,
        postings: [{ account: alice, amount: 1n }],
      }),
    ).rejects.toMatchObject({ code: "LEDGER_INVALID" });
    const history = await store.ledger.transactions({ account: alice, limit: 10 });
    expect(history.map((t) => t.kind)).toEqual(["debit", "credit"]);
    expect(history[0]!.postings).toEqual([
      { account: alice, amount: -2_000_000n },
      { account: treasury, amount: 2_000_000n },
    ]);
  });

  it("keeps amounts beyond 2^53 exact, as bigint", async () => {
    await open();
    const huge = 2n ** 60n + 1n;
    await fund(alice, huge);
    expect(await store.ledger.balance(alice)).toBe(huge);
    expect(await store.ledger.balance(mint)).toBe(-huge);
    expect((await store.ledger.transactions({ account: alice, limit: 1 }))[0]!.postings[1]!.amount).toBe(huge);
    expect(await store.ledger.total()).toBe(0n);
  });

  it("admission escrows each paid job in its own transaction; one the payer cannot cover is not written, its neighbours are", async () => {
    await open();
    await fund(alice, 1_000n);
    const paid = (amount: bigint, payer = alice) => ({ ...newJob(), money: { payer, amount, price } });
    const a = paid(600n);
    const b = paid(600n); // 400 left: refused
    const c = paid(400n);
    const free = newJob();
    const outcomes = await store.jobs.admit([a, b, c, free]);
    expect(outcomes).toEqual([
      "inserted",
      { reason: "insufficient_funds", balance: 400n, needed: 600n },
      "inserted",
      "inserted",
    ]);
    expect(await store.jobs.get(b.id)).toBeUndefined();
    expect((await store.jobs.get(a.id))?.money).toEqual({
      state: "escrowed",
      payer: alice,
      escrow: 600n,
      charge: null,
      price,
    });
    expect((await store.jobs.get(free.id))?.money).toBeNull();
    expect(await store.ledger.balances([alice, escrow(a.id), escrow(c.id)])).toEqual({
      [alice]: 0n,
      [escrow(a.id)]: 600n,
      [escrow(c.id)]: 400n,
    });
    await expect(store.jobs.insert(paid(1n))).rejects.toMatchObject({ code: "LEDGER_INSUFFICIENT_FUNDS" });
    expect(await store.ledger.total()).toBe(0n);
  });

  it("a completed job is charged from its escrow and the rest released; its charge waits in escrow", async () => {
    await open();
    await fund(alice, 100_000n);
    const job = { ...newJob(), money: { payer: alice, amount: 50_000n, price } };
    await store.jobs.admit([job]);
    await store.jobs.claim([claimOf(job.id, "att-1")], 1_500);
    const done = completion(job.id, "att-1");
    const usage = { prompt_tokens: 2_000, completion_tokens: 3_000 };
    const input = { ...done, output: { ...done.output, usage }, computeClass: "M" as const };
    const [result] = await store.jobs.complete([input], seal);
    // (2 000 + 3 000) tokens × 1 µHAI × 1.5 (class M) = 7 500 µHAI.
    expect(chargeFor(price, usage, "M", 50_000n)).toBe(7_500n);
    expect(result).toMatchObject({ ok: true, job: { money: { state: "charged", charge: 7_500n } } });
    expect((await store.jobs.get(job.id))?.money).toMatchObject({ state: "charged", charge: 7_500n, escrow: 50_000n });
    expect(await store.ledger.balances([alice, escrow(job.id)])).toEqual({
      [alice]: 92_500n,
      [escrow(job.id)]: 7_500n,
    });
    const postings = await store.ledger.transactions({ jobId: job.id, limit: 10 });
    expect(postings.map((t) => t.kind)).toEqual(["charge", "escrow"]);
    expect(await store.ledger.openEscrow()).toEqual({ jobs: 1, total: 7_500n });
    expect(await store.ledger.total()).toBe(0n);
  });

  it("failed, cancelled and expired jobs get their whole escrow back, once", async () => {
    await open();
    await fund(alice, 3_000n);
    const paid = (overrides: Parameters<typeof newJob>[1] = {}) => ({
      ...newJob(1_000, overrides),
      money: { payer: alice, amount: 1_000n, price },
    });
    const failing = paid({ maxAttempts: 1 });
    const cancelled = paid();
    const expiring = paid({ queueDeadlineAt: 1_100 });
    await store.jobs.admit([failing, cancelled, expiring]);
    expect(await store.ledger.balance(alice)).toBe(0n);
    expect(await store.ledger.openEscrow()).toEqual({ jobs: 3, total: 3_000n });
    await store.jobs.claim([claimOf(failing.id, "att-f")], 1_500);
    const failed = await store.jobs.failAttempt({
      jobId: failing.id,
      attemptId: "att-f",
      error: err,
      retry: true,
      now: 2,
    });
    expect(failed).toMatchObject({ status: "failed", money: { state: "refunded" } });
    expect((await store.jobs.cancel(cancelled.id, err, 3))?.money?.state).toBe("refunded");
    expect((await store.jobs.expireQueued(err, 5_000)).map((j) => [j.id, j.money?.state])).toEqual([
      [expiring.id, "refunded"],
    ]);
    expect(await store.ledger.balance(alice)).toBe(3_000n);
    // Emptied escrows are not kept as zero balances.
    expect(await store.ledger.openEscrow()).toEqual({ jobs: 0, total: 0n });
    // Cancelling again moves nothing.
    expect(await store.jobs.cancel(cancelled.id, err, 4)).toBeUndefined();
    expect(await store.ledger.balance(alice)).toBe(3_000n);
    expect(await store.ledger.total()).toBe(0n);
  });

  it("a requeued attempt keeps the escrow: money moves only when the job ends", async () => {
    await open();
    await fund(alice, 1_000n);
    const job = { ...newJob(), money: { payer: alice, amount: 1_000n, price } };
    await store.jobs.admit([job]);
    await store.jobs.claim([claimOf(job.id, "att-1")], 1_500);
    const again = await store.jobs.failAttempt({ jobId: job.id, attemptId: "att-1", error: err, retry: true, now: 2 });
    expect(again).toMatchObject({ status: "queued", money: { state: "escrowed" } });
    expect(await store.ledger.balance(escrow(job.id))).toBe(1_000n);
  });

  /** A job admitted with escrow, completed with this usage: what settlement starts from. */
  async function chargedJob(escrowAmount = 50_000n) {
    await fund(alice, escrowAmount, `fund:${Math.random()}`);
    const job = { ...newJob(), money: { payer: alice, amount: escrowAmount, price } };
    await store.jobs.admit([job]);
    await store.jobs.claim([claimOf(job.id, `att-${job.id}`)], 1_500);
    const done = completion(job.id, `att-${job.id}`);
    await store.jobs.complete(
      [{ ...done, output: { ...done.output, usage: { prompt_tokens: 4_000, completion_tokens: 6_000 } } }],
      seal,
    );
    return job;
  }

  it("settles a charged job once: its charge split, its reward capped by the period's budget", async () => {
    await open();
    const job = await chargedJob();
    const [candidate] = await store.ledger.settleable(10_000, 10);
    expect(candidate).toMatchObject({ job: { id: job.id, money: { state: "charged", charge: 10_000n } } });
    expect(candidate!.node.key).toBe(claimOf(job.id, "x").nodeKey);
    const settle = {
      kind: "settle" as const,
      idempotencyKey: `settle:${job.id}`,
      jobId: job.id,
      now: 3_000,
      postings: [
        { account: escrow(job.id), amount: -10_000n },
        { account: bob, amount: 8_500n },
        { account: treasury, amount: 1_500n },
      ],
    };
    const reward = {
      budget: 30_000n,
      since: 0,
      transfer: {
        kind: "reward" as const,
        idempotencyKey: `reward:${job.id}`,
        jobId: job.id,
        now: 3_000,
        postings: [
          { account: mint, amount: -50_000n },
          { account: bob, amount: 50_000n },
        ],
      },
    };
    expect(await store.ledger.settle({ jobId: job.id, from: "charged", settle, reward, now: 3_000 })).toEqual({
      settled: true,
      rewarded: 30_000n,
    });
    // Twice: nothing moves.
    expect(await store.ledger.settle({ jobId: job.id, from: "charged", settle, reward, now: 3_001 })).toEqual({
      settled: false,
      rewarded: 0n,
    });
    expect(await store.ledger.balances([bob, escrow(job.id)])).toEqual({ [bob]: 38_500n, [escrow(job.id)]: 0n });
    expect((await store.jobs.get(job.id))?.money?.state).toBe("settled");
    expect(await store.ledger.settleable(10_000, 10)).toEqual([]);
    expect(await store.ledger.receivedSince("reward", 0)).toBe(30_000n);
    expect(await store.ledger.openEscrow()).toEqual({ jobs: 0, total: 0n });
    expect(await store.ledger.total()).toBe(0n);
  });

  it("releases a workflow's held royalties only while it is not flagged, once, and lists only those", async () => {
    await open();
    await store.accounts.create({ id: "acc-ana", email: "ana@example.com", role: "user", now: 1 });
    const publish = (id: string) =>
      store.workflows.publish({
        id,
        name: `name-${id}`,
        version: "1.0.0",
        creatorId: "acc-ana",
        manifest: {} as never,
        contentHash: id.padEnd(64, "0").slice(0, 64),
        originId: id,
        createdAt: 1,
      });
    const flagged = "wf-000000000000000000000000";
    const cleared = "wf-ffffffffffffffffffffffff";
    await publish(flagged);
    await publish(cleared);
    await store.workflows.setFlag(flagged, true, "reported", 2);
    await fund(ledgerAccounts.held(flagged), 40n);
    await fund(ledgerAccounts.held(cleared), 40n);
    // Only the cleared workflow's holdings are listed: flagged ones first in order never crowd it out.
    expect(await store.ledger.heldBalances(1)).toEqual([{ workflowId: cleared, amount: 40n }]);
    const ana = ledgerAccounts.custodial("acc-ana");
    const release = (workflowId: string, now: number) =>
      store.ledger.releaseHeld({ workflowId, to: ana, reason: "cleared", by: "test", now });
    expect(await release(flagged, 3)).toBe(0n);
    expect(await store.ledger.balance(ledgerAccounts.held(flagged))).toBe(40n);
    // Two releases racing: one pays.
    expect((await Promise.all([release(cleared, 4), release(cleared, 5)])).sort()).toEqual([0n, 40n]);
    expect(await store.ledger.balance(ana)).toBe(40n);
    // Flagged again with royalties held meanwhile: a release keeps them.
    await store.workflows.setFlag(cleared, true, "reported again", 6);
    await fund(ledgerAccounts.held(cleared), 40n, "later royalty");
    expect(await release(cleared, 7)).toBe(0n);
    expect(await store.ledger.balance(ana)).toBe(40n);
    expect(await store.ledger.heldBalances(10)).toEqual([]);
    expect(await store.ledger.total()).toBe(0n);
  });

  it("a held job is not settled, and a refunded hold gives the charge back to the payer", async () => {
    await open();
    const job = await chargedJob();
    expect(await store.ledger.heldJob(job.id)).toBeUndefined();
    expect(await store.ledger.hold(job.id)).toBe(true);
    expect(await store.ledger.hold(job.id)).toBe(false);
    expect(await store.ledger.settleable(10_000, 10)).toEqual([]);
    expect((await store.ledger.heldJob(job.id))?.job.money?.state).toBe("held");
    const before = await store.ledger.balance(alice);
    expect(await store.ledger.refundHeld(job.id, 4_000)).toBe(true);
    expect(await store.ledger.refundHeld(job.id, 4_001)).toBe(false);
    expect(await store.ledger.balance(alice)).toBe(before + 10_000n);
    expect((await store.jobs.get(job.id))?.money).toMatchObject({ state: "refunded", charge: 10_000n });
    expect(await store.ledger.openEscrow()).toEqual({ jobs: 0, total: 0n });
    expect(await store.ledger.total()).toBe(0n);
  });
});
