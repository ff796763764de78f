import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { ledgerAccounts } from "@havn/store";
import { startNetwork, type Network, type NetworkOptions } from "@havn/testkit";
import { operatorAccount, rewardOf, splitCharge } from "../src/ledger/settlement.ts";
import { rootKey, type Answer } from "./http.ts";

let net: Network | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

describe("seed 000's reward formula", () => {
  // compute_reward() in HavnAI's server/app.py, in HAI, rounded to six decimals.
  const seed = (weight: number, factor: number, runtimeSec: number, success = true) =>
    Math.round(0.05 * (weight / 10) * factor * Math.max(1, runtimeSec / 8.0) * (success ? 1 : 0) * 1e6) / 1e6;
  const havn = (weight: number, factorBp: number, runtimeSec: number, success = true) =>
    Number(
      rewardOf({
        base: 50_000n,
        weight,
        factorBp,
        runtimeMs: runtimeSec * 1000,
        baselineMs: 8000,
        success,
      }),
    ) / 1e6;

  it.each([
    ["sdxl", 1.5, 15_000],
    ["sd15", 1.0, 10_000],
    ["anime", 0.7, 7_000],
    ["other", 1.0, 10_000],
  ])("is reproduced for the %s pipeline (factor %d)", (_pipeline, factor, factorBp) => {
    for (const [weight, runtime] of [
      [10, 2],
      [25, 8],
      [20, 16.5],
      [8, 120],
      [12.5, 33],
    ] as const)
      expect([weight, runtime, havn(weight, factorBp, runtime)]).toEqual([
        weight,
        runtime,
        seed(weight, factor, runtime),
      ]);
    expect(havn(20, factorBp, 30, false)).toBe(0);
  });
});

