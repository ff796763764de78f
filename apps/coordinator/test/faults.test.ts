import OpenAI from "openai";
import { afterEach, describe, expect, inject, it, onTestFinished } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "@havn/store";
import { createTestDatabase } from "@havn/store/testing";
import { startNetwork, type Network } from "@havn/testkit";

let net: Network | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const client = (n: Network) => new OpenAI({ baseURL: `${n.url}/v1`, apiKey: "x", maxRetries: 0, timeout: 20_000 });
const ask = { model: "havn-tiny", messages: [{ role: "user" as const, content: "fault test" }], seed: 42 };

async function jobStatus(n: Network, id: string) {
  return ((await (await fetch(`${n.url}/jobs/${id}`)).json()) as { status: string; attempts: number }).status;
}

describe("faults", () => {
  it("a node lost mid-stream: the retry on another node continues the same stream", async () => {
    net = await startNetwork({
      nodes: [
        { backend: "scripted", name: "a", tokens: 20, tokenDelayMs: 25, slots: 1 },
        { backend: "scripted", name: "b", tokens: 20, tokenDelayMs: 25, slots: 1 },
      ],
    });
    const stream = await client(net).chat.completions.create({ ...ask, stream: true });
    let text = "";
    let killed = false;
    let id = "";
    for await (const chunk of stream) {
      id = chunk.id;
      text += chunk.choices[0]?.delta?.content ?? "";
      if (!killed && text.split(" ").length >= 5) {
        killed = true;
        // Kill whichever node is running it.
        const job = (await (await fetch(`${net.url}/jobs/${id}`)).json()) as { node_key: string };
        net.nodes.find((n) => n.agent.keys.publicKey === job.node_key)!.agent.kill();
      }
    }
    expect(killed).toBe(true);
    const job = (await (await fetch(`${net.url}/jobs/${id}`)).json()) as {
      status: string;
      attempts: number;
      output: { text: string };
    };
    expect(job.status).toBe("completed");
    expect(job.attempts).toBe(2);
    expect(text).toBe(job.output.text);
    expect(text.split(" ")).toHaveLength(20);
  });

  it("a retry that disagrees ends the stream with a clear error, never a hang", async () => {
    net = await startNetwork({
      nodes: [
        { backend: "scripted", name: "a", tokens: 20, tokenDelayMs: 25, slots: 1, variant: "one" },
        { backend: "scripted", name: "b", tokens: 20, tokenDelayMs: 25, slots: 1, variant: "two" },
      ],
    });
    const stream = await client(net).chat.completions.create({ ...ask, stream: true });
    let killed = false;
    let text = "";
    const read = async () => {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        if (!killed && text.split(" ").length >= 5) {
          killed = true;
          const job = (await (await fetch(`${net!.url}/jobs/${chunk.id}`)).json()) as { node_key: string };
          net!.nodes.find((n) => n.agent.keys.publicKey === job.node_key)!.agent.kill();
        }
      }
    };
    await expect(read()).rejects.toThrow(/retry produced different text/);
  });

  it("a job accepted while no node is online waits, then runs when one connects", async () => {
    net = await startNetwork({ nodes: [] });
    const pending = client(net).chat.completions.create({ ...ask, max_tokens: 8 });
    await new Promise((r) => setTimeout(r, 300));
    const health = (await (await fetch(`${net.url}/health`)).json()) as { jobs: { queued: number } };
    expect(health.jobs.queued).toBe(1);
    await net.addNode({ backend: "scripted", name: "late" });
    const r = await pending;
    expect(r.choices[0]!.message.content).toMatch(/^w[0-9a-f]{4}/);
  });

  it("routes by task kind: a completion-only model takes completions, never chats", async () => {
    net = await startNetwork({
      nodes: [{ backend: "scripted", name: "base-model", tasks: ["completion"] }],
      coordinator: { queueWaitMs: 300, sweepIntervalMs: 50 },
    });
    const done = await client(net).completions.create({ model: "havn-tiny", prompt: "The", max_tokens: 4 });
    expect(done.choices[0]!.text).toMatch(/^w/);
    await expect(client(net).chat.completions.create(ask)).rejects.toMatchObject({
      status: 503,
      code: "JOB_NO_CAPACITY",
    });
  });

  it("a job no node comes for fails with 503 JOB_NO_CAPACITY after the queue wait", async () => {
    net = await startNetwork({ nodes: [], coordinator: { queueWaitMs: 200, sweepIntervalMs: 50 } });
    await expect(client(net).chat.completions.create(ask)).rejects.toMatchObject({
      status: 503,
      code: "JOB_NO_CAPACITY",
    });
  });

  it("a stream with no node ends with an error event after the queue wait", async () => {
    net = await startNetwork({ nodes: [], coordinator: { queueWaitMs: 200, sweepIntervalMs: 50 } });
    const stream = await client(net).chat.completions.create({ ...ask, stream: true });
    const read = async () => {
      for await (const _ of stream) {
        // drain
      }
    };
    await expect(read()).rejects.toThrow(/No eligible node/);
  });

  it("retries are bounded: failing nodes end the job with 502 JOB_FAILED after max attempts", async () => {
    net = await startNetwork({
      nodes: [{ backend: "scripted", name: "broken", fault: "error" }],
      coordinator: { maxAttempts: 3 },
    });
    const err = (await client(net)
      .chat.completions.create(ask)
      .catch((e: unknown) => e)) as { status: number; code: string; error: { details: { job_id: string } } };
    expect(err).toMatchObject({ status: 502, code: "JOB_FAILED" });
    const job = (await (await fetch(`${net.url}/jobs/${err.error.details.job_id}`)).json()) as {
      attempts: number;
      status: string;
    };
    expect(job).toMatchObject({ status: "failed", attempts: 3 });
  });

  it("a node that stops mid-job hands the job to another node (non-streaming)", async () => {
    net = await startNetwork({ nodes: [{ backend: "scripted", name: "hangs", fault: "hang", slots: 1 }] });
    const pending = client(net).chat.completions.create(ask);
    await new Promise((r) => setTimeout(r, 200));
    await net.addNode({ backend: "scripted", name: "healthy" });
    await net.nodes[0]!.agent.stop();
    const r = await pending;
    expect(r.choices[0]!.message.content).toMatch(/^w[0-9a-f]{4}/);
    expect(await jobStatus(net, r.id)).toBe("completed");
  });

  it("a node that hangs while heartbeating loses the attempt after the attempt timeout", async () => {
    net = await startNetwork({
      nodes: [{ backend: "scripted", name: "hangs", fault: "hang", slots: 1 }],
      coordinator: { attemptTimeoutMs: 300, sweepIntervalMs: 50, maxAttempts: 2 },
    });
    const err = (await client(net)
      .chat.completions.create(ask)
      .catch((e: unknown) => e)) as {
      status: number;
      code: string;
      error: { details: { last_error: { code: string } } };
    };
    expect(err).toMatchObject({ status: 502, code: "JOB_FAILED" });
    expect(err.error.details.last_error.code).toBe("JOB_TIMEOUT");
    expect(net.coordinator.registry.freeSlots()).toBe(1);
  });

  it("cancelling a running job frees its node", async () => {
    net = await startNetwork({ nodes: [{ backend: "scripted", name: "hangs", fault: "hang", slots: 1 }] });
    const stream = await client(net).chat.completions.create({ ...ask, stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    const id = (first.value as { id: string }).id;
    const cancel = await fetch(`${net.url}/jobs/${id}/cancel`, { method: "POST" });
    expect(cancel.status).toBe(200);
    await expect(iterator.next()).rejects.toThrow(/cancelled/);
    expect(await jobStatus(net, id)).toBe("cancelled");
    const again = await fetch(`${net.url}/jobs/${id}/cancel`, { method: "POST" });
    expect(again.status).toBe(200);
    await new Promise((r) => setTimeout(r, 50));
    expect(net.coordinator.registry.freeSlots()).toBe(1);
  });

  it("a job accepted before a coordinator restart is not lost: it runs when the next one starts", async () => {
    const dir = mkdtempSync(join(tmpdir(), "havn-restart-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "havn.db");
    net = await startNetwork({ store: await openStore({ sqlitePath: path }), nodes: [] });
    const response = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...ask, stream: true }),
    });
    const id = response.headers.get("x-havn-job-id")!;
    expect(id).toMatch(/^job-/);
    const waiting = fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(ask),
    });
    await new Promise((r) => setTimeout(r, 100));
    // The coordinator stops with a stream and a waiting request open: both are answered at once,
    // and neither job is cancelled.
    const started = Date.now();
    await net.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await response.text()).toMatch(/REQUEST_SHUTTING_DOWN/);
    const waited = await waiting;
    expect(waited.status).toBe(503);
    const secondId = ((await waited.json()) as { error: { details: { job_id: string } } }).error.details.job_id;
    net = await startNetwork({
      store: await openStore({ sqlitePath: path }),
      nodes: [{ backend: "scripted", name: "after" }],
    });
    for (const jobId of [id, secondId]) {
      let status = "";
      for (let i = 0; i < 100 && status !== "completed"; i++) {
        status = await jobStatus(net, jobId);
        if (status !== "completed") await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toBe("completed");
    }
  });

  it("two coordinators on one PostgreSQL: a job admitted on one runs on the other's node", async () => {
    const databaseUrl = await createTestDatabase(inject("pgAdminUrl"));
    const a = await startNetwork({
      store: await openStore({ databaseUrl }),
      nodes: [],
      coordinator: { sweepIntervalMs: 100 },
    });
    net = await startNetwork({
      store: await openStore({ databaseUrl }),
      nodes: [{ backend: "scripted", name: "on-b" }],
      coordinator: { sweepIntervalMs: 100 },
    });
    try {
      const started = Date.now();
      const r = await client(a).chat.completions.create({ ...ask, max_tokens: 8 });
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(r.choices[0]!.message.content).toMatch(/^w[0-9a-f]{4}/);
      // Paid (dev mode's ledger): the waiter on `a` was answered with the cost; `b`, whose node
      // ran the job, or `a` settles it afterwards.
      expect(BigInt((r.usage as unknown as { cost_uhai: string }).cost_uhai)).toBeGreaterThan(0n);
      const settledBy = Date.now() + 5_000;
      while ((await net.coordinator.store.jobs.get(r.id))?.money?.state !== "settled") {
        if (Date.now() > settledBy) throw new Error("the job was not settled");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const stream = await client(a).chat.completions.create({ ...ask, seed: 43, stream: true });
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
      expect(text.split(" ")).toHaveLength(8);
    } finally {
      await a.close();
    }
  });
});
