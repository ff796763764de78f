import { createSiweMessage } from "viem/siwe";
import { privateKeyToAccount } from "viem/accounts";
import { afterEach, describe, expect, inject, it } from "vitest";
import { ledgerAccounts } from "@havn/store";
import { startNetwork, type Network, type NetworkOptions } from "@havn/testkit";
import { call, rootKey } from "./http.ts";

let net: Network | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "havn-tiny",
  messages: [{ role: "user", content }],
  max_tokens: 8,
  ...extra,
});

describe.each(["sqlite", "postgres"] as const)("money on a dev network, on %s", (kind) => {
  it("the dev account is funded; a job escrows, is charged what it cost, and says so; the ledger sums to zero", async () => {
    const n = (net = await startNetwork({
      store: kind,
      pgAdminUrl: inject("pgAdminUrl"),
      nodes: [{ backend: "scripted", name: "n1" }],
    }));
    const before = await call(n, "GET", "/v1/balance");
    expect(before.body).toMatchObject({ account: "custodial:acc-dev", balance_uhai: "1000000000", balance: "1000" });
    const done = await call(n, "POST", "/v1/chat/completions", { body: chat("what does this cost?") });
    expect(done.status).toBe(200);
    const cost = BigInt(done.body.usage.cost_uhai as string);
    expect(cost).toBeGreaterThan(0n);
    expect(done.body.havn.cost_uhai).toBe(cost.toString());
    expect(done.body.usage.cost).toBe(Number(cost) / 1e6);
    const job = await call(n, "GET", `/v1/jobs/${done.body.id}`);
    expect(job.body.money).toMatchObject({
      state: "charged",
      payer: "custodial:acc-dev",
      charge_uhai: cost.toString(),
      price: { input_per_1k: "100", output_per_1k: "200", surge_bp: 10_000 },
    });
    expect(job.body.ledger.map((t: { kind: string }) => t.kind)).toEqual(["escrow", "charge"]);
    const after = await call(n, "GET", "/v1/balance");
    expect(BigInt(after.body.balance_uhai)).toBe(1_000_000_000n - cost);
    expect(await n.coordinator.store.ledger.total()).toBe(0n);
    // The faucet works in dev mode.
    expect((await call(n, "POST", "/v1/faucet")).body.kind).toBe("faucet");
  });
});

/** Signs in with `wallet` (EIP-4361) as the signed-in account: binds it, password given again. */
async function bindWallet(
  n: Network,
  account: { access: string; password: string },
  wallet: ReturnType<typeof privateKeyToAccount>,
) {
  const { nonce } = (await call(n, "POST", "/auth/siwe/nonce")).body as { nonce: string };
  const message = createSiweMessage({
    address: wallet.address,
    chainId: 1,
    domain: new URL(n.url).host,
    nonce,
    uri: n.url,
    version: "1",
  });
  return call(n, "POST", "/auth/siwe/verify", {
    token: account.access,
    body: { message, signature: await wallet.signMessage({ message }), password: account.password },
  });
}

