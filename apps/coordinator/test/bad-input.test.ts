import { connect } from "node:net";
import fc from "fast-check";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCatalog, fatalNodeCloseCodes, nodeCloseCodes, protocolVersion } from "@havn/protocol";
import { startNetwork, type Network } from "@havn/testkit";

let net: Network;
beforeAll(async () => {
  net = await startNetwork({
    nodes: [{ backend: "scripted", name: "ok" }],
    coordinator: { maxPromptChars: 10_000, bodyLimitBytes: 64 * 1024 },
  });
});
afterAll(() => net?.close());

async function post(path: string, body: string, contentType = "application/json") {
  const r = await net.coordinator.app.inject({
    method: "POST",
    url: path,
    payload: body,
    headers: { "content-type": contentType },
  });
  return { status: r.statusCode, body: r.json() as { error: { code: string; message: string; retryable: boolean } } };
}

const valid = { model: "havn-tiny", messages: [{ role: "user", content: "hi" }] };

describe("bad input gets a 4xx with a catalog code", () => {
  const cases: [string, string, number, string][] = [
    ["malformed JSON", "{bad", 400, "REQUEST_MALFORMED_JSON"],
    ["an empty body", "", 400, "REQUEST_INVALID"],
    ["unknown model", JSON.stringify({ ...valid, model: "gpt-9" }), 404, "MODEL_NOT_FOUND"],
    ["messages of the wrong type", JSON.stringify({ ...valid, messages: "hi" }), 400, "REQUEST_INVALID"],
    ["no messages", JSON.stringify({ ...valid, messages: [] }), 400, "REQUEST_INVALID"],
    [
      "an unknown role",
      JSON.stringify({ ...valid, messages: [{ role: "wizard", content: "x" }] }),
      400,
      "REQUEST_INVALID",
    ],
    ["temperature out of range", JSON.stringify({ ...valid, temperature: 7 }), 400, "REQUEST_INVALID"],
    ["max_tokens as a string", JSON.stringify({ ...valid, max_tokens: "10" }), 400, "REQUEST_INVALID"],
    ["n > 1", JSON.stringify({ ...valid, n: 2 }), 400, "REQUEST_INVALID"],
    [
      "an oversized prompt",
      JSON.stringify({ ...valid, messages: [{ role: "user", content: "x".repeat(20_000) }] }),
      400,
      "REQUEST_PROMPT_TOO_LONG",
    ],
    [
      "a body over the limit",
      JSON.stringify({ ...valid, messages: [{ role: "user", content: "x".repeat(100_000) }] }),
      413,
      "REQUEST_TOO_LARGE",
    ],
    ["a JSON array", "[]", 400, "REQUEST_INVALID"],
    ["JSON null", "null", 400, "REQUEST_INVALID"],
    ["a prototype-poisoning body", '{"__proto__": {"x": 1}, "model": "havn-tiny"}', 400, "REQUEST_MALFORMED_JSON"],
  ];
  it.each(cases)("%s", async (_name, body, status, code) => {
    const r = await post("/v1/chat/completions", body);
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(code);
    expect(errorCatalog[code as keyof typeof errorCatalog].status).toBe(status);
  });

  it("a non-JSON content type gets 415", async () => {
    const r = await post("/v1/chat/completions", "hello", "text/plain");
    expect(r).toMatchObject({ status: 415, body: { error: { code: "REQUEST_UNSUPPORTED_MEDIA_TYPE" } } });
  });

  it("unknown routes and jobs get 404 with a code", async () => {
    expect((await net.coordinator.app.inject({ url: "/nope" })).json()).toMatchObject({
      error: { code: "REQUEST_ROUTE_NOT_FOUND" },
    });
    expect((await net.coordinator.app.inject({ url: "/jobs/job-000000000000000000000000" })).statusCode).toBe(404);
    expect((await net.coordinator.app.inject({ url: "/jobs/../../etc/passwd" })).statusCode).toBe(404);
  });

  it("an over-long path parameter gets 400, and only a decimal log position names an entry", async () => {
    const long = await net.coordinator.app.inject({ url: `/v1/jobs/${"a".repeat(200)}` });
    expect([long.statusCode, long.json().error.code]).toEqual([400, "REQUEST_INVALID"]);
    for (const seq of ["0x1", "01", "1e3", "-1", "0", " 1", "99999999999999999"]) {
      const r = await net.coordinator.app.inject({ url: `/v1/log/${encodeURIComponent(seq)}` });
      // Not a position: no entry there (not entry 1 read as hex or octal).
      expect([seq, r.statusCode, r.json().error.code]).toEqual([seq, 404, "LOG_ENTRY_NOT_FOUND"]);
    }
    expect((await post("/v1/chat/completions", JSON.stringify(valid))).status).toBe(200);
    expect((await net.coordinator.app.inject({ url: "/v1/log/1" })).statusCode).toBe(200);
  });

  it("a request Node's HTTP parser refuses gets the catalog body, not Fastify's", async () => {
    const { hostname, port } = new URL(net.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () =>
        socket.write("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n"),
      );
      let text = "";
      socket.on("data", (c) => (text += c.toString()));
      socket.on("close", () => resolve(text));
      socket.on("error", reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as { error: { code: string } };
    expect(body.error.code).toBe("REQUEST_INVALID");
  });

  it("a GET with Content-Type: application/json and no body is accepted (HavnAI clients send it)", async () => {
    const r = await net.coordinator.app.inject({ url: "/health", headers: { "content-type": "application/json" } });
    expect(r.statusCode).toBe(200);
  });
});

/** Arbitrary JSON values, biased towards the shapes the API expects so deep fields get exercised. */
const jsonValue = fc.jsonValue({ maxDepth: 4 });
const message = fc.record(
  {
    role: fc.oneof(fc.constantFrom("user", "system", "assistant", "developer"), fc.string()),
    content: fc.oneof(fc.string(), jsonValue),
  },
  { requiredKeys: [] },
);
const nearlyValidChat = fc.record(
  {
    model: fc.oneof(fc.constant("havn-tiny"), fc.constant("auto"), fc.string(), jsonValue),
    messages: fc.oneof(fc.array(message, { maxLength: 3 }), jsonValue),
    max_tokens: fc.oneof(fc.integer({ min: -5, max: 100_000 }), jsonValue),
    temperature: fc.oneof(fc.double(), jsonValue),
    top_p: fc.oneof(fc.double(), jsonValue),
    seed: fc.oneof(fc.integer(), fc.double(), jsonValue),
    stop: jsonValue,
    n: jsonValue,
    stream: fc.oneof(fc.boolean(), jsonValue),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  fc.string().map((s) => ({ text: s, type: "application/json" })),
  jsonValue.map((v) => ({ text: JSON.stringify(v), type: "application/json" })),
  nearlyValidChat.map((v) => ({ text: JSON.stringify(v), type: "application/json" })),
  fc.string().map((s) => ({ text: s, type: "text/plain" })),
);

describe("property: randomized malformed input never gets a 5xx or crashes the coordinator", () => {
  it("1,200 random requests across the HTTP surfaces", async () => {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(
        body,
        fc.constantFrom("/v1/chat/completions", "/v1/completions", "/jobs/x/cancel"),
        async (b, url) => {
          sent++;
          // Valid requests would wait for a node; a short timeout keeps those cheap (a 504 is not the point here).
          const r = await net.coordinator.app.inject({
            method: "POST",
            url,
            payload: b.text,
            headers: { "content-type": b.type },
          });
          if (r.statusCode === 200 || r.statusCode === 504) return;
          expect(r.statusCode, `${url} ${b.text.slice(0, 200)} → ${r.body.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
          expect(r.statusCode).toBeLessThan(500);
          expect((r.json() as { error: { code: string } }).error.code in errorCatalog).toBe(true);
        },
      ),
      { numRuns: 1_200 },
    );
    expect(sent).toBe(1_200);
    expect((await net.coordinator.app.inject({ url: "/health" })).statusCode).toBe(200);
  });

  it("1,200 random WebSocket frames on the node gateway", async () => {
    const frames = fc.oneof(
      fc.string(),
      jsonValue.map((v) => JSON.stringify(v)),
      fc
        .record(
          {
            // Another version number is refused at once, for good (tested below): not fuzzed here.
            v: fc.oneof(
              fc.constant(protocolVersion),
              jsonValue.filter((x) => typeof x !== "number"),
            ),
            type: fc.constantFrom("hello", "heartbeat", "token", "result", "progress", "error", "job", "nope"),
            job_id: fc.oneof(fc.string(), jsonValue),
            attempt_id: fc.oneof(fc.string(), jsonValue),
            text: fc.oneof(fc.string(), jsonValue),
            payload: jsonValue,
            signature: fc.string(),
            in_flight: fc.oneof(fc.array(fc.string()), jsonValue),
          },
          { requiredKeys: ["type"] },
        )
        .map((v) => JSON.stringify(v)),
      fc.uint8Array({ maxLength: 64 }),
    );
    const samples = fc.sample(frames, { numRuns: 1_200, seed: 7 });
    let answered = 0;
    let unanswered = 0;
    // Batches below the violation limit, one connection each: every frame must get an answer.
    const batch = 15;
    for (let i = 0; i < samples.length; i += batch) {
      const frames = samples.slice(i, i + batch);
      const socket = new WebSocket(`${net.url.replace("http", "ws")}/nodes/connect`);
      let replies = 0;
      const done = new Promise<void>((resolve) => {
        socket.on("message", () => {
          replies++; // the challenge, then one error per frame
          if (replies === frames.length + 1) resolve();
        });
        socket.once("close", () => resolve());
        setTimeout(resolve, 5_000);
      });
      await new Promise<void>((resolve, reject) => {
        socket.once("open", () => resolve());
        socket.once("error", reject);
      });
      for (const frame of frames) socket.send(frame);
      await done;
      answered += replies - 1;
      unanswered += frames.length - (replies - 1);
      socket.terminate();
    }
    expect(unanswered).toBe(0);
    expect(answered).toBe(samples.length);

    // A node of the previous protocol version (receipts version 1) is told to upgrade and closed
    // with a code that stops it reconnecting.
    const old = new WebSocket(`${net.url.replace("http", "ws")}/nodes/connect`);
    const said: { type: string; code?: string }[] = [];
    old.on("message", (data) => said.push(JSON.parse(data.toString()) as { type: string; code?: string }));
    await new Promise<void>((resolve) => old.once("open", () => resolve()));
    old.send(JSON.stringify({ v: 1, type: "hello", payload: {}, signature: "x" }));
    const code = await new Promise<number>((resolve) => old.once("close", (c) => resolve(c)));
    expect(code).toBe(nodeCloseCodes.protocolVersion);
    expect(fatalNodeCloseCodes.has(code)).toBe(true);
    expect(said.at(-1)).toMatchObject({ type: "error", code: "NODE_PROTOCOL_VERSION" });
    // Still serving: a real job completes on the healthy node.
    const r = await net.coordinator.app.inject({
      method: "POST",
      url: "/v1/chat/completions",
      payload: valid,
    });
    expect(r.statusCode).toBe(200);
  });
});
