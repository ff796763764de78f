import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyBaseLogger } from "fastify";
import { pino } from "pino";
import { describe, expect, inject, it } from "vitest";
import { openTestStore, storeKinds } from "@havn/store/testing";
import { compileConfig, type CoordinatorOptions } from "../src/config.js";
import { initialParams, paramDefinitions, paramNames, paramProblems, Params } from "../src/governance/params.js";

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
});
