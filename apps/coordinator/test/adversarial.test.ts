import { afterEach, describe, expect, inject, it } from "vitest";
import { HavnClient } from "@havn/sdk";
import { hostileBehaviours, makeHostile, startNetwork, type HostileBehaviour, type Network } from "@havn/testkit";

let net: Network | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const jobs = 200;
const concurrency = 20;

/**
 * The adversarial routing suite: one honest node and one hostile node, 200 jobs per behaviour, on
 * both stores. At least 99 % of the jobs complete, the hostile node's reputation falls below the
 * routing floor, and every change to it is an event with its cause. Where the offence is provable
 * — a receipt its own key signed that names another node — its stake is slashed (dev mode
 * bonds each node its floor); where it is not (a signature that fails, silence), it keeps it.
 */
describe.each(["sqlite", "postgres"] as const)("one hostile node beside an honest one, on %s", (store) => {
  it.each(hostileBehaviours)(
    "%s: ≥ 99 %% of 200 jobs complete; the hostile node falls below the floor",
    async (behaviour: HostileBehaviour) => {
      const n = (net = await startNetwork({
        store,
        pgAdminUrl: inject("pgAdminUrl"),
        nodes: [
          { backend: "scripted", name: "honest", tokens: 4, slots: 4 },
          { backend: "scripted", name: "hostile", tokens: 4, slots: 4 },
        ],
        coordinator: {
          sweepIntervalMs: 100,
          // A silent attempt misses its first-token deadline; a silent node is dropped.
          deadlines: { firstTokenDefaultMs: 1_000, firstTokenFloorMs: 500 },
          nodeTimeoutMs: 1_000,
          heartbeatIntervalMs: 200,
        },
      }));
      const [honest, hostile] = n.nodes as [Network["nodes"][number], Network["nodes"][number]];
      makeHostile(hostile.agent, behaviour, honest.agent.keys.publicKey);
      const client = new HavnClient({ baseUrl: n.url });
      let completed = 0;
      const failures: string[] = [];
      for (let i = 0; i < jobs; i += concurrency) {
        await Promise.all(
          Array.from({ length: concurrency }, async (_, k) => {
            try {
              await client.chat(`job ${i + k}`, { model: "havn-tiny", maxTokens: 4 });
              completed++;
            } catch (err) {
              failures.push(String((err as Error).message));
            }
          }),
        );
      }
      expect(completed, failures.slice(0, 3).join("; ")).toBeGreaterThanOrEqual(jobs * 0.99);
      const board = await client.reputation();
      const bad = board.data.find((x) => x.name === "hostile")!;
      const good = board.data.find((x) => x.name === "honest")!;
      expect(bad.score).toBeLessThan(board.routing_floor);
      expect(bad.routed).toBe(false);
      expect(good.routed).toBe(true);
      expect(good.score).toBeGreaterThan(bad.score);
      const events = await client.nodeReputation("hostile");
      const cause =
        behaviour === "black-hole"
          ? "timeout"
          : behaviour === "refuses" || behaviour === "frozen"
            ? "failed"
            : "invalid";
      expect(events.events.some((e) => e.cause === cause && e.delta < 0)).toBe(true);
      // Once found out, it is routed to only on probation: of 200 jobs, few more attempts went to it
      // (an attempt that failed there costs the job a retry, and the network the work).
      const penalties = events.events.filter((e) => e.delta < 0).length;
      expect(penalties).toBeLessThan(jobs * 0.15);
      const [hostileStake, honestStake] = await Promise.all([client.nodeStake("hostile"), client.nodeStake("honest")]);
      // Naming another node is a signed lie anyone can check; a latency above what the coordinator
      // saw is refused but proves nothing to anyone else.
      const provable = behaviour === "claims-other-key";
      if (provable) {
        expect(BigInt(hostileStake.bonded_uhai)).toBeLessThan(BigInt(hostileStake.floor_uhai));
        expect(hostileStake.node?.held).toBe("below_floor");
      } else expect(hostileStake.bonded_uhai).toBe(hostileStake.floor_uhai);
      expect(honestStake.bonded_uhai).toBe(honestStake.floor_uhai);
    },
  );
});
