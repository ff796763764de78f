import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, inject, it } from "vitest";
import { ledgerAccounts } from "@havn/store";
import { startNetwork, type Network } from "@havn/testkit";
import { call, rootKey, until } from "./http.ts";

let net: Network | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await net?.close();
  net = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The bundled registry, with havn-tiny at 125 000 µHAI per 1 000 output tokens: 8 tokens cost 1 000 µHAI. */
function registry(): string {
  const dir = mkdtempSync(join(tmpdir(), "havn-registry-"));
  dirs.push(dir);
  const bundled = JSON.parse(readFileSync(new URL("../registry.json", import.meta.url), "utf8")) as {
    models: { name: string; price: unknown }[];
  };
  for (const m of bundled.models) if (m.name === "havn-tiny") m.price = { input_per_1k: 0, output_per_1k: 125_000 };
  const path = join(dir, "registry.json");
  writeFileSync(path, JSON.stringify(bundled));
  return path;
}

const joinToken = "join-token-for-tests-0123456789";

async function person(n: Network, name: string, scopes: string[]) {
  const reg = await call(n, "POST", "/auth/register", {
    body: { email: `${name}@example.com`, password: `${name}-correct-horse-battery` },
  });
  const key = await call(n, "POST", "/v1/api-keys", {
    token: reg.body.access_token as string,
    body: { name: "k", scopes },
  });
  return { id: reg.body.account.id as string, key: key.body.key as string };
}

