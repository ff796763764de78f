import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyBaseLogger } from "fastify";
import { pino } from "pino";
import { afterEach, describe, expect, inject, it } from "vitest";
import { ledgerAccounts, type Store } from "@havn/store";
import { openTestStore } from "@havn/store/testing";
import { startNetwork, type Network } from "@havn/testkit";
import { compileConfig } from "../src/config.js";
import { Params } from "../src/governance/params.js";
import { Wallets } from "../src/ledger/wallets.js";
import { InFlightAttempts, NodeRegistry, type NodeSession } from "../src/nodes/node-registry.js";
import { ReputationBook } from "../src/nodes/reputation.js";
import { EpochKeeper, promisedHours } from "../src/staking/epochs.js";
import { StakeService } from "../src/staking/stake-service.js";
import { call, rootKey, until } from "./http.js";

let net: Network | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const hai = (n: number) => String(BigInt(n) * 1_000_000n);
const joinToken = "join-token-for-tests-0123456789";

/** Registers an account; returns its login and a node-scoped key. */
async function operator(n: Network, name: string) {
  const reg = await call(n, "POST", "/auth/register", {
    body: { email: `${name}@example.com`, password: `${name}-correct-horse-battery` },
  });
  expect(reg.status).toBe(201);
  const access = reg.body.access_token as string;
  const key = await call(n, "POST", "/v1/api-keys", { token: access, body: { name: "node", scopes: ["node"] } });
  return { accountId: reg.body.account.id as string, access, nodeKey: key.body.key as string };
}

async function production(store: "sqlite" | "postgres", coordinator: Record<string, unknown> = {}) {
  return (net = await startNetwork({
    store,
    pgAdminUrl: inject("pgAdminUrl"),
    nodes: [],
    coordinator: {
      mode: "production",
      joinToken,
      rateLimitPerMinute: 0,
      sweepIntervalMs: 50,
      staking: { unbondingDelayMs: 2_000 },
      governance: { votingPeriodMs: 1_500 },
      ledger: {},
      ...coordinator,
    },
  }));
}

