import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import OpenAI from "openai";
import { pino } from "pino";
import { createSiweMessage } from "viem/siwe";
import { privateKeyToAccount } from "viem/accounts";
import { afterEach, describe, expect, inject, it } from "vitest";
import { generateKeyPair } from "@havn/protocol";
import { openStore } from "@havn/store";
import type { ScriptedBackend } from "@havn/testkit";
import { startNetwork, type Network, type NetworkOptions } from "@havn/testkit";
import { startCoordinator } from "../src/index.ts";
import { call, type Answer } from "./http.ts";

const joinToken = "join-token-for-tests-0123456789";
let net: Network | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

/** A production network: credentials required, nodes join with the join token. */
async function production(extra: Partial<NetworkOptions> = {}, coordinator: NetworkOptions["coordinator"] = {}) {
  net = await startNetwork({
    nodes: [{ backend: "scripted", name: "n1", slots: 4 }],
    ...extra,
    coordinator: { mode: "production", joinToken, rateLimitPerMinute: 0, ...coordinator },
  });
  return net;
}

/** Registers an account and gives it a login and keys of the scopes asked. */
async function person(n: Network, name: string, keyScopes: Record<string, string[]> = { jobs: ["jobs"] }) {
  const password = `${name}-correct-horse-battery`;
  const reg = await call(n, "POST", "/auth/register", { body: { email: `${name}@example.com`, password } });
  expect(reg.status).toBe(201);
  const access = reg.body.access_token as string;
  const keys: Record<string, string> = {};
  const keyIds: Record<string, string> = {};
  for (const [label, scopes] of Object.entries(keyScopes)) {
    const k = await call(n, "POST", "/v1/api-keys", { token: access, body: { name: label, scopes } });
    expect(k.status).toBe(201);
    keys[label] = k.body.key as string;
    keyIds[label] = k.body.id as string;
  }
  return {
    accountId: (reg.body.account as { id: string }).id,
    password,
    access,
    refresh: reg.body.refresh_token as string,
    keys,
    keyIds,
  };
}

/** An admin account made on the coordinator's host, and a key of the scopes asked. */
async function root(n: Network, scopes: ("admin" | "jobs" | "metrics" | "node")[] = ["admin"]) {
  const id = `acc-root-${Math.random().toString(36).slice(2, 8)}`;
  await n.coordinator.store.accounts.create({ id, email: `${id}@example.com`, role: "admin", now: 1 });
  const made = await n.coordinator.auth.createKey(
    { accountId: id, role: "admin", scopes: new Set(["admin", "jobs"]), via: "access_token" },
    { name: "root", scopes },
  );
  return { accountId: id, key: made.key };
}

const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  model: "havn-tiny",
  messages: [{ role: "user", content }],
  max_tokens: 8,
  ...extra,
});

