import { Writable } from "node:stream";
import OpenAI from "openai";
import { pino } from "pino";
import WebSocket from "ws";
import { afterEach, describe, expect, inject, it } from "vitest";
import type { GenerateRequest } from "@havn/engine";
import { generateKeyPair, HavnError, protocolVersion, sign, type HelloPayload, type KeyPair } from "@havn/protocol";
import { ScriptedBackend, startNetwork, type Network, type NetworkOptions } from "@havn/testkit";

let net: Network | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const client = (n: Network) => new OpenAI({ baseURL: `${n.url}/v1`, apiKey: "x", maxRetries: 0, timeout: 20_000 });
const ask = (content: string) => ({
  model: "havn-tiny",
  messages: [{ role: "user" as const, content }],
  seed: 5,
  max_tokens: 8,
});

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function getJson<T = Record<string, unknown>>(url: string): Promise<{ status: number; body: T }> {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as T };
}

interface Health {
  status: string;
  reasons: string[];
  checks: { nodes: { available: number; unavailable: number }; queue: { unserved_models: string[] } };
}

const session = (n: Network, name: string) => n.coordinator.registry.all().find((s) => s.name === name);

/** A pino logger that keeps every line, parsed, for assertions. */
function memoryLogger() {
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n")) if (line) raw.push(line);
      callback();
    },
  });
  const lines = () => raw.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger: pino({ level: "debug" }, stream), raw, lines };
}

/** A bare node connection that proves `keys` and then, like a frozen process, answers no pings. */
async function frozenNode(
  url: string,
  keys: KeyPair,
  name: string,
): Promise<{ socket: WebSocket; closed: Promise<number> }> {
  const socket = new WebSocket(`${url.replace(/^http/, "ws")}/nodes/connect`, { autoPong: false });
  const closed = new Promise<number>((resolve) => socket.once("close", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.on("message", (data) => {
      const msg = JSON.parse(data.toString()) as { type: string; nonce?: string };
      if (msg.type === "welcome") return resolve();
      if (msg.type !== "challenge") return;
      const payload: HelloPayload = {
        nonce: msg.nonce!,
        node_key: keys.publicKey,
        name,
        agent_version: "test",
        capabilities: {
          backend: "frozen",
          engine_version: "1",
          models: [{ name: "havn-tiny", tasks: ["chat"], context_length: 4096, model_hash: "a".repeat(64) }],
          slots: 1,
        },
        hardware: { cpu: { model: "x", cores: 1 }, memory_mb: 1, gpus: [], compute_class: "S" },
      };
      socket.send(
        JSON.stringify({
          v: protocolVersion,
          type: "hello",
          payload,
          signature: sign("hello", payload, keys.secretKey),
        }),
      );
    });
  });
  return { socket, closed };
}

describe("one key, one live connection", () => {
  it("a second process with a connected node's key is refused with the fix; the first stays connected", async () => {
    const keys = generateKeyPair();
    net = await startNetwork({
      nodes: [{ backend: "scripted", name: "first", keys }],
      coordinator: { duplicateKeyProbeMs: 300 },
    });
    const first = session(net, "first");
    const refused = net.addNode({ backend: "scripted", name: "second", keys });
    await expect(refused).rejects.toMatchObject({ code: "NODE_KEY_IN_USE" });
    await expect(refused).rejects.toThrow(/own --data-dir/);
    // No flapping: the first connection is the same one, still welcomed, a while later.
    await new Promise((r) => setTimeout(r, 600));
    expect(session(net, "first")).toBe(first);
    expect(net.nodes[0]!.agent.connected).toBe(true);
    expect(net.coordinator.registry.size).toBe(1);
  });

  it("a node that crashed and reconnects is not locked out by its dead connection", async () => {
    net = await startNetwork({ nodes: [], coordinator: { duplicateKeyProbeMs: 300 } });
    const keys = generateKeyPair();
    const frozen = await frozenNode(net.url, keys, "restarted");
    expect(net.coordinator.registry.size).toBe(1);
    const { presentSince } = net.coordinator.registry.get(keys.publicKey)!;
    // The restarted process connects with the same key: the old socket cannot answer a ping.
    await net.addNode({ backend: "scripted", name: "restarted", keys });
    // Dropped without a close handshake (it would never finish one): an abnormal closure.
    expect(await frozen.closed).toBe(1006);
    expect(net.coordinator.registry.size).toBe(1);
    // Back within the reconnect grace: its presence (what heartbeat epochs judge) continues.
    expect(net.coordinator.registry.get(keys.publicKey)!.presentSince).toBe(presentSince);
    const r = await client(net).chat.completions.create(ask("after restart"));
    expect(r.choices[0]!.message.content).toBeTruthy();
  });
});

