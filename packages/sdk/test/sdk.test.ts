import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HavnError } from "@havn/protocol";
import { startNetwork, type Network } from "@havn/testkit";
import { HavnClient } from "../src/index.ts";

let net: Network;
let client: HavnClient;
beforeAll(async () => {
  net = await startNetwork({ nodes: [{ backend: "builtin" }] });
  client = new HavnClient({ baseUrl: net.url, apiKey: "dev" });
});
afterAll(() => net?.close());

describe("HavnClient", () => {
  it("streams a chat answer and returns its job id and receipt", async () => {
    const pieces: string[] = [];
    const r = await client.chat("Hello", {
      model: "havn-tiny",
      maxTokens: 16,
      seed: 3,
      temperature: 0.8,
      onText: (t) => pieces.push(t),
    });
    expect(r.jobId).toMatch(/^job-/);
    expect(pieces.join("")).toBe(r.text);
    expect(r.receipt?.receipt.job_id).toBe(r.jobId);
    expect((await client.job(r.jobId)).output?.text).toBe(r.text);
  });

  it("verifies a receipt offline against the coordinator's key", async () => {
    const r = await client.chat("verify", { model: "havn-tiny", maxTokens: 8 });
    const check = await client.verifyReceipt(r.jobId);
    expect(check).toMatchObject({ node: true, coordinator: true, chain: true, output: true });
    const wrongKey = await client.verifyReceipt(r.jobId, "A".repeat(43));
    expect(wrongKey.coordinator).toBe(false);
  });

  it("turns error bodies into HavnErrors with catalog codes", async () => {
    await expect(client.job("job-000000000000000000000000")).rejects.toMatchObject({ code: "JOB_NOT_FOUND" });
    await expect(client.chat("x", { model: "no-such-model" })).rejects.toBeInstanceOf(HavnError);
    const unreachable = new HavnClient({ baseUrl: "http://127.0.0.1:9" });
    await expect(unreachable.health()).rejects.toMatchObject({ code: "COORDINATOR_UNREACHABLE" });
  });
});
