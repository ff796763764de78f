import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { startNetwork, type Network } from "@havn/testkit";

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
const submit = (n: Network, content: string) =>
  n.coordinator.jobs.submit({
    model: "havn-tiny",
    input: { kind: "chat", messages: [{ role: "user", content }] },
    params: { max_tokens: 4, temperature: 0, top_p: 1, seed: 7, stop: [] },
    stream: false,
  });

/** Counts the coordinator's reads of the queue. */
function countQueueReads(n: Network): () => number {
  const store = n.coordinator.store;
  const original = store.listClaimable.bind(store);
  let reads = 0;
  store.listClaimable = (models, limit) => {
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
      expect(await net.coordinator.store.getJob(job.id)).toMatchObject({ status: "completed", attempts: 1 });
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

  it("a node that vanishes between placement and delivery: the attempt ends at once and another node runs the job", async () => {
    net = await startNetwork({
      nodes: [
        { backend: "scripted", name: "a", slots: 1 },
        { backend: "scripted", name: "b", slots: 1 },
      ],
      coordinator: { sweepIntervalMs: 60_000, routerExploration: 0 },
    });
    await client(net).chat.completions.create(ask("warm up"));
    const { registry } = net.coordinator;
    const submitted = submit(net, "moving target");
    // Placed on a node synchronously; its admission is still being written. Take the nodes away.
    for (const session of registry.all()) registry.remove(session);
    const job = await submitted;
    expect(job).toMatchObject({ status: "queued", attempts: 1, attemptId: null });
    expect(job.error?.code).toBe("NODE_LOST");
    const ended = net.coordinator.jobs.waitForEnd(job, 5_000);
    await net.addNode({ backend: "scripted", name: "c", slots: 1 });
    expect((await ended)?.status).toBe("completed");
  });
});
