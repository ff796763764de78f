import OpenAI from "openai";
import { afterEach, describe, expect, inject, it } from "vitest";
import { storeKinds } from "@havn/store/testing";
import type { GenerateRequest } from "@havn/engine";
import { ScriptedBackend, startNetwork, type Network } from "@havn/testkit";

let net: Network | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const client = (n: Network) => new OpenAI({ baseURL: `${n.url}/v1`, apiKey: "x", maxRetries: 0, timeout: 20_000 });
const ask = (content: string) => ({
  model: "havn-tiny",
  messages: [{ role: "user" as const, content }],
  max_tokens: 4,
  seed: 7,
});
const submit = async (n: Network, content: string) =>
  (
    await n.coordinator.jobs.submit({
      model: "havn-tiny",
      input: { kind: "chat", messages: [{ role: "user", content }] },
      params: { max_tokens: 4, temperature: 0, top_p: 1, seed: 7, stop: [] },
      stream: false,
      accountId: null,
    })
  ).job;

/** Counts the coordinator's reads of the queue. */
function countQueueReads(n: Network): () => number {
  const store = n.coordinator.store;
  const original = store.jobs.claimable.bind(store.jobs);
  let reads = 0;
  store.jobs.claimable = (models, limit) => {
    reads++;
    return original(models, limit);
  };
  return () => reads;
}

