import { afterEach, describe, expect, inject, it } from "vitest";
import type { BackendInfo } from "@havn/engine";
import type { Store } from "@havn/store";
import { reopenableTestStore } from "@havn/store/testing";
import { ScriptedBackend, startNetwork, type Network } from "@havn/testkit";
import { compileConfig } from "../src/config.ts";
import { call } from "./http.ts";

let net: Network | undefined;
const removals: (() => void)[] = [];
afterEach(async () => {
  await net?.close();
  net = undefined;
  for (const remove of removals.splice(0)) remove();
});

/** A scripted backend that also advertises `extra` names (a junk-filling node). */
class Advertising extends ScriptedBackend {
  constructor(private readonly extra: readonly string[]) {
    super({ model: "served" });
  }
  override async info(): Promise<BackendInfo> {
    const info = await super.info();
    const base = info.models[0]!;
    return { ...info, models: [base, ...this.extra.map((name) => ({ ...base, name }))] };
  }
}

const junk = ["bad name!", "../etc", ...Array.from({ length: 253 }, (_, i) => `junk-${i}`)];
const ask = (model: string) => ({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 4 });

describe("the catalog's mode", () => {
  it("is open in dev mode and curated in production unless set", () => {
    expect(compileConfig({ mode: "dev" }).catalog.mode).toBe("open");
    expect(compileConfig({ mode: "production" }).catalog.mode).toBe("curated");
    expect(compileConfig({ mode: "production", catalog: { mode: "open" } }).catalog.mode).toBe("open");
  });
});

describe.each(["sqlite", "postgres"] as const)("the model catalog, on %s", (kind) => {
  /** One database the test opens twice: a coordinator, then its restart. */
  async function database(): Promise<() => Promise<Store>> {
    const db = await reopenableTestStore(kind, inject("pgAdminUrl"));
    removals.push(db.remove);
    return db.open;
  }

  it("an open catalog takes 16 names a node, of the right syntax; junk never reaches it, nor comes back after a restart", async () => {
    const open = await database();
    net = await startNetwork({ store: await open(), nodes: [] });
    for (let i = 0; i < 5; i++) await net.addNode({ backend: new Advertising(junk), name: `n${i}` });
    for (const s of net.coordinator.registry.all()) {
      expect(s.models.size).toBe(16);
      expect(s.models.has("served")).toBe(true);
      expect(s.models.has("bad name!")).toBe(false);
    }
    const listed = (await call(net, "GET", "/v1/models")).body.data as { id: string }[];
    expect(listed).toHaveLength(16);
    expect((await call(net, "POST", "/v1/chat/completions", { body: ask("junk-200") })).body.error.code).toBe(
      "MODEL_NOT_FOUND",
    );
    expect((await call(net, "POST", "/v1/chat/completions", { body: ask("served") })).status).toBe(200);
    await net.close();
    // A restart on the same database: what was ignored is not in the catalog either.
    net = await startNetwork({ store: await open(), nodes: [] });
    expect((await call(net, "POST", "/v1/chat/completions", { body: ask("junk-200") })).body.error.code).toBe(
      "MODEL_NOT_FOUND",
    );
    expect((await call(net, "GET", "/v1/models")).body.data).toEqual([]);
  });

  it("a curated catalog serves the manifest's models and the admitted names only", async () => {
    const open = await database();
    net = await startNetwork({
      store: await open(),
      nodes: [],
      coordinator: { catalog: { mode: "curated", admitted: ["llama3.2:3b"] } },
    });
    await net.addNode({ backend: new Advertising(["havn-tiny", "llama3.2:3b", "my-finetune"]), name: "n" });
    const [session] = net.coordinator.registry.all();
    expect([...session!.models].sort()).toEqual(["havn-tiny", "llama3.2:3b"]);
    expect((await call(net, "POST", "/v1/chat/completions", { body: ask("my-finetune") })).body.error.code).toBe(
      "MODEL_NOT_FOUND",
    );
    // Another spelling of an admitted name is the same model, under the network's spelling: a
    // node cannot take "Llama3.2:3B" over by advertising it first in its own case.
    await net.addNode({ backend: new Advertising(["LLAMA3.2:3B", "HAVN-TINY"]), name: "shouty" });
    for (const s of net.coordinator.registry.all()) expect(s.models.has("llama3.2:3b")).toBe(true);
    expect(net.coordinator.registry.all().some((s) => s.models.has("LLAMA3.2:3B"))).toBe(false);
    const listed = (await call(net, "GET", "/v1/models")).body.data as { id: string }[];
    expect(listed.map((m) => m.id).sort()).toEqual(["havn-tiny", "llama3.2:3b"]);
  });
});
