import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashCanonical, HavnError } from "@havn/protocol";
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

  it("checks the receipt's salted input commitment against the input the client sent", async () => {
    const r = await client.chat("my secret prompt", { model: "havn-tiny", maxTokens: 8 });
    const input = { kind: "chat" as const, messages: [{ role: "user" as const, content: "my secret prompt" }] };
    expect((await client.verifyReceipt(r.jobId, undefined, { input })).input).toBe(true);
    const guessed = { kind: "chat" as const, messages: [{ role: "user" as const, content: "my public prompt" }] };
    const wrong = await client.verifyReceipt(r.jobId, undefined, { input: guessed });
    expect(wrong.input).toBe(false);
    expect(wrong.problems).toContain("The receipt does not commit to this input.");
    // The public log holds only the salted commitment: the unsalted hash of the prompt is nowhere in it.
    const logged = JSON.stringify(await client.logRange());
    expect(logged).toContain(r.receipt!.receipt.v === 2 ? r.receipt!.receipt.input_commitment : "");
    expect(logged).not.toContain(hashCanonical(input));
  });

  it("turns error bodies into HavnErrors with catalog codes", async () => {
    await expect(client.job("job-000000000000000000000000")).rejects.toMatchObject({ code: "JOB_NOT_FOUND" });
    await expect(client.chat("x", { model: "no-such-model" })).rejects.toBeInstanceOf(HavnError);
    const unreachable = new HavnClient({ baseUrl: "http://127.0.0.1:9" });
    await expect(unreachable.health()).rejects.toMatchObject({ code: "COORDINATOR_UNREACHABLE" });
  });
});