describe("dispatch", () => {
  it("with nothing queued and a free slot, a job goes to a node at admission: written leased, no queue read", async () => {
    net = await startNetwork({
      nodes: [{ backend: "scripted", name: "a", slots: 4 }],
      coordinator: { sweepIntervalMs: 60_000 },
    });
    await client(net).chat.completions.create(ask("warm up")); // the first pass learns the queue is empty
    const reads = countQueueReads(net);
    for (let i = 0; i < 5; i++) {
      const job = await submit(net, `job ${i}`);
      expect(job).toMatchObject({ status: "leased", attempts: 1 });
      expect(job.route?.node_key).toBe(net.coordinator.registry.all()[0]!.key);
      const done = await net.coordinator.jobs.waitForEnd(job, 5_000);
      expect(done?.status).toBe("completed");
      expect(await net.coordinator.store.jobs.get(job.id)).toMatchObject({ status: "completed", attempts: 1 });
    }
    expect(reads()).toBe(0);
  });

  it("a new job never overtakes queued ones: with one slot, jobs run in the order they came", async () => {
    net = await startNetwork({
      nodes: [{ backend: "scripted", name: "one-slot", slots: 1, tokens: 4, tokenDelayMs: 15 }],
    });
    const order: string[] = [];
    const pending: Promise<void>[] = [];
    for (const name of ["a", "b", "c", "d", "e"]) {
      const job = await submit(net, name);
      pending.push(
        net.coordinator.jobs.waitForEnd(job, 10_000).then((done) => {
          expect(done?.status).toBe("completed");
          order.push(name);
        }),
      );
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(pending);
    expect(order).toEqual(["a", "b", "c", "d", "e"]);
  });

  /** Holds every admission write until `open()` is called; records when each write ended. */
  function holdAdmissions(n: Network) {
    const store = n.coordinator.store;
    const insert = store.jobs.admit.bind(store.jobs);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const written: number[] = [];
    store.jobs.admit = async (jobs) => {
      await gate;
      const outcomes = await insert(jobs);
      written.push(performance.now());
      return outcomes;
    };
    return { open, written };
  }

  it("a job placed at admission is sent before its row is written; the node's answer waits for the row", async () => {
    net = await startNetwork({
      nodes: [{ backend: "scripted", name: "fast", slots: 2 }],
      coordinator: { sweepIntervalMs: 60_000 },
    });
    const openai = client(net);
    const warm = await openai.chat.completions.create(ask("warm up"));
    const backend = net.nodes[0]!.backend as ScriptedBackend;
    const before = backend.generated;
    const admissions = holdAdmissions(net);

    // Streamed: every token reaches the client, in order, though all came before the row.
    const streamed = openai.chat.completions.create({ ...ask("early bird"), stream: true });
    await until(() => backend.generated === before + 1);
    expect(admissions.written).toHaveLength(0);
    admissions.open();
    let text = "";
    for await (const chunk of await streamed) text += chunk.choices[0]?.delta.content ?? "";
    const plain = await openai.chat.completions.create(ask("early bird"));
    expect(text).toBe(plain.choices[0]!.message.content);
    expect(text).not.toBe(warm.choices[0]!.message.content);

    const job = await net.coordinator.store.jobs.get(plain.id);
    expect(job).toMatchObject({ status: "completed", attempts: 1 });
    expect(net.coordinator.registry.all()[0]!.inFlight.size).toBe(0);
  });

  it("when the admission write fails, the client gets an error and the node is told to drop the job", async () => {
    const aborted: string[] = [];
    class Watched extends ScriptedBackend {
      override generate(request: GenerateRequest) {
        request.signal?.addEventListener("abort", () => aborted.push(request.input.kind));
        return super.generate(request);
      }
    }
    net = await startNetwork({
      nodes: [{ backend: new Watched({ slots: 1, tokens: 4, tokenDelayMs: 200 }), name: "slow" }],
      coordinator: { sweepIntervalMs: 60_000 },
    });
    const openai = client(net);
    await openai.chat.completions.create(ask("warm up"));
    const store = net.coordinator.store;
    const insert = store.jobs.admit.bind(store.jobs);
    store.jobs.admit = async () => {
      await new Promise((r) => setTimeout(r, 50));
      throw new Error("disk full");
    };
    await expect(openai.chat.completions.create(ask("never stored"))).rejects.toMatchObject({ status: 500 });
    await until(() => aborted.length === 1);
    expect(net.coordinator.registry.all()[0]!.inFlight.size).toBe(0);
    // Nothing half-done is left behind: the next job gets the node's only slot.
    store.jobs.admit = insert;
    const next = await openai.chat.completions.create(ask("stored"));
    expect(next.choices[0]!.message.content).toBeTruthy();
  });

  it("a node lost while its job's admission is written: the job is re-queued once written, and runs elsewhere", async () => {
    net = await startNetwork({
      nodes: [{ backend: "scripted", name: "doomed", slots: 1, tokens: 4, tokenDelayMs: 200 }],
      coordinator: { sweepIntervalMs: 60_000 },
    });
    const openai = client(net);
    await openai.chat.completions.create(ask("warm up"));
    const admissions = holdAdmissions(net);
    const answer = openai.chat.completions.create(ask("survivor"));
    await until(() => net!.coordinator.registry.all()[0]!.inFlight.size === 1);
    await net.nodes[0]!.agent.stop();
    await until(() => net!.coordinator.registry.size === 0);
    admissions.open();
    await net.addNode({ backend: "scripted", name: "heir", slots: 1 });
    const done = await answer;
    const job = await net.coordinator.store.jobs.get(done.id);
    expect(job).toMatchObject({ status: "completed", attempts: 2 });
    expect(job?.route?.node_key).toBe(net.coordinator.registry.all()[0]!.key);
  });
});

describe.each(storeKinds)("jobs placed at admission, on %s", (kind) => {
  it("many at once, streamed and not: every one completes, and its streamed text is its text", async () => {
    net = await startNetwork({
      store: kind,
      pgAdminUrl: inject("pgAdminUrl"),
      nodes: [
        { backend: "scripted", name: "p", slots: 8 },
        { backend: "scripted", name: "q", slots: 8 },
      ],
    });
    const openai = client(net);
    await openai.chat.completions.create(ask("warm up"));
    const answers = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const request = { ...ask(`burst ${i}`), seed: i };
        if (i % 2 === 0) return (await openai.chat.completions.create(request)).choices[0]!.message.content;
        let text = "";
        for await (const chunk of await openai.chat.completions.create({ ...request, stream: true }))
          text += chunk.choices[0]?.delta.content ?? "";
        return text;
      }),
    );
    // The same requests again, all plain: the same texts.
    for (const [i, text] of answers.entries()) {
      const again = await openai.chat.completions.create({ ...ask(`burst ${i}`), seed: i });
      expect(again.choices[0]!.message.content).toBe(text);
    }
    expect(new Set(answers).size).toBe(24);
    const counts = await net.coordinator.store.jobs.countByStatus();
    expect(counts).toMatchObject({ completed: 49 });
  });
});

async function until(condition: () => boolean, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
