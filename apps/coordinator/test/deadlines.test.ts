import { afterEach, describe, expect, it } from "vitest";
import { startNetwork, type Network } from "@havn/testkit";
import { compileConfig } from "../src/config.ts";
import { Deadlines } from "../src/nodes/deadlines.ts";
import type { InFlightAttempt } from "../src/nodes/node-registry.ts";

let net: Network | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

const attempt = (dispatchedAt: number, startedAt?: number, maxTokens = 100): InFlightAttempt => ({
  spec: {
    job_id: "job-1",
    attempt_id: "att-1",
    workflow_id: null,
    workflow_version: null,
    model: "m",
    input: { kind: "completion", prompt: "x" },
    params: { max_tokens: maxTokens, temperature: 0, top_p: 1, seed: 1, stop: [] },
    stream: false,
    input_hash: "0".repeat(64),
    input_salt: "0".repeat(64),
  },
  dispatchedAt,
  admittedAt: dispatchedAt,
  running: startedAt !== undefined,
  ...(startedAt !== undefined && { startedAt }),
});

describe("deadlines that fit the work", () => {
  it("holds a first token to the model's observed times once it has seen 20, and the pace to its per-token times", () => {
    const d = new Deadlines(
      compileConfig({ deadlines: { firstTokenDefaultMs: 60_000, firstTokenFloorMs: 1_000, perTokenFloorMs: 5 } }),
    );
    // Unmeasured: the default first-token deadline; the floor per token.
    expect(d.firstTokenMs("m")).toBe(60_000);
    expect(d.overdue(attempt(0), 59_000)).toBe(false);
    // (a second more: a job not streamed says it started a second after its first token)
    expect(d.overdue(attempt(0), 60_900)).toBe(false);
    expect(d.overdue(attempt(0), 61_100)).toBe(true);
    // 20 results: first token after 500 ms, then 20 ms a token. Deadlines: 4 × p95.
    for (let i = 0; i < 20; i++) d.observe("m", attempt(0, 500), 500 + 20 * 10, 10);
    expect(d.firstTokenMs("m")).toBe(2_000);
    expect(d.perTokenMs("m")).toBe(80);
    expect(d.overdue(attempt(0), 2_900)).toBe(false);
    expect(d.overdue(attempt(0), 3_100)).toBe(true);
    // Started: 100 tokens at 80 ms each from the first token.
    expect(d.overdue(attempt(0, 500, 100), 500 + 7_900)).toBe(false);
    expect(d.overdue(attempt(0, 500, 100), 500 + 8_100)).toBe(true);
    // Another model is still unmeasured; the floor holds for a very fast one.
    expect(d.firstTokenMs("other")).toBe(60_000);
    for (let i = 0; i < 20; i++) d.observe("fast", attempt(0, 1), 2, 10);
    expect(d.firstTokenMs("fast")).toBe(1_000);
    expect(d.perTokenMs("fast")).toBe(5);
  });

  it("caps the slots a node advertises: a node cannot hoard jobs", async () => {
    net = await startNetwork({
      nodes: [{ backend: "scripted", name: "greedy", slots: 500 }],
      coordinator: { maxNodeSlots: 8 },
    });
    expect(net.coordinator.registry.all()[0]!.slots).toBe(8);
  });
});
