import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { TaskKind } from "@havn/protocol";
import { InFlightAttempts, NodeRegistry, type InFlightAttempt, type NodeSession } from "../src/nodes/node-registry.ts";
import { ModelCatalog, tierOf } from "../src/router/model-catalog.ts";
import { maxCandidates, probationDraw, Router } from "../src/router/router.ts";

function node(
  key: string,
  opts: {
    busy?: number;
    slots?: number;
    latency?: number | null;
    tasks?: TaskKind[];
    available?: boolean;
    reputation?: number;
    breakerUntil?: number;
    held?: NodeSession["held"];
    terms?: NodeSession["routingTerms"];
  } = {},
): NodeSession {
  const inFlight = new InFlightAttempts();
  for (let i = 0; i < (opts.busy ?? 0); i++) inFlight.set(`a${i}`, {} as InFlightAttempt);
  return {
    key,
    name: key,
    capabilities: { backend: "x", engine_version: "1", models: [], slots: opts.slots ?? 4 },
    hardware: { cpu: { model: "x", cores: 1 }, memory_mb: 1, gpus: [], compute_class: "S" },
    models: new Set(["m"]),
    tasks: new Map([["m", new Set(opts.tasks ?? ["chat", "completion"])]]),
    slots: opts.slots ?? 4,
    advertisedSlots: opts.slots ?? 4,
    stake: 0n,
    routingTerms: opts.terms ?? { stake: 1, price: 1 },
    held: opts.held ?? null,
    inFlight,
    connectedAt: 0,
    presentSince: 0,
    awayMs: 0,
    lastSeenAt: 0,
    lastHeartbeatAt: 0,
    available: opts.available ?? true,
    backend: { ok: opts.available ?? true },
    latencyEwmaMs: opts.latency === undefined ? 100 : opts.latency,
    reputation: opts.reputation ?? 50,
    failures: 0,
    trips: 0,
    breakerUntil: opts.breakerUntil ?? 0,
    send: () => {},
    close: () => {},
    terminate: () => {},
    ping: async () => true,
  } satisfies NodeSession;
}

const router = new Router({ exploration: 0, random: () => 0.5, now: () => 1_000 });