describe.each(["sqlite", "postgres"] as const)("stake, on %s", (store) => {
  it("a node below its collateral floor gets no jobs; a bond lets it work with the slots its stake pays for; an unbond takes it out and pays back after the delay", async () => {
    const n = await production(store);
    const admin = await rootKey(n);
    const alice = await operator(n, "alice");
    await n.addNode({
      backend: "scripted",
      name: "alice-node",
      slots: 16,
      tokens: 3,
      credential: { api_key: alice.nodeKey },
    });
    await n.waitForNodes(1);
    const stake0 = await call(n, "GET", "/v1/stake/alice-node");
    expect(stake0.body).toMatchObject({ bonded_uhai: "0", floor_uhai: hai(2_000), node: { held: "below_floor" } });

    // A job waits: the only node is held.
    const credit = await call(n, "POST", "/v1/admin/ledger/credit", {
      token: admin,
      body: { account_id: alice.accountId, amount_uhai: hai(5_000), reason: "a deposit" },
    });
    expect(credit.status).toBe(200);
    const answer = call(n, "POST", "/v1/chat/completions", {
      token: alice.access,
      body: { model: "havn-tiny", messages: [{ role: "user", content: "hi" }], max_tokens: 3 },
    });
    const queued = async () => (await n.coordinator.store.jobs.queuedByModel())["havn-tiny"] ?? 0;
    await until(async () => (await queued()) === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(await queued()).toBe(1);

    // Bonding: someone else may not; the operator may, once per idempotency key.
    const mallory = await operator(n, "mallory");
    const stolen = await call(n, "POST", "/v1/stake", {
      token: mallory.access,
      body: { node: "alice-node", amount_uhai: hai(1) },
    });
    expect(stolen.status).toBe(403);
    expect(stolen.body.error.code).toBe("STAKE_FORBIDDEN");
    for (let i = 0; i < 2; i++) {
      const bond = await call(n, "POST", "/v1/stake", {
        token: alice.access,
        headers: { "idempotency-key": "bond-1" },
        body: { node: "alice-node", amount_uhai: hai(3_000) },
      });
      expect(bond.status).toBe(200);
      expect(bond.body.stake).toMatchObject({ bonded_uhai: hai(3_000), node: { held: null, slots: 12 } });
    }
    const done = await answer;
    expect(done.status).toBe(200);
    expect(done.body.choices[0].message.content.length).toBeGreaterThan(0);

    // Unbonding below the floor holds the node again; the stake comes back after the delay.
    const before = BigInt((await call(n, "GET", "/v1/balance", { token: alice.access })).body.balance_uhai);
    const unbond = await call(n, "POST", "/v1/stake/unbond", {
      token: alice.access,
      body: { node: "alice-node", amount_uhai: hai(1_500) },
    });
    expect(unbond.status).toBe(200);
    expect(unbond.body.stake).toMatchObject({ bonded_uhai: hai(1_500), node: { held: "below_floor" } });
    expect(unbond.body.stake.unbonding).toHaveLength(1);
    const tooMuch = await call(n, "POST", "/v1/stake/unbond", {
      token: alice.access,
      body: { node: "alice-node", amount_uhai: hai(1_501) },
    });
    expect(tooMuch.body.error.code).toBe("STAKE_INSUFFICIENT");
    await until(async () => {
      const b = BigInt((await call(n, "GET", "/v1/balance", { token: alice.access })).body.balance_uhai);
      return b === before + 1_500_000_000n;
    }, 15_000);
    expect((await call(n, "GET", "/v1/stake/alice-node")).body.unbonding).toEqual([]);
    expect((await call(n, "GET", "/v1/nodes", { token: admin })).body.data[0]).toMatchObject({ held: "below_floor" });
    const metrics = await call(n, "GET", "/metrics", { token: await rootKey2(n) });
    expect(metrics.body.text).toContain('havn_nodes_held{reason="below_floor"} 1');
    expect(metrics.body.text).toContain(`havn_stake_bonded_uhai ${1_500_000_000}`);
  });

  it("governance: a stake-weighted proposal changes a parameter when its period ends; a vote is final; admins act alone only in emergencies", async () => {
    const n = await production(store);
    const admin = await rootKey(n);
    const [alice, bob] = [await operator(n, "alice"), await operator(n, "bob")];
    for (const [who, amount] of [
      [alice, 3_000],
      [bob, 1_000],
    ] as const) {
      await call(n, "POST", "/v1/admin/ledger/credit", {
        token: admin,
        body: { account_id: who.accountId, amount_uhai: hai(amount), reason: "a deposit" },
      });
      const b = await call(n, "POST", "/v1/stake", {
        token: who.access,
        body: { validator: true, amount_uhai: hai(amount) },
      });
      expect(b.status).toBe(200);
    }
    // No stake, no proposal; a proposal that breaks a rule is refused before any vote.
    const nobody = await operator(n, "nobody");
    const refused = await call(n, "POST", "/v1/proposals", {
      token: nobody.access,
      body: { action: { type: "set_params", params: { "stake.floor_S": 1_000_000_000 } }, reason: "cheaper" },
    });
    expect(refused.body.error.code).toBe("GOVERNANCE_NO_STAKE");
    const broken = await call(n, "POST", "/v1/proposals", {
      token: alice.access,
      body: { action: { type: "set_params", params: { "split.node_bp": 9_000 } }, reason: "more for nodes" },
    });
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBe("GOVERNANCE_INVALID");

    const proposal = await call(n, "POST", "/v1/proposals", {
      token: alice.access,
      headers: { "idempotency-key": "p-1" },
      body: {
        action: { type: "set_params", params: { "stake.floor_S": 1_000_000_000 } },
        reason: "a lower floor for S",
      },
    });
    expect(proposal.status).toBe(201);
    const again = await call(n, "POST", "/v1/proposals", {
      token: alice.access,
      headers: { "idempotency-key": "p-1" },
      body: {
        action: { type: "set_params", params: { "stake.floor_S": 1_000_000_000 } },
        reason: "a lower floor for S",
      },
    });
    expect(again.body.id).toBe(proposal.body.id);
    const id = proposal.body.id as string;
    expect(
      (await call(n, "POST", `/v1/proposals/${id}/votes`, { token: alice.access, body: { choice: "yes" } })).body,
    ).toMatchObject({ weight_uhai: hai(3_000), replayed: false });
    expect(
      (await call(n, "POST", `/v1/proposals/${id}/votes`, { token: alice.access, body: { choice: "yes" } })).body
        .replayed,
    ).toBe(true);
    const changed = await call(n, "POST", `/v1/proposals/${id}/votes`, { token: alice.access, body: { choice: "no" } });
    expect(changed.body.error.code).toBe("GOVERNANCE_ALREADY_VOTED");
    await call(n, "POST", `/v1/proposals/${id}/votes`, { token: bob.access, body: { choice: "no" } });
    await until(async () => (await call(n, "GET", `/v1/proposals/${id}`)).body.state !== "voting", 10_000);
    const decided = await call(n, "GET", `/v1/proposals/${id}`);
    expect(decided.body).toMatchObject({
      state: "executed",
      tally: { yes: hai(3_000), no: hai(1_000), eligible: hai(4_000), outcome: "passed" },
    });
    expect(decided.body.votes).toHaveLength(2);
    const late = await call(n, "POST", `/v1/proposals/${id}/votes`, { token: nobody.access, body: { choice: "no" } });
    expect(late.body.error.code).toBe("GOVERNANCE_NO_STAKE");
    const params = (await call(n, "GET", "/v1/params")).body.data as {
      name: string;
      value: string;
      updated_by: string;
    }[];
    expect(params.find((p) => p.name === "stake.floor_S")).toMatchObject({
      value: "1000000000",
      updated_by: `proposal:${id}`,
    });
    expect(params.find((p) => p.name === "rewards.base")).toMatchObject({ updated_by: "config" });

    // Admins: a parameter needs a vote outside dev mode; pausing a node does not.
    const adminParams = await call(n, "POST", "/v1/proposals", {
      token: admin,
      body: { action: { type: "set_params", params: { "slash.fraud": 1 } }, reason: "x", admin: true },
    });
    expect(adminParams.body.error.code).toBe("GOVERNANCE_ADMIN_FORBIDDEN");
    await n.addNode({
      backend: "scripted",
      name: "bob-node",
      slots: 2,
      tokens: 2,
      credential: { join_token: joinToken },
    });
    await n.waitForNodes(1);
    await call(n, "POST", "/v1/stake", { token: admin, body: { node: "bob-node", amount_uhai: hai(1) } }).then((r) =>
      expect(r.body.error.code).toBe("LEDGER_INSUFFICIENT_FUNDS"),
    );
    const pause = await call(n, "POST", "/v1/proposals", {
      token: admin,
      body: { action: { type: "pause_node", node: "bob-node" }, reason: "serving junk", admin: true },
    });
    expect(pause.status).toBe(201);
    expect(pause.body).toMatchObject({ state: "executed", by_admin: true });
    expect((await call(n, "GET", "/v1/stake/bob-node")).body.node.held).toBe("paused");
    const pauseModel = await call(n, "POST", "/v1/proposals", {
      token: admin,
      body: { action: { type: "pause_model", model: "havn-tiny" }, reason: "bad weights", admin: true },
    });
    expect(pauseModel.status).toBe(201);
    const refusedJob = await call(n, "POST", "/v1/chat/completions", {
      token: alice.access,
      body: { model: "havn-tiny", messages: [{ role: "user", content: "hi" }], max_tokens: 2 },
    });
    expect(refusedJob.status).toBe(403);
    expect(refusedJob.body.error.code).toBe("MODEL_PAUSED");
    const listed = await call(n, "GET", "/v1/proposals?state=executed");
    expect(listed.body.data.map((p: { id: string }) => p.id)).toEqual(
      expect.arrayContaining([id, pause.body.id, pauseModel.body.id]),
    );
  });
});

/** A metrics-scoped key of a second admin (rootKey makes `acc-root` once). */
async function rootKey2(n: Network): Promise<string> {
  const made = await n.coordinator.auth.createKey(
    { accountId: "acc-root", role: "admin", scopes: new Set(["admin", "metrics"]), via: "access_token" },
    { name: "metrics", scopes: ["metrics"] },
  );
  return made.key;
}

const silent = pino({ level: "silent" }) as unknown as FastifyBaseLogger;

/** A routable session as epochs read it: connected at `at`, present as `presence` says. */
function epochSession(key: string, at: number, presence: { presentSince: number; awayMs: number }): NodeSession {
  return {
    key,
    name: key,
    connectedAt: at,
    ...presence,
    available: true,
    held: null,
    advertisedSlots: 4,
    hardware: { compute_class: "S" },
    models: new Set<string>(),
    inFlight: new InFlightAttempts(),
    stake: 0n,
    slots: 4,
    reputation: 50,
    failures: 0,
    trips: 0,
    breakerUntil: 0,
  } as unknown as NodeSession;
}

describe.each(["sqlite", "postgres"] as const)("heartbeat epochs, on %s", (kind) => {
  let store: Store | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  /** A replica's epoch keeper and what it judges with, on a fresh store. */
  async function keeper(s: Store) {
    const config = compileConfig({ mode: "production", dataDir: mkdtempSync(join(tmpdir(), "havn-epochs-")) });
    const params = new Params(s, silent);
    await params.init(config, {});
    const registry = new NodeRegistry();
    const stake = new StakeService({
      store: s,
      params,
      registry,
      wallets: new Wallets(s),
      config,
      log: silent,
      notify: () => {},
    });
    const reputation = new ReputationBook(s, silent);
    const changes: string[] = [];
    const epochs = new EpochKeeper({
      store: s,
      registry,
      params,
      stake,
      reputation,
      log: silent,
      onQuarantine: (c) => changes.push(c),
    });
    const addRow = (key: string, now = 0) =>
      s.nodes.upsert({
        key,
        name: key,
        capabilities: { backend: "x", engine_version: "1", models: [], slots: 4 },
        hardware: { cpu: { model: "x", cores: 1 }, memory_mb: 1, gpus: [], compute_class: "S" },
        now,
      });
    return { params, registry, stake, reputation, changes, epochs, addRow };
  }

  it("three missed epochs quarantine a staked node (slashed for downtime, earnings held); a clean epoch lifts it and pays what was held; uptime and promises score", async () => {
    store = await openTestStore(kind, inject("pgAdminUrl"));
    const { registry, stake, reputation, changes, epochs, addRow } = await keeper(store);
    const key = "node-epochs";
    await addRow(key);
    await store.nodes.setOnline(key, false, 0);
    await store.nodes.setPromise(key, { fromHour: 0, toHour: 0, slots: 2 });
    await store.ledger.post({
      kind: "faucet",
      idempotencyKey: "epochs-stake",
      now: 0,
      postings: [
        { account: ledgerAccounts.mint, amount: -2_500_000_000n },
        { account: ledgerAccounts.stake(`node:${key}`), amount: 2_500_000_000n },
      ],
    });
    const hour = 3_600_000;
    const base = Math.floor(Date.now() / hour) + 1; // epochs after this keeper started
    for (const e of [0, 1, 2]) await epochs.judge((base + e) * hour, (base + e + 1) * hour, (base + e + 1) * hour);
    // Judged once: a second replica judging the same epoch changes nothing.
    await epochs.judge((base + 2) * hour, (base + 3) * hour, (base + 3) * hour);
    expect(changes).toEqual(["entered"]);
    expect(stake.quarantined.has(key)).toBe(true);
    expect((await store.nodes.get(key))?.quarantinedAt).not.toBeNull();
    expect(await store.ledger.balance(ledgerAccounts.stake(`node:${key}`))).toBe(2_480_000_000n); // 20 HAI downtime
    // Earnings while quarantined are held.
    expect(stake.payee(key, "custodial:x")).toBe(ledgerAccounts.quarantined(key));
    await store.ledger.post({
      kind: "credit",
      idempotencyKey: "epochs-earned",
      now: 0,
      postings: [
        { account: ledgerAccounts.mint, amount: -7n },
        { account: ledgerAccounts.quarantined(key), amount: 7n },
      ],
    });

    // It comes back and heartbeats a whole epoch: the quarantine lifts.
    registry.add(epochSession(key, (base + 3) * hour - 1, { presentSince: (base + 3) * hour - 1, awayMs: 0 }));
    await epochs.judge((base + 3) * hour, (base + 4) * hour, (base + 4) * hour);
    expect(changes).toEqual(["entered", "lifted"]);
    expect(stake.quarantined.has(key)).toBe(false);
    expect(await store.ledger.balance(ledgerAccounts.quarantined(key))).toBe(0n);
    expect(await store.ledger.balance(ledgerAccounts.node(key))).toBe(7n);
    await reputation.flush();
    const causes = (await store.nodes.reputationEvents(key, 20)).map((e) => `${e.cause} ${e.delta}`);
    // Three offline hours inside its promise (−5 each), then an hour up (+1).
    expect(causes.filter((c) => c === "broken_promise -5")).toHaveLength(3);
    expect(causes).toContain("uptime 1");
  });

  it("a reconnect within the grace keeps its epoch clean; a longer break, or short ones adding up past it, miss it", async () => {
    store = await openTestStore(kind, inject("pgAdminUrl"));
    const { params, registry, reputation, epochs, addRow } = await keeper(store);
    const grace = params.num("quarantine.reconnect_grace_ms");
    expect(grace).toBe(120_000);
    const minute = 60_000;
    const hour = 3_600_000;
    const start = (Math.floor(Date.now() / hour) + 2) * hour;
    const join = (key: string, at: number) => {
      const session = epochSession(key, at, reputation.presence(key, at, grace));
      registry.add(session);
      return session;
    };
    const leave = (session: NodeSession, at: number) => {
      registry.remove(session);
      reputation.departed(session, at);
    };
    // Connected before the epoch; each breaks its connection inside it.
    const breaks: Record<string, [number, number][]> = {
      blip: [[10, 11]], // a minute away: a restart, a network blip
      outage: [[10, 15]], // five minutes away
      flapping: [
        [10, 10.9],
        [20, 20.9],
        [30, 30.9],
      ], // 54 s each, 162 s in all
    };
    for (const [key, gaps] of Object.entries(breaks)) {
      await addRow(key);
      let session = join(key, start - minute);
      for (const [away, back] of gaps) {
        leave(session, start + away * minute);
        session = join(key, start + back * minute);
      }
    }
    const uptime = async () => {
      await reputation.flush();
      const out: string[] = [];
      for (const key of Object.keys(breaks))
        if ((await store!.nodes.reputationEvents(key, 10)).some((e) => e.cause === "uptime")) out.push(key);
      return out;
    };
    await epochs.judge(start, start + hour, start + hour);
    expect(await uptime()).toEqual(["blip"]);
    // The next epoch, connected throughout: every one is clean (breaks count in the epoch they ended in).
    await epochs.judge(start + hour, start + 2 * hour, start + 2 * hour);
    await reputation.flush();
    for (const key of Object.keys(breaks))
      expect((await store.nodes.reputationEvents(key, 10)).filter((e) => e.cause === "uptime")).toHaveLength(
        key === "blip" ? 2 : 1,
      );
  });

  it("judges the nodes a crashed replica left marked online, not those another replica holds", async () => {
    store = await openTestStore(kind, inject("pgAdminUrl"));
    const { registry, stake, changes, epochs, addRow } = await keeper(store);
    const hour = 3_600_000;
    const start = (Math.floor(Date.now() / hour) + 2) * hour;
    // Both rows say online, and neither is connected here. "held" joined another replica an
    // epoch ago, which judges it each epoch; "orphan" was on a replica that crashed long ago.
    await addRow("orphan", 0);
    await addRow("held", start - 30 * 60_000);
    for (const key of ["orphan", "held"])
      await store.ledger.post({
        kind: "faucet",
        idempotencyKey: `stake-${key}`,
        now: 0,
        postings: [
          { account: ledgerAccounts.mint, amount: -2_500_000_000n },
          { account: ledgerAccounts.stake(`node:${key}`), amount: 2_500_000_000n },
        ],
      });
    for (const e of [0, 1, 2]) {
      // The live replica judges "held" first, as it does at each epoch's end.
      await store.nodes.recordEpoch({
        key: "held",
        epoch: start + e * hour,
        clean: true,
        threshold: 3,
        now: start + (e + 1) * hour,
      });
      await epochs.judge(start + e * hour, start + (e + 1) * hour, start + (e + 1) * hour);
    }
    expect(changes).toEqual(["entered"]);
    expect(stake.quarantined.has("orphan")).toBe(true);
    expect((await store.nodes.get("orphan"))?.online).toBe(false);
    expect((await store.nodes.get("held"))?.online).toBe(true);
    // The orphan comes back here while another replica still thinks it offline... and its row is
    // set right when this replica judges it, so no replica judges it offline again.
    await store.nodes.setOnline("orphan", false, 1);
    registry.add(epochSession("orphan", start + 3 * hour, { presentSince: start + 3 * hour, awayMs: 0 }));
    expect((await store.nodes.get("orphan"))?.missedEpochs).toBe(3);
    expect((await store.nodes.get("held"))?.missedEpochs).toBe(0);
    // And a row the live replica has not judged yet this time, but judged the epoch before, is
    // still its own: a fourth epoch judged here first leaves "held" alone.
    await epochs.judge(start + 3 * hour, start + 4 * hour, start + 4 * hour);
    expect((await store.nodes.get("held"))?.lastEpoch).toBe(start + 2 * hour);
    expect((await store.nodes.get("orphan"))?.online).toBe(true);
  });

  it("counts the promised hours of an epoch, across midnight too", () => {
    const day = Date.UTC(2026, 10, 30);
    const h = 3_600_000;
    expect(promisedHours({ fromHour: 9, toHour: 17, slots: 1 }, day, day + 24 * h)).toBe(8);
    expect(promisedHours({ fromHour: 22, toHour: 2, slots: 1 }, day, day + 24 * h)).toBe(4);
    expect(promisedHours({ fromHour: 5, toHour: 5, slots: 1 }, day + 30 * 60_000, day + 90 * 60_000)).toBe(1);
    expect(promisedHours({ fromHour: 9, toHour: 17, slots: 1 }, day + 8.5 * h, day + 9.5 * h)).toBe(0.5);
  });
});
