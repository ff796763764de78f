import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  contentId,
  settlementEntryHash,
  verifyCosignedReceipt,
  verifySettlement,
  type CosignedReceipt,
  type LogEntryView,
} from "@havn/protocol";
import { storeKinds } from "@havn/store/testing";
import { startNetwork, type Network } from "@havn/testkit";

async function getJson(url: string) {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

describe.each(storeKinds)("one job's life on the built-in engine (%s)", (store) => {
  let net: Network;
  let client: OpenAI;
  let coordinatorKey: string;
  beforeAll(async () => {
    net = await startNetwork({ store, pgAdminUrl: inject("pgAdminUrl"), nodes: [{ backend: "builtin" }] });
    client = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: "any-key-in-dev-mode", maxRetries: 0 });
    coordinatorKey = (await getJson(`${net.url}/health`)).body.coordinator_key as string;
  });
  afterAll(() => net?.close());

  it("answers a chat completion whose id is the job id and whose receipt verifies", async () => {
    const r = await client.chat.completions.create({
      model: "havn-tiny",
      messages: [{ role: "user", content: "Tell me about the network." }],
      max_tokens: 24,
      seed: 11,
      temperature: 0.7,
    });
    const text = r.choices[0]!.message.content!;
    expect(text.length).toBeGreaterThan(0);
    expect(r.usage?.completion_tokens).toBeLessThanOrEqual(24);
    const { status, body: job } = await getJson(`${net.url}/jobs/${r.id}`);
    expect(status).toBe(200);
    expect(job).toMatchObject({ id: r.id, status: "completed", model: "havn-tiny", output: { text } });
    const receipt = job.receipt as CosignedReceipt;
    expect(receipt.receipt.outputs_cid).toBe(contentId(text));
    expect(verifyCosignedReceipt(receipt, coordinatorKey)).toEqual({ node: true, coordinator: true, chain: true });
    // The output is stored by its content id, and the log entry holds the same receipt.
    expect(await (await fetch(`${net.url}/outputs/${receipt.receipt.outputs_cid}`)).text()).toBe(text);
    const entry = await getJson(`${net.url}/log/${receipt.log.seq}`);
    expect(entry.body).toMatchObject({ job_id: r.id, entry_hash: receipt.log.entry_hash });
  });

  it("streams the same text a non-streamed request gets for the same seed", async () => {
    const request = {
      model: "havn-tiny",
      messages: [{ role: "user" as const, content: "stream it" }],
      max_tokens: 32,
      seed: 5,
      temperature: 0.9,
    };
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({
      ...request,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let chunks = 0;
    let finish: string | null = null;
    let id = "";
    for await (const chunk of stream) {
      id = chunk.id;
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(chunks).toBeGreaterThan(5);
    expect(finish).toBe(whole.choices[0]!.finish_reason);
    expect((await getJson(`${net.url}/jobs/${id}`)).body.status).toBe("completed");
  });

  it("serves /v1/completions, streamed and not", async () => {
    const r = await client.completions.create({
      model: "havn-tiny",
      prompt: "The node",
      max_tokens: 12,
      temperature: 0,
    });
    expect(r.choices[0]!.text).toMatch(/^\S*/);
    const stream = await client.completions.create({
      model: "havn-tiny",
      prompt: "The node",
      max_tokens: 12,
      temperature: 0,
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    expect(text).toBe(r.choices[0]!.text);
  });

  it("lists models with their online nodes, and picks one for model auto", async () => {
    const models = await client.models.list();
    const tiny = models.data.find((m) => m.id === "havn-tiny") as unknown as {
      havn: { online_nodes: number; tier: string };
    };
    expect(tiny.havn).toMatchObject({ online_nodes: 1, tier: "A" });
    const r = await client.chat.completions.create({
      model: "auto",
      messages: [{ role: "user", content: "x" }],
      max_tokens: 4,
    });
    expect(r.model).toBe("havn-tiny");
  });

  it("keeps the execution log one unbroken chain", async () => {
    const health = await getJson(`${net.url}/health`);
    const head = (health.body.log as { seq: number }).seq;
    expect(head).toBeGreaterThanOrEqual(5);
    let prev = "0".repeat(64);
    for (let seq = 1; seq <= head; seq++) {
      const entry = (await getJson(`${net.url}/log/${seq}`)).body as LogEntryView;
      expect(entry.prev_hash).toBe(prev);
      // A completed attempt's receipt, or (the job settled) its settlement record.
      if (entry.kind === "settlement") {
        expect(settlementEntryHash(entry.prev_hash, entry.settlement.settlement)).toBe(entry.entry_hash);
        expect(verifySettlement(entry.settlement, coordinatorKey)).toBe(true);
      } else expect(verifyCosignedReceipt(entry.receipt, coordinatorKey).chain).toBe(true);
      prev = entry.entry_hash;
    }
  });
});

describe("determinism across networks", () => {
  it("the same job with the same seed gives the same text and output CID on two coordinators", async () => {
    const results: { text: string; cid: string }[] = [];
    for (let i = 0; i < 2; i++) {
      const net = await startNetwork({ nodes: [{ backend: "builtin" }] });
      try {
        const client = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: "x", maxRetries: 0 });
        const r = await client.chat.completions.create({
          model: "havn-tiny",
          messages: [{ role: "user", content: "same every time" }],
          max_tokens: 40,
          seed: 1234,
          temperature: 0.8,
        });
        const job = (await getJson(`${net.url}/jobs/${r.id}`)).body as { output_cid: string };
        results.push({ text: r.choices[0]!.message.content!, cid: job.output_cid });
      } finally {
        await net.close();
      }
    }
    expect(results[1]).toEqual(results[0]);
  });
});