describe("router", () => {
  it("matches capabilities first: model, task kind, a free slot", () => {
    const nodes = [node("full", { busy: 4 }), node("completion-only", { tasks: ["completion"] }), node("ok")];
    expect(router.eligible(nodes, "m", "chat", new Map()).map((n) => n.key)).toEqual(["ok"]);
    expect(router.eligible(nodes, "m", "completion", new Map()).map((n) => n.key)).toEqual(["completion-only", "ok"]);
    expect(router.eligible(nodes, "other", "chat", new Map())).toEqual([]);
    // Slots reserved earlier in the same pass count as taken.
    expect(router.eligible([node("one", { slots: 1 })], "m", "chat", new Map([["one", 1]]))).toEqual([]);
  });
  it("leaves out a node below the reputation floor or with its breaker open, except on probation", () => {
    const nodes = [node("liar", { reputation: 10 }), node("tripped", { breakerUntil: 5_000 }), node("honest")];
    expect(router.eligible(nodes, "m", "chat", new Map()).map((n) => n.key)).toEqual(["honest"]);
    // The honest node is busy: the job waits for it rather than go to an untrusted node.
    const busy = [node("liar", { reputation: 10 }), node("honest", { busy: 4 })];
    expect(router.eligible(busy, "m", "chat", new Map())).toEqual([]);
    // Probation: a small share of decisions (random draw below 5 %) lets untrusted nodes in.
    const lucky = new Router({ exploration: 0, random: () => 0.01, now: () => 1_000 });
    expect(lucky.eligible(nodes, "m", "chat", new Map()).map((n) => n.key)).toEqual(["liar", "tripped", "honest"]);
    // A breaker that closed (its time passed) and a node alone with the model are routed to.
    const later = new Router({ exploration: 0, random: () => 0.5, now: () => 6_000 });
    expect(later.eligible(nodes, "m", "chat", new Map()).map((n) => n.key)).toEqual(["tripped", "honest"]);
    expect(router.eligible([node("liar", { reputation: 10 })], "m", "chat", new Map()).map((n) => n.key)).toEqual([
      "liar",
    ]);
    // Among trusted nodes, reputation weighs in the score.
    const pick = router.choose([node("ok", { reputation: 40 }), node("good", { reputation: 120 })], new Map());
    expect(pick?.node.key).toBe("good");
    expect(pick?.decision.reasons.reputation).toBe(1);
  });
  it("draws probation once per job, evenly: a job waiting through many passes does not redraw", () => {
    const draws = Array.from({ length: 10_000 }, (_, i) => probationDraw(`job-${i.toString(16).padStart(24, "0")}`));
    expect(probationDraw("job-abc")).toBe(probationDraw("job-abc"));
    const share = draws.filter((d) => d < 0.05).length / draws.length;
    expect(share).toBeGreaterThan(0.04);
    expect(share).toBeLessThan(0.06);
    const nodes = [node("liar", { reputation: 10 }), node("honest", { busy: 4 })];
    // The same job, pass after pass: the same answer (it waits for the honest node).
    const job = "job-0000000000000000000000ff";
    const passes = Array.from({ length: 30 }, () =>
      router.eligible(nodes, "m", "chat", new Map(), [], probationDraw(job)),
    );
    expect(new Set(passes.map((p) => p.map((n) => n.key).join()))).toHaveProperty("size", 1);
  });
  it("never routes to a node whose backend is down (it reported itself unavailable)", () => {
    const nodes = [node("down", { available: false }), node("up")];
    expect(router.eligible(nodes, "m", "chat", new Map()).map((n) => n.key)).toEqual(["up"]);
    expect(router.eligible([node("down", { available: false })], "m", "chat", new Map())).toEqual([]);
  });
  it("never routes to a node something holds: stake below its floor, quarantined, paused by governance", () => {
    for (const held of ["below_floor", "quarantined", "paused"] as const) {
      const nodes = [node("held", { held }), node("free")];
      expect(router.eligible(nodes, "m", "chat", new Map()).map((n) => n.key)).toEqual(["free"]);
      // Not even when it is the only node: a held node waits, it does not get probation.
      expect(router.eligible([node("held", { held })], "m", "chat", new Map(), [], 0)).toEqual([]);
    }
  });

  it("does not send a job back to a node it failed on while another node serves the model", () => {
    const nodes = [node("failed-it"), node("other")];
    expect(router.eligible(nodes, "m", "chat", new Map(), ["failed-it"]).map((n) => n.key)).toEqual(["other"]);
    // The other node is busy: the job waits for it rather than go back.
    const busy = [node("failed-it"), node("other", { busy: 4 })];
    expect(router.eligible(busy, "m", "chat", new Map(), ["failed-it"])).toEqual([]);
    // No other node serves the model: the one that failed may try again.
    expect(router.eligible([node("failed-it")], "m", "chat", new Map(), ["failed-it"]).map((n) => n.key)).toEqual([
      "failed-it",
    ]);
    // An unavailable other node does not count.
    const othersDown = [node("failed-it"), node("other", { available: false })];
    expect(router.eligible(othersDown, "m", "chat", new Map(), ["failed-it"]).map((n) => n.key)).toEqual(["failed-it"]);
  });
  it("weighs stake and price: more stake against the floor, a cheaper class, win when all else is equal", () => {
    const staked = [
      node("thin", { terms: { stake: 0.5, price: 1 } }),
      node("thick", { terms: { stake: 1, price: 1 } }),
    ];
    expect(router.choose(staked, new Map())?.node.key).toBe("thick");
    const priced = [node("xl", { terms: { stake: 1, price: 0.25 } }), node("s", { terms: { stake: 1, price: 1 } })];
    const pick = router.choose(priced, new Map())!;
    expect(pick.node.key).toBe("s");
    expect(pick.decision.reasons).toMatchObject({ stake: 1, price: 1 });
  });

  it("indexes routable nodes by model: a held or unhealthy node leaves the index and comes back", () => {
    const registry = new NodeRegistry();
    const a = node("a");
    const b = node("b", { held: "below_floor" });
    registry.add(a);
    registry.add(b);
    expect(registry.serving("m").map((n) => n.key)).toEqual(["a"]);
    b.held = null;
    registry.update(b);
    a.available = false;
    registry.update(a);
    expect(registry.serving("m").map((n) => n.key)).toEqual(["b"]);
    registry.remove(b);
    expect(registry.serving("m")).toEqual([]);
    // A session not (or no longer) registered is never indexed.
    registry.update(b);
    expect(registry.serving("m")).toEqual([]);
  });

  it("keeps free slots counted as attempts, slots, holds and nodes come and go (as a full scan counts them)", () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("join" as const),
        key: fc.nat(5),
        slots: fc.integer({ min: 1, max: 4 }),
        model: fc.nat(2),
      }),
      fc.record({ kind: fc.constant("leave" as const), key: fc.nat(5) }),
      fc.record({ kind: fc.constant("start" as const), key: fc.nat(5), attempt: fc.nat(5) }),
      fc.record({ kind: fc.constant("end" as const), key: fc.nat(5), attempt: fc.nat(5) }),
      fc.record({ kind: fc.constant("lost" as const), key: fc.nat(5) }),
      fc.record({ kind: fc.constant("slots" as const), key: fc.nat(5), slots: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ kind: fc.constant("hold" as const), key: fc.nat(5), held: fc.boolean(), available: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const registry = new NodeRegistry();
        // Sessions stay reachable after they leave: a lost node's attempts still end later.
        const known = new Map<number, NodeSession>();
        for (const o of ops) {
          const s = known.get(o.key);
          if (o.kind === "join") {
            const joined = { ...node(`k${o.key}`, { slots: o.slots }), models: new Set([`m${o.model}`, "shared"]) };
            known.set(o.key, joined);
            registry.add(joined);
          } else if (!s) continue;
          else if (o.kind === "leave") registry.remove(s);
          else if (o.kind === "start") s.inFlight.set(`a${o.attempt}`, {} as InFlightAttempt);
          else if (o.kind === "end") s.inFlight.delete(`a${o.attempt}`);
          else if (o.kind === "lost") s.inFlight.clear();
          else if (o.kind === "slots") {
            s.slots = o.slots;
            registry.update(s);
          } else {
            s.held = o.held ? "quarantined" : null;
            s.available = o.available;
            registry.update(s);
          }
          const open = registry.all().filter((n) => n.available && n.held === null);
          const free = open.reduce((sum, n) => sum + Math.max(0, n.slots - n.inFlight.size), 0);
          const models = new Set(open.filter((n) => n.inFlight.size < n.slots).flatMap((n) => [...n.models]));
          expect(registry.freeSlots()).toBe(free);
          expect(registry.modelsWithFreeSlots().sort()).toEqual([...models].sort());
        }
      }),
      { numRuns: 300 },
    );
  });

  it("on a large network scores a sample of eligible nodes, never a failed, full or untrusted one, and still finds the one free node", () => {
    const big = Array.from({ length: 1_000 }, (_, i) =>
      node(`n${i}`, { reputation: i % 10 === 0 ? 20 : 60, busy: i % 4 === 0 ? 4 : 0 }),
    );
    const failed = ["n1", "n2", "n3"];
    for (let j = 0; j < 50; j++) {
      const picked = new Router({ exploration: 0 }).eligible(big, "m", "chat", new Map(), failed, 0.5);
      expect(picked.length).toBeGreaterThan(0);
      expect(picked.length).toBeLessThanOrEqual(maxCandidates);
      for (const n of picked) {
        expect(failed).not.toContain(n.key);
        expect(n.inFlight.size).toBeLessThan(n.slots);
        expect(n.reputation).toBeGreaterThanOrEqual(30);
      }
    }
    // Every node but one is full: probes miss it; the full scan finds it.
    const full = Array.from({ length: 1_000 }, (_, i) => node(`f${i}`, { busy: i === 777 ? 0 : 4 }));
    expect(router.eligible(full, "m", "chat", new Map()).map((n) => n.key)).toEqual(["f777"]);
  });

  it("prefers the less loaded and the faster node, and records why", () => {
    const pick = router.choose([node("busy", { busy: 3 }), node("idle")], new Map())!;
    expect(pick.node.key).toBe("idle");
    expect(pick.decision).toMatchObject({ node_key: "idle", candidates: 2, reasons: { load: 0 } });
    expect(router.choose([node("slow", { latency: 5_000 }), node("fast", { latency: 10 })], new Map())!.node.key).toBe(
      "fast",
    );
  });
});

describe("model catalog", () => {
  const path = new URL("../registry.json", import.meta.url).pathname;
  it("resolves names case-insensitively and rejects unknown models", () => {
    const c = new ModelCatalog(path);
    expect(c.resolve("HAVN-Tiny", "chat")).toBe("havn-tiny");
    expect(() => c.resolve("gpt-9", "chat")).toThrow(/No such model/);
  });
  it("picks auto by manifest weight, preferring served models", () => {
    const c = new ModelCatalog(null);
    expect(() => c.pickAuto(() => false)).toThrow(/found no text model/);
    c.noteAdvertised(["a", "b"]);
    expect(c.pickAuto((n) => n === "b")).toBe("b");
  });
  it("maps weights to HavnAI tiers", () => {
    expect([25, 20, 10, 8, 5, 1].map(tierOf)).toEqual(["S", "S", "A", "B", "C", "D"]);
  });
});