describe("an idle node's connection", () => {
  it("holds nothing of its HTTP upgrade: no response on its socket, no listener closing over the request", async () => {
    net = await startNetwork({ nodes: [] });
    const node = await frozenNode(net.url, generateKeyPair(), "idle");
    const [server] = [...(net.coordinator.app.websocketServer.clients as Set<WebSocket>)];
    // The WebSocket plugin's error listener closed over fastify's request and reply; the
    // placeholder response stayed assigned to the TCP socket. Each held ~3 KB for the
    // connection's life on a coordinator of thousands of idle nodes.
    expect(server!.listenerCount("error")).toBe(1);
    const tcp = (server as unknown as { _socket: { _httpMessage: unknown } })._socket;
    expect(tcp._httpMessage).toBeNull();
    node.socket.close();
  });
});

describe("a node whose backend fails", () => {
  it("stops getting jobs within one health check; jobs complete on the other node; /health is degraded; it rejoins", async () => {
    net = await startNetwork({
      nodes: [
        { backend: "scripted", name: "a", healthCheckMs: 100 },
        { backend: "scripted", name: "b", healthCheckMs: 100 },
      ],
    });
    const a = net.nodes[0]!;
    const b = net.nodes[1]!;
    (a.backend as ScriptedBackend).down = "the engine was stopped";
    const stoppedAt = Date.now();
    await until(() => session(net!, "a")!.available === false);
    // One check interval (100 ms here; 5 s, one heartbeat, by default) plus delivery.
    expect(Date.now() - stoppedAt).toBeLessThan(1_000);

    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => client(net!).chat.completions.create(ask(`while a is down ${i}`))),
    );
    for (const r of results) {
      const job = await getJson<{ status: string; receipt: { receipt: { node_id: string } } }>(
        `${net.url}/v1/jobs/${r.id}`,
      );
      expect(job.body.status).toBe("completed");
      expect(job.body.receipt.receipt.node_id).toBe(b.agent.keys.publicKey);
    }

    const health = await getJson<Health>(`${net.url}/health`);
    expect(health.status).toBe(200);
    expect(health.body.status).toBe("degraded");
    // The node's own words (they may name its backend's address) are for operators, not /health.
    expect(health.body.reasons).toEqual([
      "node a is unavailable: its backend fails its health checks (BACKEND_UNAVAILABLE)",
    ]);
    const nodes = await getJson<{ data: { name: string; state: string; backend: { reason?: string } }[] }>(
      `${net.url}/v1/nodes`,
    );
    expect(nodes.body.data.find((n) => n.name === "a")).toMatchObject({
      state: "unavailable",
      backend: { reason: "scripted engine down: the engine was stopped" },
    });
    expect(nodes.body.data.find((n) => n.name === "b")).toMatchObject({ state: "available" });

    (a.backend as ScriptedBackend).down = null;
    await until(() => session(net!, "a")!.available === true);
    expect((await getJson<Health>(`${net.url}/health`)).body.status).toBe("ok");
    // Back in rotation: it takes jobs again.
    const before = (a.backend as ScriptedBackend).generated;
    await Promise.all(Array.from({ length: 12 }, (_, i) => client(net!).chat.completions.create(ask(`back ${i}`))));
    expect((a.backend as ScriptedBackend).generated).toBeGreaterThan(before);
  });

  it("a failed attempt does not go back to the node that failed it (it used to burn all attempts in ms)", async () => {
    /** Fails every job once told to, though its health check passes: only the job's history can tell. */
    class Flaky extends ScriptedBackend {
      failing = false;
      override generate(request: GenerateRequest) {
        if (this.failing) return Promise.reject(new HavnError("INTERNAL_ERROR", "The engine returned garbage."));
        return super.generate(request);
      }
    }
    const flaky = new Flaky({ slots: 8 });
    net = await startNetwork({
      coordinator: { maxAttempts: 2 },
      nodes: [
        { backend: flaky, name: "flaky" },
        // Slower: the router prefers the flaky node, which answers at once.
        { backend: "scripted", name: "good", slots: 8, tokenDelayMs: 10 },
      ],
    });
    await Promise.all(Array.from({ length: 16 }, (_, i) => client(net!).chat.completions.create(ask(`warm ${i}`))));
    flaky.failing = true;
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, i) => client(net!).chat.completions.create(ask(`no burning ${i}`))),
    );
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    for (const r of results) {
      const job = await getJson<{ status: string; attempts: number; receipt: { receipt: { node_id: string } } }>(
        `${net.url}/v1/jobs/${(r as PromiseFulfilledResult<{ id: string }>).value.id}`,
      );
      expect(job.body.status).toBe("completed");
      expect(job.body.receipt.receipt.node_id).toBe(net.nodes[1]!.agent.keys.publicKey);
    }
  });

  it("a job waiting for the one node it has not failed on does not hold up the jobs behind it", async () => {
    /** Fails only jobs whose prompt says so, and answers the rest at once. */
    class Picky extends ScriptedBackend {
      override generate(request: GenerateRequest) {
        const input = request.input;
        if (input.kind === "chat" && input.messages[0]!.content.includes("doomed"))
          return Promise.reject(new HavnError("INTERNAL_ERROR", "Not this one."));
        return super.generate(request);
      }
    }
    net = await startNetwork({
      nodes: [
        { backend: new Picky({ slots: 1 }), name: "picky" },
        { backend: "scripted", name: "slow", slots: 1, tokens: 30, tokenDelayMs: 100 },
      ],
    });
    const slow = () => net!.coordinator.registry.all().find((s) => s.name === "slow")!;
    // Three at once: picky's one slot takes one, so another lands on the slow node, busy ~3 s.
    const background = [0, 1, 2].map((i) =>
      client(net!).chat.completions.create({ ...ask(`occupy ${i}`), max_tokens: 30 }),
    );
    await until(() => slow().inFlight.size === 1);
    // Fails on picky, then waits for the slow node (it may not go back to picky)…
    const doomed = client(net).chat.completions.create(ask("doomed"));
    await until(async () => (await net!.coordinator.store.jobs.countByStatus()).queued === 1);
    // …while a job behind it takes picky's free slot at once, not when the slow node is done.
    const t0 = Date.now();
    await client(net).chat.completions.create(ask("behind it"));
    expect(Date.now() - t0).toBeLessThan(1_500);
    expect(slow().inFlight.size).toBe(1);
    await Promise.all([doomed, ...background]);
  });

  it("an engine that goes down is noticed at its first failed job, not at the next check", async () => {
    net = await startNetwork({
      nodes: [
        { backend: "scripted", name: "a", healthCheckMs: 60_000, slots: 4 },
        { backend: "scripted", name: "b", healthCheckMs: 60_000, slots: 4 },
      ],
    });
    (net.nodes[0]!.backend as ScriptedBackend).down = "crashed";
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) => client(net!).chat.completions.create(ask(`first failure ${i}`))),
    );
    expect(results).toHaveLength(16);
    await until(() => session(net!, "a")!.available === false, 2_000);
  });

  it("with its only node down, a job waits in the queue instead of failing, and runs when the backend returns", async () => {
    net = await startNetwork({ nodes: [{ backend: "scripted", name: "only", healthCheckMs: 100 }] });
    const backend = net.nodes[0]!.backend as ScriptedBackend;
    backend.down = "restarting";
    await until(() => session(net!, "only")!.available === false);
    const stream = await client(net).chat.completions.create({ ...ask("patience"), stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    const first = await iterator.next();
    const id = (first.value as { id: string }).id;
    await new Promise((r) => setTimeout(r, 300));
    expect((await getJson<{ status: string; attempts: number }>(`${net.url}/v1/jobs/${id}`)).body).toMatchObject({
      status: "queued",
      attempts: 0,
    });
    const health = await getJson<Health>(`${net.url}/health`);
    expect(health.body.status).toBe("degraded");
    expect(health.body.checks.queue.unserved_models).toEqual(["havn-tiny"]);
    expect(health.body.reasons.join(" ")).toMatch(/1 job queued for havn-tiny, which no available node serves/);
    expect((await getJson<{ data: unknown[] }>(`${net.url}/v1/models`)).body.data).toEqual([]);

    backend.down = null;
    let text = "";
    for (let r = await iterator.next(); !r.done; r = await iterator.next())
      text += (r.value as { choices: { delta?: { content?: string } }[] }).choices[0]?.delta?.content ?? "";
    expect(text.length).toBeGreaterThan(0);
    expect((await getJson<{ status: string }>(`${net.url}/v1/jobs/${id}`)).body.status).toBe("completed");
  });
});