describe.each(["sqlite", "postgres"] as const)("workflows with royalty splits, on %s", (kind) => {
  async function network() {
    return (net = await startNetwork({
      store: kind,
      pgAdminUrl: inject("pgAdminUrl"),
      nodes: [],
      coordinator: {
        mode: "production",
        joinToken,
        rateLimitPerMinute: 0,
        sweepIntervalMs: 50,
        registryPath: registry(),
        ledger: { challengeWindowMs: 0, rewards: { enabled: false } },
        // Stake is not what this test is about (staking.test.ts): no collateral floors.
        staking: { floors: { S: 0, M: 0, L: 0, XL: 0 } },
      },
    }));
  }

  // The worked example of docs/architecture.md §11 ("Workflows and royalties"): the balances below
  // are the ones computed there by hand.
  it("the worked example: B builds on A, run three times by two clients on two nodes", async () => {
    const n = await network();
    const [ana, ben, carl, dana, olga, pete] = await Promise.all(
      [
        ["ana", ["jobs"]],
        ["ben", ["jobs"]],
        ["carl", ["jobs"]],
        ["dana", ["jobs"]],
        ["olga", ["node"]],
        ["pete", ["node"]],
      ].map(([name, scopes]) => person(n, name as string, scopes as string[])),
    );
    for (const client of [carl!, dana!])
      await n.coordinator.store.ledger.post({
        kind: "credit",
        idempotencyKey: `fund:${client.id}`,
        now: Date.now(),
        postings: [
          { account: ledgerAccounts.mint, amount: -10_000_000n },
          { account: ledgerAccounts.custodial(client.id), amount: 10_000_000n },
        ],
      });

    const a = await call(n, "POST", "/v1/workflows", {
      token: ana!.key,
      body: { name: "summarize", version: "1.0.0", model: "havn-tiny", template: "Summarize: {{input}}" },
    });
    expect(a.status).toBe(200);
    expect(a.body.manifest.royalties).toEqual({ creator: 45, upstream: 20, node: 25, validators: 5, treasury: 5 });
    const b = await call(n, "POST", "/v1/workflows", {
      token: ben!.key,
      body: {
        name: "tldr",
        version: "1.0.0",
        model: "havn-tiny",
        template: "In one line: {{input}}",
        parameters: { max_tokens: 8, temperature: 0 },
        royalties: { creator: 40, upstream: 25, node: 25, validators: 5, treasury: 5 },
        dependencies: [{ workflow: a.body.id, share: 100 }],
      },
    });
    expect(b.status).toBe(200);
    expect(b.body).toMatchObject({ name: "tldr", origin: b.body.id, flagged: false });

    const run = async (client: { key: string }, text: string) => {
      const r = await call(n, "POST", "/v1/chat/completions", {
        token: client.key,
        body: { model: "havn-tiny", workflow: "tldr", messages: [{ role: "user", content: text }] },
      });
      expect(r.status).toBe(200);
      expect(r.body.usage.cost_uhai).toBe("1000");
      return r.body.id as string;
    };
    await n.addNode({ backend: "scripted", name: "olgas-gpu", credential: { api_key: olga!.key } });
    const ids = [await run(carl!, "first"), await run(carl!, "second")];
    await n.nodes[0]!.agent.stop();
    await n.addNode({ backend: "scripted", name: "petes-gpu", credential: { api_key: pete!.key } });
    await until(async () => n.coordinator.registry.all().some((s) => s.name === "petes-gpu"));
    ids.push(await run(dana!, "third"));
    const job = await call(n, "GET", `/v1/jobs/${ids[0]}`, { token: carl!.key });
    expect(job.body.workflow_id).toBe(b.body.id);
    // The template around the caller's text; the workflow's parameters where the request set none.
    const stored = await n.coordinator.store.jobs.get(ids[0]!);
    expect(stored?.input).toEqual({ kind: "chat", messages: [{ role: "user", content: "In one line: first" }] });
    expect(stored?.params).toMatchObject({ max_tokens: 8, temperature: 0 });
    for (const id of ids) await until(async () => (await n.coordinator.store.jobs.get(id))?.money?.state === "settled");

    const ledger = n.coordinator.store.ledger;
    const balance = (accountId: string) => ledger.balance(ledgerAccounts.custodial(accountId));
    expect({
      ana: await balance(ana!.id),
      ben: await balance(ben!.id),
      carl: await balance(carl!.id),
      dana: await balance(dana!.id),
      olga: await balance(olga!.id),
      pete: await balance(pete!.id),
      validators: await ledger.balance(ledgerAccounts.validators),
      treasury: await ledger.balance(ledgerAccounts.treasury),
    }).toEqual({
      ana: 750n,
      ben: 1_200n,
      carl: 9_998_000n,
      dana: 9_999_000n,
      olga: 500n,
      pete: 250n,
      validators: 150n,
      treasury: 150n,
    });
    expect(await ledger.total()).toBe(0n);
    // Each settled run is in the public log: workflow, caller, node, fee and the split, to the µHAI.
    const log = await call(n, "GET", "/v1/log");
    const settled = (log.body.entries as { kind: string; settlement?: { settlement: Record<string, unknown> } }[])
      .filter((e) => e.kind === "settlement")
      .map((e) => e.settlement!.settlement);
    expect(settled).toHaveLength(3);
    expect(settled[2]).toMatchObject({
      workflow_id: b.body.id,
      caller: ledgerAccounts.custodial(dana!.id),
      fee_uhai: "1000",
    });
    expect(
      new Map((settled[2]!.split as { account: string; amount_uhai: string }[]).map((p) => [p.account, p.amount_uhai])),
    ).toEqual(
      new Map([
        [ledgerAccounts.custodial(pete!.id), "250"],
        [ledgerAccounts.validators, "50"],
        [ledgerAccounts.custodial(ben!.id), "400"],
        [ledgerAccounts.custodial(ana!.id), "250"],
        [ledgerAccounts.treasury, "50"],
      ]),
    );
    const earnedB = await call(n, "GET", "/v1/workflows/tldr/earnings", { token: ben!.key });
    expect(earnedB.body).toMatchObject({ earned_uhai: "1200", direct_uhai: "1200", upstream_uhai: "0", runs: 3 });
    const earnedA = await call(n, "GET", `/v1/workflows/${a.body.id}/earnings`, { token: ana!.key });
    expect(earnedA.body).toMatchObject({ earned_uhai: "750", direct_uhai: "0", upstream_uhai: "750", runs: 3 });
  });

  it("versions are immutable, names are their creator's, copies are traced to their origin, flags hold royalties", async () => {
    const n = await network();
    const [ana, ben, root] = await Promise.all([person(n, "ana", ["jobs"]), person(n, "ben", ["jobs"]), rootKey(n)]);
    const manifest = { name: "summarize", version: "1.0.0", model: "havn-tiny", template: "Summarize: {{input}}" };
    const a = await call(n, "POST", "/v1/workflows", { token: ana.key, body: manifest });
    expect(a.status).toBe(200);
    expect((await call(n, "POST", "/v1/workflows", { token: ana.key, body: manifest })).body.error.code).toBe(
      "WORKFLOW_VERSION_EXISTS",
    );
    const stolen = await call(n, "POST", "/v1/workflows", { token: ben.key, body: { ...manifest, version: "2.0.0" } });
    expect(stolen.body.error.code).toBe("WORKFLOW_NAME_TAKEN");
    for (const bad of [
      { ...manifest, name: "x", template: "no placeholder" },
      { ...manifest, name: "x", royalties: { creator: 50, upstream: 20, node: 25, validators: 5, treasury: 5 } },
      { ...manifest, name: "x", dependencies: [{ workflow: "wf-000000000000000000000000", share: 100 }] },
      { ...manifest, name: "x", dependencies: [{ workflow: a.body.id, share: 60 }] },
    ])
      expect((await call(n, "POST", "/v1/workflows", { token: ben.key, body: bad })).body.error.code).toBe(
        "WORKFLOW_INVALID",
      );

    for (const bad of [
      // Below the network's floors: the node that runs it is paid at least 25 %.
      { ...manifest, name: "greedy", royalties: { creator: 100, upstream: 0, node: 0, validators: 0, treasury: 0 } },
      { ...manifest, name: "wf-0123456789abcdef01234567" },
      { ...manifest, name: "echo", template: "{{input}}".repeat(9) },
      { ...manifest, name: "nul", template: "a\u0000 {{input}}" },
    ])
      expect((await call(n, "POST", "/v1/workflows", { token: ben.key, body: bad })).body.error.code).toBe(
        "WORKFLOW_INVALID",
      );

    // Ben copies Ana's workflow under his own name — padded with spaces, declaring a decoy parent of
    // his own, with no upstream share: refused; with one, traced to hers, which is paid as its upstream.
    const decoy = await call(n, "POST", "/v1/workflows", {
      token: ben.key,
      body: { ...manifest, name: "decoy", template: "Something else: {{input}}" },
    });
    const copied = { ...manifest, name: "my-summary", template: "  Summarize:   {{input}} ", parent: decoy.body.id };
    const cheap = { ...copied, royalties: { creator: 65, upstream: 0, node: 25, validators: 5, treasury: 5 } };
    expect((await call(n, "POST", "/v1/workflows", { token: ben.key, body: cheap })).body.error.message).toMatch(
      /derives from wf-.*upstream share.*at least 20 %/,
    );
    const copy = await call(n, "POST", "/v1/workflows", { token: ben.key, body: copied });
    expect(copy.body).toMatchObject({
      origin: a.body.id,
      manifest: { dependencies: [{ workflow: a.body.id, share: 100 }] },
    });
    const decoyOnly = { ...copied, name: "my-summary-2", dependencies: [{ workflow: decoy.body.id, share: 100 }] };
    expect((await call(n, "POST", "/v1/workflows", { token: ben.key, body: decoyOnly })).body.error.code).toBe(
      "WORKFLOW_INVALID",
    );
    // A derivative that declares its parent (different content) pays it.
    const derived = await call(n, "POST", "/v1/workflows", {
      token: ben.key,
      body: { ...manifest, name: "summarize-fr", template: "Résume : {{input}}", parent: a.body.id },
    });
    expect(derived.body).toMatchObject({
      origin: a.body.id,
      manifest: { dependencies: [{ workflow: a.body.id, share: 100 }] },
    });

    await n.addNode({ backend: "scripted", name: "gpu", credential: { join_token: joinToken } });
    await n.coordinator.store.ledger.post({
      kind: "credit",
      idempotencyKey: "fund:ben",
      now: Date.now(),
      postings: [
        { account: ledgerAccounts.mint, amount: -10_000_000n },
        { account: ledgerAccounts.custodial(ben.id), amount: 10_000_000n },
      ],
    });
    const ask = (workflow: string, headers: Record<string, string> = {}) =>
      call(n, "POST", "/v1/chat/completions", {
        token: ben.key,
        headers,
        body: {
          model: "havn-tiny",
          messages: [{ role: "user", content: "news" }],
          max_tokens: 8,
          ...(workflow && { workflow }),
        },
      });
    // Run before the flag with an Idempotency-Key: a retry after the flag still gets that job.
    const before = await ask("summarize", { "idempotency-key": "before-the-flag" });
    expect(before.status).toBe(200);
    await until(async () => (await n.coordinator.store.jobs.get(before.body.id))?.money?.state === "settled");
    const paidBefore = await n.coordinator.store.ledger.balance(ledgerAccounts.custodial(ana.id));
    expect(paidBefore).toBeGreaterThan(0n);
    // Flagged: it does not run; cleared: it runs again.
    const flag = await call(n, "POST", `/v1/admin/workflows/${a.body.id}/flag`, {
      token: root,
      body: { flagged: true, reason: "reported as plagiarised" },
    });
    expect(flag.body).toMatchObject({ flagged: true, flag_reason: "reported as plagiarised" });
    expect(
      (
        await call(n, "POST", `/v1/admin/workflows/${a.body.id}/flag`, {
          token: ana.key,
          body: { flagged: false, reason: "x" },
        })
      ).status,
    ).toBe(403);
    const retried = await ask("summarize", { "idempotency-key": "before-the-flag" });
    expect(retried).toMatchObject({ status: 200, body: { id: before.body.id } });
    expect(retried.headers.get("idempotent-replayed")).toBe("true");
    expect((await ask("summarize")).body.error.code).toBe("WORKFLOW_FLAGGED");
    // A copy of flagged content does not run either, and cannot be published again (a new version of it).
    expect((await ask("my-summary")).body.error.code).toBe("WORKFLOW_FLAGGED");
    const again = await call(n, "POST", "/v1/workflows", { token: ana.key, body: { ...manifest, version: "1.0.1" } });
    expect(again.body.error.code).toBe("WORKFLOW_FLAGGED");
    expect((await ask("nope")).body.error.code).toBe("WORKFLOW_NOT_FOUND");
    // A prompt its template would repeat past the coordinator's limit: refused with a code, not a 500.
    const long = await call(n, "POST", "/v1/chat/completions", {
      token: ben.key,
      body: {
        model: "havn-tiny",
        workflow: "summarize-fr",
        messages: [{ role: "user", content: "x".repeat(199_995) }],
      },
    });
    expect(long.body.error.code).toBe("REQUEST_PROMPT_TOO_LONG");
    // The derivative runs; its upstream share for the flagged origin is held, not paid.
    const ran = await ask("", { "x-havn-workflow": "summarize-fr@1.0.0" });
    expect(ran.status).toBe(200);
    await until(async () => (await n.coordinator.store.jobs.get(ran.body.id))?.money?.state === "settled");
    const held = await n.coordinator.store.ledger.balance(ledgerAccounts.held(a.body.id));
    expect(held).toBeGreaterThan(0n);
    expect(await n.coordinator.store.ledger.balance(ledgerAccounts.custodial(ana.id))).toBe(paidBefore);
    await call(n, "POST", `/v1/admin/workflows/summarize/flag`, {
      token: root,
      body: { flagged: false, reason: "cleared" },
    });
    expect(await n.coordinator.store.ledger.balance(ledgerAccounts.held(a.body.id))).toBe(0n);
    expect(await n.coordinator.store.ledger.balance(ledgerAccounts.custodial(ana.id))).toBe(paidBefore + held);
    // A settlement that read the flag before the clear and committed after the release leaves its
    // share held; the next settlement pass sends it on to the creator.
    const late = await n.coordinator.store.ledger.post({
      kind: "settle",
      idempotencyKey: "a-settlement-that-raced-the-clear",
      now: Date.now(),
      postings: [
        { account: ledgerAccounts.mint, amount: -40n },
        { account: ledgerAccounts.held(a.body.id), amount: 40n },
      ],
    });
    expect(late.ok).toBe(true);
    await until(async () => (await n.coordinator.store.ledger.balance(ledgerAccounts.held(a.body.id))) === 0n);
    expect(await n.coordinator.store.ledger.balance(ledgerAccounts.custodial(ana.id))).toBe(paidBefore + held + 40n);
    expect((await ask("summarize")).status).toBe(200);
    expect(await n.coordinator.store.ledger.total()).toBe(0n);
  });
});