describe.each(["sqlite", "postgres"] as const)("who may call what, on %s", (kind) => {
  it("walks every route: anonymous, a wrong-scope key, a revoked key, another account's key", async () => {
    const n = await production({ store: kind, pgAdminUrl: inject("pgAdminUrl") });
    const alice = await person(n, "alice", { jobs: ["jobs"], node: ["node"], revoked: ["jobs"] });
    const mallory = await person(n, "mallory", { jobs: ["jobs"] });
    const revoked = await call(n, "DELETE", `/v1/api-keys/${alice.keyIds.revoked}`, { token: alice.access });
    expect(revoked.status).toBe(200);
    const done = await call(n, "POST", "/v1/chat/completions", { token: alice.keys.jobs, body: chat("alice's") });
    expect(done.status).toBe(200);
    const job = done.body.id as string;
    const cid = (done.body.havn as { output_cid: string }).output_cid;

    type Case = {
      /** Who may call it, as the route table says. */
      readonly level: string;
      readonly request: { method: string; path: string; body?: unknown };
      /** A route about one of Alice's things: another account gets 404, not 403. */
      readonly alices?: boolean;
    };
    // One entry per registered route; a route added without one fails the first assertion.
    const cases: Record<string, Case> = {
      "POST /v1/chat/completions": {
        level: "jobs",
        request: { method: "POST", path: "/v1/chat/completions", body: chat("x") },
      },
      "POST /v1/completions": {
        level: "jobs",
        request: { method: "POST", path: "/v1/completions", body: { model: "havn-tiny", prompt: "x", max_tokens: 4 } },
      },
      "GET /v1/models": { level: "jobs", request: { method: "GET", path: "/v1/models" } },
      "GET /v1/jobs/:id": { level: "jobs", request: { method: "GET", path: `/v1/jobs/${job}` }, alices: true },
      "GET /jobs/:id": { level: "jobs", request: { method: "GET", path: `/jobs/${job}` }, alices: true },
      "POST /v1/jobs/:id/cancel": {
        level: "jobs",
        request: { method: "POST", path: `/v1/jobs/${job}/cancel` },
        alices: true,
      },
      "POST /jobs/:id/cancel": {
        level: "jobs",
        request: { method: "POST", path: `/jobs/${job}/cancel` },
        alices: true,
      },
      "DELETE /v1/jobs/:id": { level: "jobs", request: { method: "DELETE", path: `/v1/jobs/${job}` }, alices: true },
      "POST /v1/jobs/:id/visibility": {
        level: "jobs",
        request: { method: "POST", path: `/v1/jobs/${job}/visibility`, body: { public: false } },
        alices: true,
      },
      "GET /v1/outputs/:cid": {
        level: "optional",
        request: { method: "GET", path: `/v1/outputs/${cid}` },
        alices: true,
      },
      "GET /outputs/:cid": { level: "optional", request: { method: "GET", path: `/outputs/${cid}` }, alices: true },
      "GET /v1/log/:seq": { level: "public", request: { method: "GET", path: "/v1/log/1" } },
      "GET /log/:seq": { level: "public", request: { method: "GET", path: "/log/1" } },
      "GET /v1/log": { level: "public", request: { method: "GET", path: "/v1/log" } },
      "GET /v1/log/head": { level: "public", request: { method: "GET", path: "/v1/log/head" } },
      "GET /v1/log/proof/:id": { level: "public", request: { method: "GET", path: `/v1/log/proof/${job}` } },
      "GET /v1/keys": { level: "public", request: { method: "GET", path: "/v1/keys" } },
      "GET /v1/reputation": { level: "public", request: { method: "GET", path: "/v1/reputation" } },
      "GET /v1/reputation/:node": { level: "public", request: { method: "GET", path: "/v1/reputation/nobody" } },
      "POST /v1/workflows": { level: "jobs", request: { method: "POST", path: "/v1/workflows", body: {} } },
      "GET /v1/workflows": { level: "jobs", request: { method: "GET", path: "/v1/workflows" } },
      "GET /v1/workflows/:ref": { level: "jobs", request: { method: "GET", path: "/v1/workflows/none" } },
      "GET /v1/workflows/:ref/earnings": {
        level: "jobs",
        request: { method: "GET", path: "/v1/workflows/none/earnings" },
      },
      "POST /v1/admin/workflows/:ref/flag": {
        level: "admin",
        request: { method: "POST", path: "/v1/admin/workflows/none/flag", body: {} },
      },
      "POST /auth/register": { level: "public", request: { method: "POST", path: "/auth/register", body: {} } },
      "POST /auth/login": { level: "public", request: { method: "POST", path: "/auth/login", body: {} } },
      "POST /auth/refresh": { level: "public", request: { method: "POST", path: "/auth/refresh", body: {} } },
      "POST /auth/logout": { level: "public", request: { method: "POST", path: "/auth/logout", body: {} } },
      "GET /auth/me": { level: "account", request: { method: "GET", path: "/auth/me" } },
      "POST /auth/siwe/nonce": { level: "public", request: { method: "POST", path: "/auth/siwe/nonce" } },
      "POST /auth/siwe/verify": { level: "optional", request: { method: "POST", path: "/auth/siwe/verify", body: {} } },
      "POST /v1/api-keys": { level: "owner", request: { method: "POST", path: "/v1/api-keys", body: { name: "x" } } },
      "GET /v1/api-keys": { level: "owner", request: { method: "GET", path: "/v1/api-keys" } },
      "DELETE /v1/api-keys/:id": {
        level: "owner",
        request: { method: "DELETE", path: `/v1/api-keys/${alice.keyIds.jobs}` },
      },
      "POST /v1/admin/invites": { level: "admin", request: { method: "POST", path: "/v1/admin/invites", body: {} } },
      "GET /v1/nodes": { level: "admin", request: { method: "GET", path: "/v1/nodes" } },
      "GET /v1/balance": { level: "account", request: { method: "GET", path: "/v1/balance" } },
      "GET /v1/ledger/transactions": { level: "account", request: { method: "GET", path: "/v1/ledger/transactions" } },
      "POST /v1/faucet": { level: "account", request: { method: "POST", path: "/v1/faucet" } },
      "POST /v1/withdrawals": {
        level: "owner",
        request: { method: "POST", path: "/v1/withdrawals", body: { amount_uhai: "1" } },
      },
      "GET /v1/withdrawals": { level: "account", request: { method: "GET", path: "/v1/withdrawals" } },
      "POST /v1/admin/ledger/credit": {
        level: "admin",
        request: { method: "POST", path: "/v1/admin/ledger/credit", body: {} },
      },
      "POST /v1/admin/ledger/debit": {
        level: "admin",
        request: { method: "POST", path: "/v1/admin/ledger/debit", body: {} },
      },
      "POST /v1/admin/jobs/:id/settlement": {
        level: "admin",
        request: { method: "POST", path: `/v1/admin/jobs/${job}/settlement`, body: {} },
      },
      "GET /v1/stake": { level: "account", request: { method: "GET", path: "/v1/stake" } },
      "GET /v1/stake/:node": { level: "public", request: { method: "GET", path: "/v1/stake/n1" } },
      "POST /v1/stake": { level: "owner", request: { method: "POST", path: "/v1/stake", body: {} } },
      "POST /v1/stake/unbond": { level: "owner", request: { method: "POST", path: "/v1/stake/unbond", body: {} } },
      "POST /v1/nodes/:node/promise": {
        level: "owner",
        request: { method: "POST", path: "/v1/nodes/n1/promise", body: {} },
      },
      "DELETE /v1/nodes/:node/promise": { level: "owner", request: { method: "DELETE", path: "/v1/nodes/n1/promise" } },
      "GET /v1/pool": { level: "public", request: { method: "GET", path: "/v1/pool" } },
      "GET /v1/params": { level: "public", request: { method: "GET", path: "/v1/params" } },
      "GET /v1/proposals": { level: "public", request: { method: "GET", path: "/v1/proposals" } },
      "GET /v1/proposals/:id": {
        level: "public",
        request: { method: "GET", path: "/v1/proposals/prop-00000000-0000-0000-0000-000000000000" },
      },
      "POST /v1/proposals": { level: "owner", request: { method: "POST", path: "/v1/proposals", body: {} } },
      "POST /v1/proposals/:id/votes": {
        level: "owner",
        request: { method: "POST", path: "/v1/proposals/prop-00000000-0000-0000-0000-000000000000/votes", body: {} },
      },
      "GET /health": { level: "public", request: { method: "GET", path: "/health" } },
      "GET /metrics": { level: "metrics", request: { method: "GET", path: "/metrics" } },
      "GET /openapi.json": { level: "public", request: { method: "GET", path: "/openapi.json" } },
      "GET /docs": { level: "public", request: { method: "GET", path: "/docs" } },
      "GET /docs/init.js": { level: "public", request: { method: "GET", path: "/docs/init.js" } },
      "GET /docs/:file": { level: "public", request: { method: "GET", path: "/docs/swagger-ui.css" } },
      "GET /nodes/connect": { level: "public", request: { method: "GET", path: "/nodes/connect" } },
    };
    const registered = n.coordinator.routes.map((r) => ({ key: `${r.method} ${r.url}`, auth: r.auth }));
    expect(registered.map((r) => r.key).sort()).toEqual(Object.keys(cases).sort());
    for (const r of registered) expect([r.key, r.auth]).toEqual([r.key, cases[r.key]!.level]);

    const send = (c: Case, token?: string) =>
      call(n, c.request.method, c.request.path, { token, body: c.request.body });
    for (const [key, c] of Object.entries(cases)) {
      const anonymous = await send(c);
      const revokedKey = await send(c, alice.keys.revoked);
      if (c.level === "public") {
        expect([key, anonymous.status]).not.toEqual([key, 401]);
        continue;
      }
      // A revoked key is refused everywhere a credential is looked at.
      expect([key, revokedKey.status, revokedKey.body.error?.code]).toEqual([key, 401, "AUTH_INVALID"]);
      if (c.level === "optional") {
        expect([key, anonymous.status]).not.toEqual([key, 401]);
        if (c.alices) {
          // Anonymous may ask, but Alice's private output is "not found" to anyone else.
          expect([key, anonymous.status]).toEqual([key, 404]);
          expect([key, (await send(c, mallory.keys.jobs)).status]).toEqual([key, 404]);
        }
        continue;
      }
      expect([key, anonymous.status, anonymous.body.error?.code]).toEqual([key, 401, "AUTH_REQUIRED"]);
      expect(anonymous.headers.get("www-authenticate")).toBe("Bearer");
      if (c.level === "account") continue; // any valid credential will do
      // A key without the scope the route needs.
      const wrongScope = c.level === "metrics" ? alice.keys.jobs : alice.keys.node;
      const wrong = await send(c, wrongScope);
      expect([key, wrong.status, wrong.body.error?.code]).toEqual([key, 403, "AUTH_FORBIDDEN"]);
      if (c.alices) {
        // Mallory's key has the scope; Alice's job is still not hers to see.
        const theirs = await send(c, mallory.keys.jobs);
        expect([key, theirs.status, theirs.body.error?.code]).toEqual([key, 404, "JOB_NOT_FOUND"]);
      }
    }
    // Alice still has her job, untouched by Mallory's attempts.
    const mine = await call(n, "GET", `/v1/jobs/${job}`, { token: alice.keys.jobs });
    expect(mine.body).toMatchObject({ status: "completed", data_deleted_at: null });
    // /metrics is the operator's: a user may not make a metrics key; an admin's reads it.
    const mine2 = await call(n, "POST", "/v1/api-keys", {
      token: mallory.access,
      body: { name: "m", scopes: ["metrics"] },
    });
    expect([mine2.status, mine2.body.error?.code]).toEqual([403, "AUTH_FORBIDDEN"]);
    expect((await call(n, "GET", "/metrics", { token: (await root(n, ["metrics"])).key })).status).toBe(200);
  });
});