describe("a job's charge split", () => {
  it("sums to the charge for any charge and any shares: no µHAI made or lost", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 62n }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        (charge, a, b) => {
          const nodeBp = Math.min(a, 10_000);
          const validatorsBp = Math.min(b, 10_000 - nodeBp);
          const parts = splitCharge(charge, { nodeBp, validatorsBp, treasuryBp: 10_000 - nodeBp - validatorsBp });
          return (
            parts.node + parts.validators + parts.treasury === charge &&
            parts.node >= 0n &&
            parts.validators >= 0n &&
            parts.treasury >= 0n
          );
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("pays a node's operator's wallet, else their custodial one, else the node's own account", () => {
    expect(operatorAccount({ key: "k", accountId: "acc-1", wallet: "0xAB" + "cd".repeat(19) })).toBe(
      `wallet:0xab${"cd".repeat(19)}`,
    );
    expect(operatorAccount({ key: "k", accountId: "acc-1", wallet: null })).toBe("custodial:acc-1");
    expect(operatorAccount({ key: "k", accountId: null, wallet: null })).toBe("node:k");
  });
});

describe("settlement on a production network", () => {
  const joinToken = "join-token-for-tests-0123456789";

  async function call(n: Network, method: string, path: string, token?: string, body?: unknown) {
    const r = await fetch(`${n.url}${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return (await r.json()) as Record<string, unknown> & { money?: { state: string; charge_uhai: string } };
  }

  async function person(n: Network, name: string, scopes: string[]) {
    const reg = await call(n, "POST", "/auth/register", undefined, {
      email: `${name}@example.com`,
      password: `${name}-correct-horse`,
    });
    const access = reg.access_token as string;
    const key = await call(n, "POST", "/v1/api-keys", access, { name: "k", scopes });
    return { id: (reg.account as { id: string }).id, key: key.key as string };
  }

  /** New µHAI for an account, straight into the ledger (as an admin's credit would). */
  const fund = (n: Network, accountId: string, amount: bigint) =>
    n.coordinator.store.ledger.post({
      kind: "credit",
      idempotencyKey: `fund:${accountId}`,
      now: Date.now(),
      postings: [
        { account: ledgerAccounts.mint, amount: -amount },
        { account: ledgerAccounts.custodial(accountId), amount },
      ],
    });

  /** A paid production network with no nodes yet, sweeping every 50 ms. */
  async function production(ledger: NonNullable<NonNullable<NetworkOptions["coordinator"]>["ledger"]>) {
    return (net = await startNetwork({
      nodes: [],
      coordinator: {
        mode: "production",
        joinToken,
        rateLimitPerMinute: 0,
        sweepIntervalMs: 50,
        ledger,
        // Stake is not what this test is about (staking.test.ts): no collateral floors.
        staking: { floors: { S: 0, M: 0, L: 0, XL: 0 } },
      },
    }));
  }

  async function until(check: () => Promise<boolean>, timeoutMs = 5_000) {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error("until: timed out");
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it("after the window, the charge splits 85/5/10 and the node's operator is rewarded; self-dealing earns no reward", async () => {
    const n = await production({ challengeWindowMs: 0 });
    const alice = await person(n, "alice", ["jobs", "node"]);
    const bob = await person(n, "bob", ["node"]);
    await fund(n, alice.id, 10_000_000n);
    await n.addNode({ backend: "scripted", name: "bobs-gpu", credential: { api_key: bob.key } });
    const done = await call(n, "POST", "/v1/chat/completions", alice.key, {
      model: "havn-tiny",
      messages: [{ role: "user", content: "settle me" }],
      max_tokens: 8,
    });
    const id = done.id as string;
    await until(async () => (await call(n, "GET", `/v1/jobs/${id}`, alice.key)).money?.state === "settled");
    const job = await call(n, "GET", `/v1/jobs/${id}`, alice.key);
    const charge = BigInt(job.money!.charge_uhai);
    const kinds = (job.ledger as { kind: string }[]).map((t) => t.kind);
    expect(kinds).toEqual(["escrow", "charge", "settle", "reward"]);
    const ledger = n.coordinator.store.ledger;
    const { node, validators, treasury } = splitCharge(charge, { nodeBp: 8_500, validatorsBp: 500, treasuryBp: 1_000 });
    // havn-tiny: weight 10, pipeline llama (factor 1.0), a run under the 8 s baseline: 0.05 HAI.
    expect(await ledger.balance(ledgerAccounts.custodial(bob.id))).toBe(node + 50_000n);
    expect(await ledger.balance(ledgerAccounts.validators)).toBe(validators);
    expect(await ledger.balance(ledgerAccounts.treasury)).toBe(treasury);
    expect(await ledger.balance(ledgerAccounts.escrow(id))).toBe(0n);
    expect(await ledger.total()).toBe(0n);

    // Alice runs her own node: her job settles, but mints her nothing.
    await n.nodes[0]!.agent.stop();
    await n.addNode({ backend: "scripted", name: "alices-gpu", credential: { api_key: alice.key } });
    await until(async () => n.coordinator.registry.all().some((s) => s.name === "alices-gpu"));
    const own = await call(n, "POST", "/v1/chat/completions", alice.key, {
      model: "havn-tiny",
      messages: [{ role: "user", content: "my own node" }],
      max_tokens: 8,
    });
    await until(async () => (await call(n, "GET", `/v1/jobs/${own.id}`, alice.key)).money?.state === "settled");
    const ownJob = await call(n, "GET", `/v1/jobs/${own.id}`, alice.key);
    expect((ownJob.ledger as { kind: string }[]).map((t) => t.kind)).toEqual(["escrow", "charge", "settle"]);
    expect(await ledger.receivedSince("reward", 0)).toBe(50_000n);
  });

  it("the emission budget caps a period's rewards: past it, jobs settle and mint nothing", async () => {
    const n = await production({ challengeWindowMs: 0, rewards: { budgetPerPeriod: 70_000 } });
    const alice = await person(n, "alice", ["jobs"]);
    await fund(n, alice.id, 10_000_000n);
    await n.addNode({ backend: "scripted", name: "community", credential: { join_token: joinToken } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (
          await call(n, "POST", "/v1/chat/completions", alice.key, {
            model: "havn-tiny",
            messages: [{ role: "user", content: `job ${i}` }],
            max_tokens: 8,
          })
        ).id as string,
      );
    for (const id of ids)
      await until(async () => (await call(n, "GET", `/v1/jobs/${id}`, alice.key)).money?.state === "settled");
    // 50 000 + 20 000 (what was left) + 0: never more than the budget.
    expect(await n.coordinator.store.ledger.receivedSince("reward", 0)).toBe(70_000n);
    // A node with no account behind it (the join token) earns into its own ledger account.
    const key = n.coordinator.registry.all()[0]!.key;
    expect(await n.coordinator.store.ledger.balance(ledgerAccounts.node(key))).toBeGreaterThanOrEqual(70_000n);
  });

  it("an admin holds a job's settlement past its window, then settles it or refunds its payer; each once", async () => {
    const n = await production({ challengeWindowMs: 1_500 });
    const root = await rootKey(n, ["admin", "metrics"]);
    const alice = await person(n, "alice", ["jobs"]);
    const bob = await person(n, "bob", ["node"]);
    await fund(n, alice.id, 10_000_000n);
    await n.addNode({ backend: "scripted", name: "bobs-gpu", credential: { api_key: bob.key } });
    const run = async (text: string) =>
      (
        await call(n, "POST", "/v1/chat/completions", alice.key, {
          model: "havn-tiny",
          messages: [{ role: "user", content: text }],
          max_tokens: 8,
        })
      ).id as string;
    const disputed = await run("disputed");
    const refunded = await run("refunded");
    const settlement = (id: string, action: string, token = root) =>
      fetch(`${n.url}/v1/admin/jobs/${id}/settlement`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ action, reason: "client says the answer was wrong" }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as Answer["body"] }));

    // Only admins; only a charged job may be held, only a held one released.
    expect((await settlement(disputed, "hold", alice.key)).status).toBe(403);
    expect((await settlement(disputed, "settle")).body.error.code).toBe("LEDGER_SETTLEMENT_CONFLICT");
    expect((await settlement("job-nope", "hold")).body.error.code).toBe("JOB_NOT_FOUND");
    const held = await settlement(disputed, "hold");
    expect(held).toMatchObject({ status: 200, body: { money: { state: "held" } } });
    expect((await settlement(disputed, "hold")).status).toBe(409);
    expect((await settlement(refunded, "hold")).status).toBe(200);

    // Past the window, held jobs stay in escrow.
    await new Promise((r) => setTimeout(r, 2_000));
    const ledger = n.coordinator.store.ledger;
    const charge = BigInt(held.body.money.charge_uhai);
    expect(await ledger.openEscrow()).toEqual({ jobs: 2, total: 2n * charge });
    const before = await ledger.balance(ledgerAccounts.custodial(alice.id));

    // Settled in the node's favour: split and rewarded as usual. Refunded: the charge goes back.
    const settled = await settlement(disputed, "settle");
    expect(settled.body.money.state).toBe("settled");
    expect((settled.body.ledger as { kind: string }[]).map((t) => t.kind)).toEqual([
      "escrow",
      "charge",
      "settle",
      "reward",
    ]);
    expect((await settlement(refunded, "refund")).body.money.state).toBe("refunded");
    expect((await settlement(refunded, "refund")).status).toBe(409);
    expect((await settlement(disputed, "refund")).status).toBe(409);
    expect(await ledger.balance(ledgerAccounts.custodial(alice.id))).toBe(before + charge);
    expect(await ledger.openEscrow()).toEqual({ jobs: 0, total: 0n });
    expect(await ledger.total()).toBe(0n);

    const metrics = await (await fetch(`${n.url}/metrics`, { headers: { authorization: `Bearer ${root}` } })).text();
    expect(metrics).toContain(`havn_ledger_uhai_total{what="held"} ${2n * charge}`);
    expect(metrics).toMatch(/^havn_ledger_escrow_jobs 0$/m);
  });
});