describe("money on a production network", () => {
  const joinToken = "join-token-for-tests-0123456789";
  const production = async (coordinator: NetworkOptions["coordinator"] = {}) =>
    (net = await startNetwork({
      nodes: [{ backend: "scripted", name: "n1", tokens: 20, tokenDelayMs: 20 }],
      coordinator: {
        mode: "production",
        joinToken,
        rateLimitPerMinute: 0,
        ledger: {},
        // Stake is not what this test is about (staking.test.ts): no collateral floors.
        staking: { floors: { S: 0, M: 0, L: 0, XL: 0 } },
        ...coordinator,
      },
    }));

  async function person(n: Network, name: string) {
    const password = `${name}-correct-horse-battery`;
    const reg = await call(n, "POST", "/auth/register", { body: { email: `${name}@example.com`, password } });
    const access = reg.body.access_token as string;
    const key = await call(n, "POST", "/v1/api-keys", { token: access, body: { name: "k", scopes: ["jobs"] } });
    return { id: reg.body.account.id as string, password, access, key: key.body.key as string };
  }

  const admin = (n: Network) => rootKey(n);

  /** Alice, credited 1 HAI by an admin, streams a paid job: the network, the people, the open stream. */
  async function paidStream(text: string) {
    const n = await production();
    const alice = await person(n, "alice");
    const root = await admin(n);
    await call(n, "POST", "/v1/admin/ledger/credit", {
      token: root,
      body: { account_id: alice.id, amount_uhai: "1000000", reason: "test" },
    });
    const stream = await fetch(`${n.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${alice.key}` },
      body: JSON.stringify(chat(text, { stream: true, max_tokens: 20 })),
    });
    return { n, alice, root, stream, id: stream.headers.get("x-havn-job-id")! };
  }

  it("an account without funds gets 402 and nothing is queued; an admin's credit (once per key) pays for jobs", async () => {
    const n = await production();
    const alice = await person(n, "alice");
    const refused = await call(n, "POST", "/v1/chat/completions", { token: alice.key, body: chat("on credit?") });
    expect([refused.status, refused.body.error.code]).toEqual([402, "LEDGER_INSUFFICIENT_FUNDS"]);
    expect(refused.body.error.details).toMatchObject({ balance: "0" });
    expect(Object.values(await n.coordinator.store.jobs.countByStatus()).reduce((a, b) => a + b, 0)).toBe(0);

    const root = await admin(n);
    const credit = () =>
      call(n, "POST", "/v1/admin/ledger/credit", {
        token: root,
        headers: { "idempotency-key": "deposit-1" },
        body: { account_id: alice.id, amount_uhai: "5000000", reason: "bank transfer #1" },
      });
    const first = await credit();
    expect(first.body).toMatchObject({ kind: "credit", memo: { by: "acc-root", reason: "bank transfer #1" } });
    expect((await credit()).body.id).toBe(first.body.id);
    expect((await call(n, "GET", "/v1/balance", { token: alice.key })).body.balance).toBe("5");
    // A user is no admin.
    const self = await call(n, "POST", "/v1/admin/ledger/credit", {
      token: alice.access,
      body: { account_id: alice.id, amount_uhai: "1", reason: "me" },
    });
    expect(self.status).toBe(403);

    const done = await call(n, "POST", "/v1/chat/completions", { token: alice.key, body: chat("paid for") });
    expect(done.status).toBe(200);
    const history = await call(n, "GET", "/v1/ledger/transactions", { token: alice.key });
    expect(history.body.data.map((t: { kind: string }) => t.kind)).toEqual(["charge", "escrow", "credit"]);
    expect(await n.coordinator.store.ledger.total()).toBe(0n);
    // No faucet outside dev mode.
    expect((await call(n, "POST", "/v1/faucet", { token: alice.key })).body.error.code).toBe("LEDGER_FAUCET_DISABLED");
  });

  it("a cancelled job gives its whole escrow back", async () => {
    const { n, alice, stream, id } = await paidStream("cancel me");
    const escrowed = BigInt((await call(n, "GET", "/v1/balance", { token: alice.key })).body.balance_uhai);
    expect(escrowed).toBeLessThan(1_000_000n);
    const cancelled = await call(n, "POST", `/v1/jobs/${id}/cancel`, { token: alice.key });
    expect(cancelled.body.money.state).toBe("refunded");
    await stream.text();
    expect((await call(n, "GET", "/v1/balance", { token: alice.key })).body.balance_uhai).toBe("1000000");
  });

  it("withdrawals move a balance to pending payouts, never more than it holds", async () => {
    const n = await production();
    const alice = await person(n, "alice");
    const root = await admin(n);
    await call(n, "POST", "/v1/admin/ledger/credit", {
      token: root,
      body: { account_id: alice.id, amount_uhai: "3000000", reason: "test" },
    });
    const tooMuch = await call(n, "POST", "/v1/withdrawals", { token: alice.access, body: { amount_uhai: "3000001" } });
    expect([tooMuch.status, tooMuch.body.error.code]).toEqual([402, "LEDGER_INSUFFICIENT_FUNDS"]);
    // A jobs key moves no money out.
    expect((await call(n, "POST", "/v1/withdrawals", { token: alice.key, body: { amount_uhai: "1" } })).status).toBe(
      403,
    );
    const wallet = "0x" + "ab".repeat(20);
    const w = await call(n, "POST", "/v1/withdrawals", {
      token: alice.access,
      body: { amount_uhai: "1000000", to: wallet },
    });
    expect(w.body).toMatchObject({ kind: "withdraw", memo: { to: wallet } });
    expect((await call(n, "GET", "/v1/balance", { token: alice.key })).body).toMatchObject({
      balance_uhai: "2000000",
      pending_payouts_uhai: "1000000",
    });
    expect((await call(n, "GET", "/v1/withdrawals", { token: alice.key })).body.data).toHaveLength(1);
  });

  it("binding a wallet claims what the account held in its custodial wallet", async () => {
    const n = await production();
    const alice = await person(n, "alice");
    const root = await admin(n);
    await call(n, "POST", "/v1/admin/ledger/credit", {
      token: root,
      body: { account_id: alice.id, amount_uhai: "2500000", reason: "test" },
    });
    const wallet = privateKeyToAccount(`0x${"55".repeat(32)}`);
    expect((await bindWallet(n, alice, wallet)).status).toBe(200);
    const b = await call(n, "GET", "/v1/balance", { token: alice.key });
    expect(b.body).toMatchObject({ account: ledgerAccounts.wallet(wallet.address), balance_uhai: "2500000" });
    expect(await n.coordinator.store.ledger.balance(ledgerAccounts.custodial(alice.id))).toBe(0n);
  });

  it("a job paid before the wallet was bound is refunded to where it was paid from, then moves to the wallet", async () => {
    const { n, alice, stream, id } = await paidStream("paid from custodial");
    const wallet = privateKeyToAccount(`0x${"66".repeat(32)}`);
    expect((await bindWallet(n, alice, wallet)).status).toBe(200);
    expect((await call(n, "POST", `/v1/jobs/${id}/cancel`, { token: alice.key })).body.money.payer).toBe(
      ledgerAccounts.custodial(alice.id),
    );
    await stream.text();
    expect((await call(n, "GET", "/v1/balance", { token: alice.key })).body).toMatchObject({
      account: ledgerAccounts.wallet(wallet.address),
      balance_uhai: "1000000",
    });
    expect(await n.coordinator.store.ledger.balance(ledgerAccounts.custodial(alice.id))).toBe(0n);
  });

  it("a free network (ledger off) charges nothing and keeps no money on jobs", async () => {
    const n = await production({ ledger: { enabled: false } });
    const alice = await person(n, "alice");
    const done = await call(n, "POST", "/v1/chat/completions", { token: alice.key, body: chat("free") });
    expect(done.status).toBe(200);
    expect(done.body.usage.cost_uhai).toBeUndefined();
    expect(done.body.havn.cost_uhai).toBeNull();
    expect((await call(n, "GET", `/v1/jobs/${done.body.id}`, { token: alice.key })).body.money).toBeNull();
  });
});