describe("production mode", () => {
  it("the official openai client works with a valid key and gets AuthenticationError with a made-up one", async () => {
    const n = await production();
    const alice = await person(n, "alice");
    const good = new OpenAI({ baseURL: `${n.url}/v1`, apiKey: alice.keys.jobs, maxRetries: 0 });
    const r = await good.chat.completions.create(chat("hello") as never);
    expect((r as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBeTruthy();
    const bad = new OpenAI({ baseURL: `${n.url}/v1`, apiKey: "sk-made-up-0000", maxRetries: 0 });
    await expect(bad.chat.completions.create(chat("hello") as never)).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    const none = new OpenAI({ baseURL: `${n.url}/v1`, apiKey: "havn_sk_" + "A".repeat(43), maxRetries: 0 });
    await expect(none.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("another account's stream is not its to watch: the job is the submitter's", async () => {
    const n = await production({ nodes: [{ backend: "scripted", name: "slow", tokens: 20, tokenDelayMs: 20 }] });
    const alice = await person(n, "alice");
    const mallory = await person(n, "mallory");
    const stream = await fetch(`${n.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${alice.keys.jobs}` },
      body: JSON.stringify(chat("streamed", { stream: true, max_tokens: 20 })),
    });
    const id = stream.headers.get("x-havn-job-id")!;
    expect((await call(n, "GET", `/v1/jobs/${id}`, { token: mallory.keys.jobs })).status).toBe(404);
    expect((await call(n, "POST", `/v1/jobs/${id}/cancel`, { token: mallory.keys.jobs })).status).toBe(404);
    expect(await stream.text()).toContain("[DONE]");
    expect((await call(n, "GET", `/v1/jobs/${id}`, { token: alice.keys.jobs })).body.status).toBe("completed");
  });

  it("a node joins only with its operator's node key or the join token, bound to its account", async () => {
    const n = await production({ nodes: [] });
    const alice = await person(n, "alice", { jobs: ["jobs"], node: ["node"] });
    const mallory = await person(n, "mallory", { node: ["node"] });
    const refused = async (credential: { api_key?: string; join_token?: string } | null = null) =>
      n.addNode({ backend: "scripted", name: `x-${Math.random()}`, credential });
    await expect(refused()).rejects.toMatchObject({ code: "NODE_CREDENTIAL_REQUIRED" });
    await expect(refused({ join_token: "not-the-join-token-at-all" })).rejects.toMatchObject({
      code: "NODE_CREDENTIAL_REQUIRED",
    });
    await expect(refused({ api_key: alice.keys.jobs })).rejects.toMatchObject({ code: "NODE_CREDENTIAL_REQUIRED" });
    // A login's access token expires within the hour: no credential for a node that reconnects.
    await expect(refused({ api_key: alice.access })).rejects.toMatchObject({ code: "NODE_CREDENTIAL_REQUIRED" });
    expect(n.coordinator.registry.size).toBe(0);

    const keys = generateKeyPair();
    await n.addNode({ backend: "scripted", name: "alices-gpu", keys, credential: { api_key: alice.keys.node } });
    expect((await n.coordinator.store.nodes.get(keys.publicKey))?.accountId).toBe(alice.accountId);
    await n.nodes[0]!.agent.stop();
    await expect(
      n.addNode({ backend: "scripted", name: "alices-gpu", keys, credential: { api_key: mallory.keys.node } }),
    ).rejects.toMatchObject({ code: "NODE_KEY_OWNED" });
    await expect(
      n.addNode({ backend: "scripted", name: "alices-gpu", credential: { api_key: mallory.keys.node } }),
    ).rejects.toMatchObject({ code: "NODE_NAME_TAKEN" });
    // The join token admits a node with no account behind it.
    await n.addNode({ backend: "scripted", name: "community", credential: { join_token: joinToken } });
    expect(n.coordinator.registry.all().map((s) => s.name)).toEqual(["community"]);
  });

  it("logins rotate: a refresh token spent twice at once is refused without ending the login", async () => {
    const n = await production();
    const alice = await person(n, "alice");
    const first = await call(n, "POST", "/auth/refresh", { body: { refresh_token: alice.refresh } });
    expect(first.status).toBe(200);
    // The owner's second program, a moment later with the same token: refused, login kept.
    const raced = await call(n, "POST", "/auth/refresh", { body: { refresh_token: alice.refresh } });
    expect([raced.status, raced.body.error?.code]).toEqual([401, "AUTH_REFRESH_INVALID"]);
    expect((raced.body.error as unknown as { message: string }).message).toMatch(/just spent/);
    const later = await call(n, "POST", "/auth/refresh", { body: { refresh_token: first.body.refresh_token } });
    expect(later.status).toBe(200);
  });

  it("logins rotate: a thief who spends a stolen refresh token first is ended by the owner's spend, grace or not", async () => {
    const n = await production();
    const alice = await person(n, "alice");
    const stolen = await call(n, "POST", "/auth/refresh", {
      body: { refresh_token: alice.refresh },
      headers: { "user-agent": "thief/1.0" },
    });
    expect(stolen.status).toBe(200);
    const owner = await call(n, "POST", "/auth/refresh", { body: { refresh_token: alice.refresh } });
    expect([owner.status, owner.body.error?.code]).toEqual([401, "AUTH_REFRESH_INVALID"]);
    const thiefNext = await call(n, "POST", "/auth/refresh", {
      body: { refresh_token: stolen.body.refresh_token },
      headers: { "user-agent": "thief/1.0" },
    });
    expect(thiefNext.status).toBe(401);
  });

  it("logins rotate: a refresh token works once, and a replayed one ends the login", async () => {
    // No grace: a replay is taken for theft at once (by default, 30 s after the token was spent).
    const n = await production({}, { refreshReuseGraceSeconds: 0 });
    const alice = await person(n, "alice");
    const wrong = await call(n, "POST", "/auth/login", { body: { email: "alice@example.com", password: "nope-nope" } });
    expect([wrong.status, wrong.body.error?.code]).toEqual([401, "AUTH_LOGIN_FAILED"]);
    const unknown = await call(n, "POST", "/auth/login", { body: { email: "who@example.com", password: "nope-nope" } });
    expect(unknown.body.error?.code).toBe("AUTH_LOGIN_FAILED");
    const next = await call(n, "POST", "/auth/refresh", { body: { refresh_token: alice.refresh } });
    expect(next.status).toBe(200);
    expect((await call(n, "GET", "/auth/me", { token: next.body.access_token as string })).body).toMatchObject({
      via: "access_token",
      scopes: ["jobs", "node"],
    });
    // A thief replays the first refresh token: refused, and the login it belongs to is over.
    const replay = await call(n, "POST", "/auth/refresh", { body: { refresh_token: alice.refresh } });
    expect([replay.status, replay.body.error?.code]).toEqual([401, "AUTH_REFRESH_INVALID"]);
    const after = await call(n, "POST", "/auth/refresh", { body: { refresh_token: next.body.refresh_token } });
    expect(after.status).toBe(401);
    expect(
      (await call(n, "POST", "/auth/register", { body: { email: "ALICE@example.com", password: "another-one" } })).body
        .error?.code,
    ).toBe("AUTH_EMAIL_TAKEN");
    // A user may not mint an admin key; a forged token is not a credential.
    const adminKey = await call(n, "POST", "/v1/api-keys", {
      token: alice.access,
      body: { name: "x", scopes: ["admin"] },
    });
    expect(adminKey.body.error?.code).toBe("AUTH_FORBIDDEN");
    const [h, p] = alice.access.split(".");
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: alice.accountId, role: "admin" })).toString("base64url")}.${p}`;
    expect((await call(n, "GET", "/v1/nodes", { token: forged })).body.error?.code).toBe("AUTH_INVALID");
  });

  it("signs in with a wallet (EIP-4361), once per nonce, and binds a wallet to a signed-in account", async () => {
    const n = await production();
    const wallet = privateKeyToAccount(`0x${"11".repeat(32)}`);
    const host = new URL(n.url).host;
    const message = async (address = wallet.address) => {
      const { nonce } = (await call(n, "POST", "/auth/siwe/nonce")).body as { nonce: string };
      return createSiweMessage({ address, chainId: 1, domain: host, nonce, uri: n.url, version: "1" });
    };
    const m = await message();
    const signature = await wallet.signMessage({ message: m });
    const signedIn = await call(n, "POST", "/auth/siwe/verify", { body: { message: m, signature } });
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.account).toMatchObject({ wallet: wallet.address, email: null });
    const again = await call(n, "POST", "/auth/siwe/verify", { body: { message: m, signature } });
    expect(again.body.error?.code).toBe("AUTH_SIWE_INVALID");
    // Another wallet's signature over this message, and a message for another domain.
    const other = privateKeyToAccount(`0x${"22".repeat(32)}`);
    const m2 = await message();
    const forged = await call(n, "POST", "/auth/siwe/verify", {
      body: { message: m2, signature: await other.signMessage({ message: m2 }) },
    });
    expect(forged.body.error?.code).toBe("AUTH_SIWE_INVALID");
    const { nonce } = (await call(n, "POST", "/auth/siwe/nonce")).body as { nonce: string };
    const elsewhere = createSiweMessage({
      address: wallet.address,
      chainId: 1,
      domain: "evil.example",
      nonce,
      uri: "https://evil.example",
      version: "1",
    });
    const phished = await call(n, "POST", "/auth/siwe/verify", {
      body: { message: elsewhere, signature: await wallet.signMessage({ message: elsewhere }) },
    });
    expect(phished.body.error?.code).toBe("AUTH_SIWE_INVALID");
    // Bob binds his wallet to his email account; Alice's wallet is taken.
    const bob = await person(n, "bob");
    const m3 = await message(other.address);
    // A stolen access token alone may not bind: the account's password is checked again.
    const m3a = await message(other.address);
    const sig3a = await other.signMessage({ message: m3a });
    const noPassword = await call(n, "POST", "/auth/siwe/verify", {
      token: bob.access,
      body: { message: m3a, signature: sig3a },
    });
    expect([noPassword.status, noPassword.body.error?.code]).toEqual([403, "AUTH_FORBIDDEN"]);
    const wrongPassword = await call(n, "POST", "/auth/siwe/verify", {
      token: bob.access,
      body: { message: m3a, signature: sig3a, password: "not-bobs-password" },
    });
    expect([wrongPassword.status, wrongPassword.body.error?.code]).toEqual([401, "AUTH_LOGIN_FAILED"]);
    const bound = await call(n, "POST", "/auth/siwe/verify", {
      token: bob.access,
      body: { message: m3, signature: await other.signMessage({ message: m3 }), password: bob.password },
    });
    expect(bound.body.account).toMatchObject({ email: "bob@example.com", wallet: other.address });
    const m4 = await message();
    const taken = await call(n, "POST", "/auth/siwe/verify", {
      token: bob.access,
      body: { message: m4, signature: await wallet.signMessage({ message: m4 }), password: bob.password },
    });
    expect(taken.body.error?.code).toBe("AUTH_WALLET_TAKEN");
    // An account holds one wallet: Bob may not swap his for a third.
    const third = privateKeyToAccount(`0x${"33".repeat(32)}`);
    const m5 = await message(third.address);
    const swapped = await call(n, "POST", "/auth/siwe/verify", {
      token: bob.access,
      body: { message: m5, signature: await third.signMessage({ message: m5 }), password: bob.password },
    });
    expect([swapped.status, swapped.body.error?.code]).toEqual([409, "AUTH_WALLET_BOUND"]);
    // A leaked jobs key is not Carol's login: it may not bind a wallet (the wallet's logins would be the thief's).
    const carol = await person(n, "carol");
    const m6 = await message(third.address);
    const byKey = await call(n, "POST", "/auth/siwe/verify", {
      token: carol.keys.jobs,
      body: { message: m6, signature: await third.signMessage({ message: m6 }), password: carol.password },
    });
    expect([byKey.status, byKey.body.error?.code]).toEqual([403, "AUTH_FORBIDDEN"]);
  });

  it("wallet sign-in names the coordinator's own address, never the request's Host header", async () => {
    const n = await production();
    const wallet = privateKeyToAccount(`0x${"44".repeat(32)}`);
    const { nonce } = (await call(n, "POST", "/auth/siwe/nonce")).body as { nonce: string };
    // A phishing site relays its visitor's signature, sending its own name as Host.
    const message = createSiweMessage({
      address: wallet.address,
      chainId: 1,
      domain: "evil.example",
      nonce,
      uri: "https://evil.example",
      version: "1",
    });
    const body = JSON.stringify({ message, signature: await wallet.signMessage({ message }) });
    const { port } = new URL(n.url);
    const answer = await new Promise<{ status: number; code: string }>((resolve, reject) => {
      const req = httpRequest(
        {
          host: "127.0.0.1",
          port,
          path: "/auth/siwe/verify",
          method: "POST",
          headers: {
            host: "evil.example",
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = "";
          res.on("data", (c: Buffer) => (text += c.toString()));
          res.on("end", () =>
            resolve({ status: res.statusCode!, code: (JSON.parse(text) as { error: { code: string } }).error.code }),
          );
        },
      );
      req.on("error", reject);
      req.end(body);
    });
    expect(answer).toEqual({ status: 401, code: "AUTH_SIWE_INVALID" });
    // On an address that is not loopback, wallet sign-in waits for --public-url.
    const dir = mkdtempSync(join(tmpdir(), "havn-siwe-"));
    try {
      const { coordinator } = await startCoordinator({
        port: 0,
        host: "0.0.0.0",
        dataDir: dir,
        logLevel: "silent",
        mode: "production",
        bootstrapAdmin: { email: "root@example.com", password: "root-password-1" },
      });
      try {
        await expect(coordinator.auth.siweVerify({ message, signature: "0x00" })).rejects.toMatchObject({
          code: "AUTH_SIWE_INVALID",
          message: expect.stringContaining("--public-url"),
        });
      } finally {
        await coordinator.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("registration by invite: closed without one, open with an admin's", async () => {
    const n = await production({}, { registration: "invite" });
    const closed = await call(n, "POST", "/auth/register", {
      body: { email: "x@example.com", password: "password-1" },
    });
    expect(closed.body.error?.code).toBe("AUTH_REGISTRATION_CLOSED");
    const admin = await root(n);
    const invite = await call(n, "POST", "/v1/admin/invites", { token: admin.key, body: {} });
    expect(invite.status).toBe(201);
    const code = invite.body.code as string;
    const reg = await call(n, "POST", "/auth/register", {
      body: { email: "x@example.com", password: "password-1", invite: code },
    });
    expect(reg.status).toBe(201);
    const twice = await call(n, "POST", "/auth/register", {
      body: { email: "y@example.com", password: "password-1", invite: code },
    });
    expect(twice.body.error?.code).toBe("AUTH_INVITE_INVALID");
  });

  it("guards: rate limits per credential and per account with Retry-After, CORS by allowlist, security headers", async () => {
    const n = await production(
      {},
      {
        rateLimitPerMinute: 5,
        accountRateLimitPerMinute: 8,
        anonymousRateLimitPerMinute: 3,
        corsOrigins: ["https://app.example"],
      },
    );
    const alice = await person(n, "alice");
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await call(n, "GET", "/v1/models", { token: alice.keys.jobs })).status);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    const limited = await call(n, "GET", "/v1/models", { token: alice.keys.jobs });
    expect([limited.status, limited.body.error?.code]).toEqual([429, "REQUEST_RATE_LIMITED"]);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // Many keys do not multiply an account's share: 8 a minute across bob's keys (2 spent making them).
    const bob = await person(n, "bob", { a: ["jobs"], b: ["jobs"] });
    const bobs: Answer[] = [];
    for (const key of ["a", "a", "a", "b", "b", "b", "b", "b"])
      bobs.push(await call(n, "GET", "/v1/models", { token: bob.keys[key]! }));
    expect(bobs.slice(0, 6).map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(bobs.slice(6).map((r) => r.status)).toEqual([429, 429]);
    expect((bobs[7]!.body.error as unknown as { message: string }).message).toMatch(/from this account/);
    expect(Number(bobs[7]!.headers.get("retry-after"))).toBeGreaterThan(0);
    const preflight = await fetch(`${n.url}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type",
      },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBe("https://app.example");
    const foreign = await fetch(`${n.url}/health`, { headers: { origin: "https://evil.example" } });
    expect(foreign.headers.get("access-control-allow-origin")).toBeNull();
    expect(foreign.headers.get("x-content-type-options")).toBe("nosniff");
    expect(foreign.headers.get("content-security-policy")).toContain("default-src 'self'");
  });

  it("refuses to face the network without an admin, or in dev mode unless told", async () => {
    const dir = mkdtempSync(join(tmpdir(), "havn-insecure-"));
    try {
      const options = { port: 0, host: "0.0.0.0", dataDir: dir, logLevel: "silent" as const };
      await expect(startCoordinator({ ...options, mode: "production" })).rejects.toMatchObject({
        code: "CONFIG_INSECURE",
        message: expect.stringContaining("havn admin create"),
      });
      await expect(startCoordinator({ ...options, mode: "dev" })).rejects.toMatchObject({ code: "CONFIG_INSECURE" });
      const { coordinator } = await startCoordinator({ ...options, mode: "dev", insecure: true });
      await coordinator.close();
      const { coordinator: prod } = await startCoordinator({
        ...options,
        mode: "production",
        bootstrapAdmin: { email: "root@example.com", password: "root-password-1" },
      });
      await prod.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Idempotency-Key", () => {
  it("the same key twice is one job and one run; another request under it is refused", async () => {
    const n = await production();
    const alice = await person(n, "alice");
    const backend = n.nodes[0]!.backend as ScriptedBackend;
    const before = backend.generated;
    const headers = { "idempotency-key": "order-42" };
    const first = await call(n, "POST", "/v1/chat/completions", {
      token: alice.keys.jobs,
      body: chat("once"),
      headers,
    });
    const second = await call(n, "POST", "/v1/chat/completions", {
      token: alice.keys.jobs,
      body: chat("once"),
      headers,
    });
    expect(second.body.id).toBe(first.body.id);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    expect(second.body.choices).toEqual(first.body.choices);
    // Racing retries, streamed and not: still one job.
    const racing = await Promise.all(
      [false, true, false].map((stream) =>
        call(n, "POST", "/v1/chat/completions", {
          token: alice.keys.jobs,
          body: chat("race", { stream }),
          headers: { "idempotency-key": "race-1" },
        }),
      ),
    );
    const ids = new Set(racing.map((r) => r.headers.get("x-havn-job-id")));
    expect(ids.size).toBe(1);
    expect(backend.generated - before).toBe(2);
    const mismatch = await call(n, "POST", "/v1/chat/completions", {
      token: alice.keys.jobs,
      body: chat("other"),
      headers,
    });
    expect([mismatch.status, mismatch.body.error?.code]).toEqual([422, "REQUEST_IDEMPOTENCY_MISMATCH"]);
    // Keys are per account: Bob's order-42 is his own job.
    const bob = await person(n, "bob");
    const bobs = await call(n, "POST", "/v1/chat/completions", { token: bob.keys.jobs, body: chat("once"), headers });
    expect(bobs.body.id).not.toBe(first.body.id);
    const bad = await call(n, "POST", "/v1/chat/completions", {
      token: alice.keys.jobs,
      body: chat("x"),
      headers: { "idempotency-key": "a b" },
    });
    expect(bad.body.error?.code).toBe("REQUEST_INVALID");
  });

  it("a streaming client that drops with a key comes back for the same job's whole text; the job was not cancelled", async () => {
    const n = await production({ nodes: [{ backend: "scripted", name: "slow", tokens: 20, tokenDelayMs: 20 }] });
    const alice = await person(n, "alice");
    const headers = {
      authorization: `Bearer ${alice.keys.jobs}`,
      "content-type": "application/json",
      "idempotency-key": "s-1",
    };
    const body = JSON.stringify(chat("dropped", { stream: true, max_tokens: 20 }));
    const abort = new AbortController();
    const first = await fetch(`${n.url}/v1/chat/completions`, { method: "POST", headers, body, signal: abort.signal });
    const id = first.headers.get("x-havn-job-id")!;
    const reader = first.body!.getReader();
    await reader.read();
    abort.abort();
    const retry = await fetch(`${n.url}/v1/chat/completions`, { method: "POST", headers, body });
    expect(retry.headers.get("x-havn-job-id")).toBe(id);
    let text = "";
    for (const line of (await retry.text()).split("\n"))
      if (line.startsWith("data: {"))
        text +=
          (JSON.parse(line.slice(6)) as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content ??
          "";
    const job = await call(n, "GET", `/v1/jobs/${id}`, { token: alice.keys.jobs });
    expect(job.body.status).toBe("completed");
    expect(text).toBe((job.body.output as { text: string }).text);
    expect(job.body.attempts).toBe(1);
  });
});

describe("secrets stay secret", () => {
  it("no password, API key, token or join token is in the logs or the database of a run", async () => {
    const raw: string[] = [];
    const logger = pino(
      { level: "trace" },
      new Writable({
        write(chunk: Buffer, _e, cb) {
          raw.push(chunk.toString());
          cb();
        },
      }),
    );
    const dir = mkdtempSync(join(tmpdir(), "havn-secrets-"));
    try {
      const store = await openStore({ sqlitePath: join(dir, "havn.db") });
      const n = await production({ store, logger });
      const alice = await person(n, "alice", { jobs: ["jobs"], node: ["node"] });
      const next = await call(n, "POST", "/auth/refresh", { body: { refresh_token: alice.refresh } });
      await n.addNode({ backend: "scripted", name: "keyed", credential: { api_key: alice.keys.node } });
      await call(n, "POST", "/v1/chat/completions", { token: alice.keys.jobs, body: chat("secret run") });
      await call(n, "GET", "/v1/jobs/job-000000000000000000000000", { token: alice.access });
      await call(n, "GET", "/v1/models", { token: "havn_sk_" + "B".repeat(43) });
      await n.close();
      net = undefined;
      const secrets: string[] = [
        alice.password,
        alice.keys.jobs!,
        alice.keys.node!,
        alice.access,
        alice.refresh,
        next.body.access_token as string,
        next.body.refresh_token as string,
        joinToken,
      ];
      const files = readdirSync(dir).map((f) => readFileSync(join(dir, f)).toString("latin1"));
      const logs = raw.join("");
      expect(logs.length).toBeGreaterThan(1_000);
      for (const secret of secrets) {
        expect([secret.slice(0, 12), logs.includes(secret)]).toEqual([secret.slice(0, 12), false]);
        for (const f of files) expect([secret.slice(0, 12), f.includes(secret)]).toEqual([secret.slice(0, 12), false]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("retention", () => {
  it("deletes a job's prompt and output after the window, or when its owner asks; the receipt stays", async () => {
    const n = await production({}, { retentionMs: 1 });
    const alice = await person(n, "alice");
    const mallory = await person(n, "mallory");
    const a = await call(n, "POST", "/v1/chat/completions", { token: alice.keys.jobs, body: chat("keep briefly") });
    const b = await call(n, "POST", "/v1/chat/completions", { token: alice.keys.jobs, body: chat("delete me") });
    const cidB = (b.body.havn as { output_cid: string }).output_cid;
    expect((await call(n, "DELETE", `/v1/jobs/${b.body.id}`, { token: mallory.keys.jobs })).status).toBe(404);
    const deleted = await call(n, "DELETE", `/v1/jobs/${b.body.id}`, { token: alice.keys.jobs });
    expect(deleted.body).toMatchObject({ output: null, data_deleted_at: expect.any(Number), status: "completed" });
    expect((deleted.body.receipt as { receipt: { outputs_cid: string } }).receipt.outputs_cid).toBe(cidB);
    expect((await call(n, "GET", `/v1/outputs/${cidB}`, { token: alice.keys.jobs })).status).toBe(404);
    await new Promise((r) => setTimeout(r, 5));
    expect((await n.coordinator.retain()).deleted).toBe(1);
    const kept = await call(n, "GET", `/v1/jobs/${a.body.id}`, { token: alice.keys.jobs });
    expect(kept.body).toMatchObject({ output: null, data_deleted_at: expect.any(Number) });
    expect((await call(n, "GET", "/v1/log/1")).status).toBe(200);
  });
});

describe("attacks on identity, refused", () => {
  it("keys made in dev mode are nobody's in production, and the dev account is no admin", async () => {
    const dir = mkdtempSync(join(tmpdir(), "havn-devkeys-"));
    try {
      const options = { port: 0, host: "127.0.0.1", dataDir: dir, logLevel: "silent" as const };
      const dev = await startCoordinator({ ...options, mode: "dev" });
      const made = await fetch(`${dev.url}/v1/api-keys`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "dev", scopes: ["admin", "jobs"] }),
      });
      expect(made.status).toBe(201);
      const { key } = (await made.json()) as { key: string };
      await dev.coordinator.close();
      // The same data directory, now a production coordinator.
      const prod = await startCoordinator({ ...options, mode: "production" });
      try {
        const r = await fetch(`${prod.url}/v1/nodes`, { headers: { authorization: `Bearer ${key}` } });
        expect(r.status).toBe(401);
        expect(await prod.coordinator.auth.hasAdmin()).toBe(false);
      } finally {
        await prod.coordinator.close();
      }
      await expect(startCoordinator({ ...options, host: "0.0.0.0", mode: "production" })).rejects.toMatchObject({
        code: "CONFIG_INSECURE",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("registration by invite says nothing about which emails exist without an invitation, and one invitation asks once", async () => {
    const n = await production({}, { registration: "invite" });
    const admin = await root(n);
    await n.coordinator.store.accounts.create({ id: "acc-x", email: "known@example.com", role: "user", now: 1 });
    const register = (email: string, invite?: string) =>
      call(n, "POST", "/auth/register", { body: { email, password: "password-1", ...(invite ? { invite } : {}) } });
    // Known or unknown email, the answer without an invitation is the same.
    expect((await register("known@example.com")).body.error?.code).toBe("AUTH_REGISTRATION_CLOSED");
    expect((await register("new@example.com")).body.error?.code).toBe("AUTH_REGISTRATION_CLOSED");
    expect((await register("known@example.com", "made-up-invite")).body.error?.code).toBe("AUTH_INVITE_INVALID");
    const invite = async () =>
      (await call(n, "POST", "/v1/admin/invites", { token: admin.key, body: {} })).body.code as string;
    // An invitation asks about one email at most: it is spent on a taken one.
    const first = await invite();
    expect((await register("known@example.com", first)).body.error?.code).toBe("AUTH_EMAIL_TAKEN");
    expect((await register("new@example.com", first)).body.error?.code).toBe("AUTH_INVITE_INVALID");
    expect((await register("new@example.com", await invite())).status).toBe(201);
  });

  it("revoking the key a node joined with disconnects the node for good", async () => {
    const n = await production({ nodes: [] });
    const alice = await person(n, "alice", { node: ["node"] });
    await n.addNode({ backend: "scripted", name: "alices-gpu", credential: { api_key: alice.keys.node } });
    expect(n.coordinator.registry.size).toBe(1);
    const revoked = await call(n, "DELETE", `/v1/api-keys/${alice.keyIds.node}`, { token: alice.access });
    expect(revoked.status).toBe(200);
    await until(() => n.coordinator.registry.size === 0);
    // Closed with a refusal (4012): the node stops instead of reconnecting.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(n.coordinator.registry.size).toBe(0);
    expect(n.nodes[0]!.agent.connected).toBe(false);
  });

  it("a node key revoked on another replica disconnects its nodes here too", async () => {
    const n = await production({ nodes: [] }, { nodeKeyCheckMs: 100, sweepIntervalMs: 50 });
    const alice = await person(n, "alice", { node: ["node"] });
    await n.addNode({ backend: "scripted", name: "alices-gpu", credential: { api_key: alice.keys.node } });
    // Another replica revokes it: only the shared database knows.
    expect(await n.coordinator.store.accounts.revokeKey(alice.accountId, alice.keyIds.node!, Date.now())).toBe(true);
    await until(() => n.coordinator.registry.size === 0);
    await new Promise((r) => setTimeout(r, 500));
    expect(n.nodes[0]!.agent.connected).toBe(false);
  });

  it("an output is its owner's job data: a node-scoped key of the same account does not read it", async () => {
    const n = await production();
    const alice = await person(n, "alice", { jobs: ["jobs"], node: ["node"] });
    const done = await call(n, "POST", "/v1/chat/completions", { token: alice.keys.jobs, body: chat("mine") });
    const cid = (done.body.havn as { output_cid: string }).output_cid;
    expect((await call(n, "GET", `/v1/outputs/${cid}`, { token: alice.keys.jobs })).status).toBe(200);
    expect((await call(n, "GET", `/v1/outputs/${cid}`, { token: alice.keys.node })).status).toBe(404);
  });

  it("bad credentials past the limit answer 429; a good key from the same address still works", async () => {
    const n = await production({}, { authFailureLimitPerMinute: 5 });
    const alice = await person(n, "alice");
    const guesses: number[] = [];
    for (let i = 0; i < 5; i++)
      guesses.push((await call(n, "GET", "/v1/models", { token: `havn_sk_${String(i).repeat(43)}` })).status);
    expect(guesses).toEqual([401, 401, 401, 401, 401]);
    const limited = await call(n, "GET", "/v1/models", { token: "havn_sk_" + "9".repeat(43) });
    expect([limited.status, limited.body.error?.code]).toEqual([429, "REQUEST_RATE_LIMITED"]);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    // A key cannot be guessed: a stranger flooding junk from a shared address locks no one out.
    expect((await call(n, "GET", "/v1/models", { token: alice.keys.jobs })).status).toBe(200);
  });

  it("wrong passwords count per address: past the limit even the right one is refused unchecked, bursts included", async () => {
    const n = await production({}, { authFailureLimitPerMinute: 3, emailFailureLimitPerMinute: 0 });
    const alice = await person(n, "alice");
    const login = (password: string) =>
      call(n, "POST", "/auth/login", { body: { email: "alice@example.com", password } });
    // Ten guesses at once: the checks in flight count, so no more than three are checked.
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => login(`wrong-${i}-password`)));
    const codes = burst.map((r) => r.body.error?.code);
    expect(codes.filter((c) => c === "AUTH_LOGIN_FAILED").length).toBe(3);
    expect(codes.filter((c) => c === "REQUEST_RATE_LIMITED").length).toBe(7);
    const right = await login(alice.password);
    expect([right.status, right.body.error?.code]).toEqual([429, "REQUEST_RATE_LIMITED"]);
  });

  it("wrong passwords count per email too: one account's guessers do not block another's login", async () => {
    const n = await production({}, { authFailureLimitPerMinute: 0, emailFailureLimitPerMinute: 2 });
    const alice = await person(n, "alice");
    const bob = await person(n, "bob");
    const login = (email: string, password: string) => call(n, "POST", "/auth/login", { body: { email, password } });
    expect((await login("alice@example.com", "wrong-password-1")).status).toBe(401);
    expect((await login("ALICE@example.com", "wrong-password-2")).status).toBe(401);
    const refused = await login("alice@example.com", alice.password);
    expect([refused.status, (refused.body.error as unknown as { message: string }).message]).toEqual([
      429,
      expect.stringMatching(/for this email/),
    ]);
    expect((await login("bob@example.com", bob.password)).status).toBe(200);
  });

  it("an account holds at most 100 live keys", async () => {
    const n = await production();
    const alice = await person(n, "alice");
    const principal = {
      accountId: alice.accountId,
      role: "user" as const,
      scopes: new Set(["jobs"]),
      via: "access_token" as const,
    };
    for (let i = 1; i < 100; i++)
      await n.coordinator.auth.createKey(principal as never, { name: `k${i}`, scopes: ["jobs"] });
    const over = await call(n, "POST", "/v1/api-keys", {
      token: alice.access,
      body: { name: "one more", scopes: ["jobs"] },
    });
    expect([over.status, over.body.error?.code]).toEqual([409, "AUTH_KEY_LIMIT"]);
    expect((await call(n, "DELETE", `/v1/api-keys/${alice.keyIds.jobs}`, { token: alice.access })).status).toBe(200);
    expect(
      (await call(n, "POST", "/v1/api-keys", { token: alice.access, body: { name: "now", scopes: ["jobs"] } })).status,
    ).toBe(201);
  });

  it("a retry with its Idempotency-Key gets its job even when the model can no longer be resolved", async () => {
    const n = await production();
    const alice = await person(n, "alice");
    const first = await call(n, "POST", "/v1/chat/completions", {
      token: alice.keys.jobs,
      body: chat("kept"),
      headers: { "idempotency-key": "first" },
    });
    expect(first.status).toBe(200);
    const earlier = (await n.coordinator.store.jobs.byIdempotencyKey(alice.accountId, "first"))!;
    // A job admitted for a model no node advertises any more (its operator left, the catalog changed).
    const now = Date.now();
    await n.coordinator.store.jobs.insert({
      id: "job-0000000000000000000000aa",
      model: "a-model-gone-away",
      workflowId: null,
      input: earlier.input,
      params: earlier.params,
      inputHash: earlier.inputHash,
      inputSalt: "e".repeat(64),
      workflowVersion: null,
      stream: false,
      maxAttempts: 3,
      queueDeadlineAt: now + 60_000,
      now,
      accountId: alice.accountId,
      idempotencyKey: "gone",
    });
    await n.coordinator.store.jobs.cancel(
      "job-0000000000000000000000aa",
      { code: "JOB_CANCELLED", message: "cancelled", retryable: false },
      now,
    );
    const retry = await call(n, "POST", "/v1/chat/completions", {
      token: alice.keys.jobs,
      body: chat("kept", { model: "a-model-gone-away" }),
      headers: { "idempotency-key": "gone" },
    });
    expect(retry.headers.get("x-havn-job-id")).toBe("job-0000000000000000000000aa");
    expect(retry.body.error?.code).toBe("JOB_CANCELLED");
    // Without the key, the same request is what it is: an unknown model.
    const fresh = await call(n, "POST", "/v1/chat/completions", {
      token: alice.keys.jobs,
      body: chat("kept", { model: "a-model-gone-away" }),
    });
    expect(fresh.body.error?.code).toBe("MODEL_NOT_FOUND");
  });
});

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("until: timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