describe("/health tells the truth", () => {
  it("ok with an available node; degraded with no node; failing (503) when the database does not answer", async () => {
    net = await startNetwork({ nodes: [{ backend: "scripted", name: "n" }] });
    const ok = await getJson<Health>(`${net.url}/health`);
    expect(ok).toMatchObject({ status: 200, body: { status: "ok", reasons: [] } });

    await net.nodes[0]!.agent.stop();
    await until(() => net!.coordinator.registry.size === 0);
    const none = await getJson<Health>(`${net.url}/health`);
    expect(none.status).toBe(200);
    expect(none.body.status).toBe("degraded");
    expect(none.body.reasons).toEqual(["no node is connected: new jobs wait in the queue until one connects"]);

    const store = net.coordinator.store;
    const ping = store.ping.bind(store);
    store.ping = () => Promise.reject(new Error("connection refused"));
    try {
      const failing = await getJson<Health & { jobs: unknown }>(`${net.url}/health`);
      expect(failing.status).toBe(503);
      expect(failing.body.status).toBe("failing");
      expect(failing.body.reasons[0]).toMatch(/database does not answer \(connection refused\)/);
      expect(failing.body.jobs).toBeNull();
      // Slow is not down: a busy database makes the coordinator degraded, not failing.
      store.ping = () => new Promise(() => {});
      const slow = await getJson<Health>(`${net.url}/health`);
      expect(slow.status).toBe(200);
      expect(slow.body.status).toBe("degraded");
      expect(slow.body.reasons).toContain("the sqlite database took over 2000 ms to answer");
    } finally {
      store.ping = ping;
    }
  });
});

