// Routing decisions at scale: one job's `eligible` + `choose` over a registry of N online nodes,
// timed in-process (no network, no database), interleaved across fleet sizes so the machine's
// state is shared. The reference is the same decision on a 10-node network, measured beside.
import type { Hardware, TaskKind } from "@havn/protocol";
import {
  InFlightAttempts,
  NodeRegistry,
  type InFlightAttempt,
  type NodeSession,
} from "../apps/coordinator/src/nodes/node-registry.ts";
import { probationDraw, Router } from "../apps/coordinator/src/router/router.ts";

const hardware: Hardware = { cpu: { model: "bench", cores: 2 }, memory_mb: 1024, gpus: [], compute_class: "S" };
const tasks = new Set<TaskKind>(["chat", "completion"]);

function session(i: number, model: string): NodeSession {
  const inFlight = new InFlightAttempts();
  // A quarter of the fleet is busy: routing must look past full nodes.
  if (i % 4 === 0) for (let k = 0; k < 8; k++) inFlight.set(`a${k}`, {} as InFlightAttempt);
  return {
    key: `node-${i}`,
    name: `node-${i}`,
    capabilities: { backend: "bench", engine_version: "1", models: [], slots: 8 },
    hardware,
    models: new Set([model]),
    tasks: new Map([[model, tasks]]),
    advertisedSlots: 8,
    slots: 8,
    stake: 0n,
    routingTerms: { stake: 1, price: 1 },
    held: null,
    inFlight,
    connectedAt: 0,
    presentSince: 0,
    awayMs: 0,
    lastSeenAt: 0,
    lastHeartbeatAt: 0,
    available: true,
    backend: { ok: true },
    latencyEwmaMs: 50 + (i % 100),
    // Some nodes below the routing floor: the trust filter runs as it does on a real network.
    reputation: i % 10 === 0 ? 20 : 60,
    failures: 0,
    trips: 0,
    breakerUntil: 0,
    send: () => {},
    close: () => {},
    terminate: () => {},
    ping: async () => true,
  };
}

/** A registry of `n` nodes; `servingShare` of them serve the jobs' model, the rest another. */
function fleet(n: number, servingShare: number): NodeRegistry {
  const registry = new NodeRegistry();
  for (let i = 0; i < n; i++) registry.add(session(i, i < Math.max(1, n * servingShare) ? "job-model" : "other-model"));
  return registry;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

export async function routingBench(smoke: boolean): Promise<{ p99At10k: number; p99At10: number }> {
  console.log("\n(d) Routing decisions: one job's eligible + choose, in-process; µs per decision");
  console.log("    nodes: 8 slots each, a quarter full, a tenth below the routing floor; 3 failed nodes per job");
  const router = new Router({ exploration: 0.05 });
  const cases = [
    { name: "10 nodes (reference)", registry: fleet(10, 1) },
    { name: "1,000 nodes", registry: fleet(1_000, 1) },
    { name: "10,000 nodes, all serving", registry: fleet(10_000, 1) },
    { name: "10,000 nodes, 1 % serving", registry: fleet(10_000, 0.01) },
  ];
  const reserved = new Map<string, number>();
  const failed = ["node-1", "node-2", "node-3"];
  const decisions = smoke ? 200 : 20_000;
  const trials = smoke ? 1 : 5;
  const times = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (let t = 0; t < trials; t++)
    for (const c of t % 2 === 0 ? cases : [...cases].reverse()) {
      const list = times.get(c.name)!;
      for (let i = 0; i < decisions; i++) {
        const id = `job-${t}-${i}`;
        const t0 = performance.now();
        const pick = router.choose(
          router.eligible(c.registry.serving("job-model"), "job-model", "chat", reserved, failed, probationDraw(id)),
          reserved,
        );
        list.push((performance.now() - t0) * 1000);
        if (!pick) throw new Error(`no node for ${c.name}`);
      }
    }
  for (const c of cases) {
    const list = times.get(c.name)!;
    console.log(
      `    ${c.name.padEnd(28)} p50 ${pct(list, 50).toFixed(1).padStart(7)}  p99 ${pct(list, 99).toFixed(1).padStart(7)}  max ${Math.max(
        ...list,
      )
        .toFixed(0)
        .padStart(6)}`,
    );
  }
  const p99At10k = pct(times.get("10,000 nodes, all serving")!, 99);
  const p99At10 = pct(times.get("10 nodes (reference)")!, 99);
  console.log(`    p99 at 10,000 nodes / at 10 nodes: ${(p99At10k / p99At10).toFixed(1)}×`);
  return { p99At10k, p99At10 };
}
