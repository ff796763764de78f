import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyBaseLogger } from "fastify";
import { pino } from "pino";
import { describe, expect, inject, it } from "vitest";
import { openTestStore, storeKinds } from "@havn/store/testing";
import { compileConfig, type CoordinatorOptions } from "../src/config.js";
import { initialParams, paramDefinitions, paramNames, paramProblems, Params } from "../src/governance/params.js";
import { maturityFor } from "../src/staking/stake-service.js";

const config = (o: CoordinatorOptions = {}) =>
  compileConfig({ mode: "production", dataDir: mkdtempSync(join(tmpdir(), "havn-params-")), ...o });

/** A logger that keeps its warnings. */
function recorder() {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: "warn" },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { log: log as unknown as FastifyBaseLogger, lines };
}

describe("the parameter table", () => {
  it("names every economic parameter once, with a unit, bounds and a reason; the defaults satisfy their rules", () => {
    for (const name of paramNames) {
      const d = paramDefinitions[name];
      expect(d.reason.length, name).toBeGreaterThan(10);
      expect(d.min <= d.max, name).toBe(true);
    }
    expect(paramProblems(initialParams(config(), {}))).toEqual([]);
    expect(initialParams(config(), {})["stake.floor_XL"]).toBe(18_000_000_000n);
  });

  it("honours HavnAI's environment names at the first start, and refuses values it cannot read", () => {
    const v = initialParams(config(), {
      REWARD_BASE_HAI: "0.1",
      REWARD_BASELINE_RUNTIME: "4.5",
      REWARD_SDXL_FACTOR: "2",
    });
    expect(v["rewards.base"]).toBe(100_000n);
    expect(v["rewards.baseline_runtime_ms"]).toBe(4_500n);
    expect(v["rewards.factor_sdxl_bp"]).toBe(20_000n);
    expect(() => initialParams(config(), { REWARD_BASE_HAI: "lots" })).toThrow(/REWARD_BASE_HAI/);
    expect(() =>
      initialParams(config({ ledger: { split: { nodeBp: 10_000, validatorsBp: 0, treasuryBp: 0 } } }), {}),
    ).not.toThrow();
  });

  describe.each(storeKinds)("on %s", (kind) => {
    it("a changed configuration or environment value at a later start is reported and not applied", async () => {
      const store = await openTestStore(kind, inject("pgAdminUrl"));
      try {
        const first = new Params(store, recorder().log);
        await first.init(config({ staking: { floors: { S: 1, M: 2, L: 3, XL: 4 } } }), { REWARD_BASE_HAI: "0.2" });
        expect(first.current["stake.floor_S"]).toBe(1n);
        const { log, lines } = recorder();
        const later = new Params(store, log);
        await later.init(config(), { REWARD_BASE_HAI: "0.3" });
        expect(later.current["stake.floor_S"]).toBe(1n);
        expect(later.current["rewards.base"]).toBe(200_000n);
        const reported = lines.map((l) => l.param);
        expect(reported).toEqual(expect.arrayContaining(["stake.floor_S", "rewards.base"]));
        expect(later.described().find((p) => p.name === "rewards.base")).toMatchObject({
          value: "200000",
          env: "REWARD_BASE_HAI",
          updated_by: "config",
        });
      } finally {
        await store.close();
      }
    });
  });

  it("buckets unbonding maturities: a thousand dust unbonds in an hour make at most two entries", () => {
    const week = 7 * 86_400_000;
    const start = Date.UTC(2026, 10, 30, 12);
    const maturities = new Set(Array.from({ length: 1_000 }, (_, i) => maturityFor(start + i * 3_600, week)));
    expect(maturities.size).toBeLessThanOrEqual(2);
    for (const m of maturities) expect(m).toBeGreaterThanOrEqual(start + week);
    expect(maturityFor(start, 300)).toBe(start + 1_000);
  });

  describe.each(storeKinds)("governance's store, on %s", (kind) => {
    it("checks the parameter table inside the decision: two proposals each valid alone cannot together break a rule", async () => {
      const store = await openTestStore(kind, inject("pgAdminUrl"));
      try {
        const params = new Params(store, recorder().log);
        await params.init(config(), {});
        const open = async (key: string, admin = false) =>
          (
            await store.governance.propose({
              id: `prop-${key}`,
              idempotencyKey: key,
              proposer: "acc-x",
              action: { type: "set_params" },
              reason: "r",
              byAdmin: admin,
              createdAt: 1,
              endsAt: 2,
            })
          ).proposal.id;
        const validate = (table: Readonly<Record<string, string>>) =>
          paramProblems(Object.fromEntries(Object.entries(table).map(([n, v]) => [n, BigInt(v)])));
        const tally = { yes: "1", no: "0", abstain: "0", eligible: "1", outcome: "passed" };
        const execute = async (name: string, params: Record<string, string>, now: number) =>
          store.governance.decide({
            id: await open(name),
            state: "executed",
            tally,
            effects: { params },
            validate,
            now,
          });
        // Each keeps the split at 10 000 against the table it was checked with; both do not.
        const first = await execute("a", { "split.validators_bp": "1500", "split.treasury_bp": "0" }, 3);
        const second = await execute("b", { "split.node_bp": "9000", "split.treasury_bp": "500" }, 4);
        expect([first, second]).toEqual(["executed", "failed"]);
        const table = Object.fromEntries((await store.governance.params()).map((r) => [r.name, r.value]));
        expect([table["split.node_bp"], table["split.validators_bp"], table["split.treasury_bp"]]).toEqual([
          "8500",
          "1500",
          "0",
        ]);
        expect((await store.governance.proposal("prop-b"))?.tally?.outcome).toMatch(/must be 10000/);
        // Decided once: a second decision (another replica) changes nothing.
        expect(await store.governance.decide({ id: "prop-a", state: "rejected", tally, now: 5 })).toBeUndefined();

        // An admin's act is never picked up by the vote-deciding pass.
        await open("admin", true);
        expect((await store.governance.due(10, 10)).map((p) => p.id)).toEqual([]);

        // Holds are per kind: admitting a paused name keeps it paused; resuming keeps it admitted.
        const hold = (kind: "paused" | "admitted", id: string) => ({
          hold: { subject: "model:m", kind, reason: "r", proposalId: id, at: 6 },
        });
        for (const [id, effects] of [
          ["c", hold("paused", "prop-c")],
          ["d", hold("admitted", "prop-d")],
          ["e", { release: { subject: "model:m", kind: "paused" as const } }],
        ] as const)
          await store.governance.decide({ id: await open(id), state: "executed", tally, effects, now: 7 });
        expect((await store.governance.holds()).map((h) => h.kind)).toEqual(["admitted"]);
      } finally {
        await store.close();
      }
    });
  });
});