describe("the API", () => {
  it("lists only models a node can serve now", async () => {
    net = await startNetwork({ nodes: [{ backend: "scripted", name: "n", model: "served-model" }] });
    const models = await getJson<{ data: { id: string; havn: { online_nodes: number } }[] }>(`${net.url}/v1/models`);
    // The bundled registry names other models; none of them has a node.
    expect(models.body.data.map((m) => m.id)).toEqual(["served-model"]);
    expect(models.body.data[0]!.havn.online_nodes).toBe(1);
  });

  it("answers missing log entries and outputs with their own codes, on /v1 and on the old paths", async () => {
    net = await startNetwork({ nodes: [{ backend: "scripted", name: "n" }] });
    for (const [path, code] of [
      ["/v1/log/9999", "LOG_ENTRY_NOT_FOUND"],
      ["/log/9999", "LOG_ENTRY_NOT_FOUND"],
      ["/v1/log/zero", "LOG_ENTRY_NOT_FOUND"],
      ["/v1/log/0", "LOG_ENTRY_NOT_FOUND"],
      ["/v1/outputs/bafkreinothere", "OUTPUT_NOT_FOUND"],
      ["/outputs/bafkreinothere", "OUTPUT_NOT_FOUND"],
      ["/v1/jobs/job-000000000000000000000000", "JOB_NOT_FOUND"],
      ["/v1/jobs/not-a-job", "JOB_NOT_FOUND"],
    ] as const) {
      const r = await getJson<{ error: { code: string } }>(`${net.url}${path}`);
      expect([path, r.status, r.body.error.code]).toEqual([path, 404, code]);
    }
    const r = await client(net).chat.completions.create(ask("paths"));
    const v1 = await getJson<{ id: string; output_cid: string }>(`${net.url}/v1/jobs/${r.id}`);
    const old = await getJson<{ id: string }>(`${net.url}/jobs/${r.id}`);
    expect(old.body).toEqual(v1.body);
    const output = await fetch(`${net.url}/v1/outputs/${v1.body.output_cid}`);
    expect(await output.text()).toBe(r.choices[0]!.message.content);
  });

  it("keeps the client's x-request-id with its job and echoes it; makes one up otherwise", async () => {
    net = await startNetwork({ nodes: [{ backend: "scripted", name: "n" }] });
    const post = (headers: Record<string, string>, stream = false) =>
      fetch(`${net!.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ ...ask("correlate"), stream }),
      });
    const plain = await post({ "x-request-id": "trace-0001" });
    expect(plain.headers.get("x-request-id")).toBe("trace-0001");
    const job = (await plain.json()) as { id: string };
    expect((await getJson<{ request_id: string }>(`${net.url}/v1/jobs/${job.id}`)).body.request_id).toBe("trace-0001");

    const streamed = await post({ "x-request-id": "trace-0002" }, true);
    expect(streamed.headers.get("x-request-id")).toBe("trace-0002");
    await streamed.text();

    // A header that is not a request id (spaces, newlines, too long) is not kept anywhere.
    const odd = await post({ "x-request-id": `bad id ${"x".repeat(200)}` });
    expect(odd.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const oddJob = (await odd.json()) as { id: string };
    expect((await getJson<{ request_id: null }>(`${net.url}/v1/jobs/${oddJob.id}`)).body.request_id).toBeNull();
    // Every answer carries one, errors included.
    const missing = await fetch(`${net.url}/v1/jobs/job-000000000000000000000000`);
    expect(missing.headers.get("x-request-id")).toBeTruthy();
  });
});

describe("logs", () => {
  it("one job's correlation id is in the coordinator's and the node's lines; no prompt or key is in any", async () => {
    const { logger, raw, lines } = memoryLogger();
    net = await startNetwork({ nodes: [{ backend: "scripted", name: "n" }], logger });
    const secretPrompt = "my-bank-password-is-hunter2";
    const apiKey = "sk-live-0123456789abcdef";
    const openai = new OpenAI({ baseURL: `${net.url}/v1`, apiKey, maxRetries: 0 });
    const r = await openai.chat.completions.create(
      { model: "havn-tiny", messages: [{ role: "user", content: secretPrompt }], max_tokens: 8 },
      { headers: { "x-request-id": "corr-42" } },
    );
    const s = await openai.chat.completions.create(
      { model: "havn-tiny", messages: [{ role: "user", content: secretPrompt }], max_tokens: 8, stream: true },
      { headers: { "x-request-id": "corr-43" } },
    );
    for await (const _ of s) void _;
    await until(() =>
      lines().some((l) => l.msg === "job completed" && l.name === "node" && l.request_id === "corr-43"),
    );

    const of = (job: string) => lines().filter((l) => l.job === job);
    const coordinator = of(r.id).filter((l) => l.name === "coordinator");
    const node = of(r.id).filter((l) => l.name === "node");
    expect(coordinator.map((l) => l.msg)).toEqual(
      expect.arrayContaining(["job admitted", "job placed", "job completed"]),
    );
    expect(node.map((l) => l.msg)).toEqual(expect.arrayContaining(["job received", "job completed"]));
    for (const line of [...coordinator, ...node]) expect(line.request_id).toBe("corr-42");
    const completed = coordinator.find((l) => l.msg === "job completed")!;
    expect(completed).toMatchObject({ model: "havn-tiny", node: "n", attempts: 1 });
    expect(typeof completed.duration_ms).toBe("number");

    const all = raw.join("\n");
    expect(all).not.toContain(secretPrompt);
    expect(all).not.toContain(apiKey);
    expect(all).not.toContain(r.choices[0]!.message.content!);
  });
});

/** Sums a counter's samples over every label set. */
function counter(text: string, name: string): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))) sum += Number(m[1]);
  return sum;
}

for (const kind of ["sqlite", "postgres"] as const) {
  describe(`/metrics after a load run, on ${kind}`, () => {
    it("counts admitted, completed, failed and cancelled jobs exactly as the database holds them", async () => {
      const options: NetworkOptions = {
        store: kind,
        pgAdminUrl: inject("pgAdminUrl"),
        coordinator: { maxAttempts: 2 },
        nodes: [
          { backend: "scripted", name: "ok-1", slots: 8 },
          { backend: "scripted", name: "ok-2", slots: 8 },
          { backend: "scripted", name: "broken", model: "broken-model", fault: "error", slots: 4 },
          { backend: "scripted", name: "slow", model: "slow-model", tokens: 50, tokenDelayMs: 50, slots: 4 },
        ],
      };
      net = await startNetwork(options);
      const openai = client(net);
      const completed = Array.from({ length: 60 }, (_, i) =>
        openai.chat.completions.create({ ...ask(`load ${i}`), stream: i % 3 === 0 }).then(async (r) => {
          if (Symbol.asyncIterator in r) for await (const _ of r) void _;
        }),
      );
      const failed = Array.from({ length: 8 }, (_, i) =>
        openai.chat.completions.create({ ...ask(`broken ${i}`), model: "broken-model" }).catch(() => "failed"),
      );
      const cancelled = Array.from({ length: 5 }, async (_, i) => {
        const stream = await openai.chat.completions.create({ ...ask(`slow ${i}`), model: "slow-model", stream: true });
        for await (const chunk of stream) {
          await fetch(`${net!.url}/v1/jobs/${chunk.id}/cancel`, { method: "POST" });
          break;
        }
      });
      await Promise.all([...completed, ...failed, ...cancelled]);
      await until(async () => {
        const counts = await net!.coordinator.store.jobs.countByStatus();
        return counts.queued + counts.leased + counts.running === 0;
      });
      const counts = await net.coordinator.store.jobs.countByStatus();
      const text = await (await fetch(`${net.url}/metrics`)).text();
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      expect({
        admitted: counter(text, "havn_jobs_admitted_total"),
        completed: counter(text, "havn_jobs_completed_total"),
        failed: counter(text, "havn_jobs_failed_total"),
        cancelled: counter(text, "havn_jobs_cancelled_total"),
      }).toEqual({ admitted: total, completed: counts.completed, failed: counts.failed, cancelled: counts.cancelled });
      expect(counts).toMatchObject({ completed: 60, failed: 8, cancelled: 5 });
      // Each broken job was retried once before it failed.
      expect(counter(text, "havn_jobs_retried_total")).toBe(8);
      expect(text).toMatch(/^havn_jobs_failed_total\{model="broken-model",reason="BACKEND_UNAVAILABLE"\} 8$/m);
      expect(text).toMatch(/^havn_nodes\{state="available",compute_class="S"\} 4$/m);
      expect(text).toMatch(/^havn_node_connections 4$/m);
      expect(text).toMatch(/# TYPE havn_queue_depth gauge/);
      expect(counter(text, "havn_job_duration_seconds_count")).toBe(73);
      expect(counter(text, "havn_time_to_first_token_seconds_count")).toBeGreaterThan(0);
      expect(counter(text, "havn_attempt_duration_seconds_count")).toBeGreaterThanOrEqual(76);
      expect(counter(text, "havn_admission_batch_size_count")).toBeGreaterThan(0);
      expect(text).toMatch(/^havn_store_operation_seconds_count\{operation="jobs.admit"\} \d+$/m);
      expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    });
  });
}
