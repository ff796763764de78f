import { describe, expect, it } from "vitest";
import { ScriptedBackend } from "../src/index.ts";

const request = {
  model: "havn-tiny",
  input: { kind: "chat" as const, messages: [{ role: "user" as const, content: "jitter" }] },
  params: { max_tokens: 4, temperature: 0, top_p: 1, seed: 3, stop: [] },
};

describe("ScriptedBackend", () => {
  it("paces tokens with jitter: the timing varies with the request, the text does not", async () => {
    const steady = new ScriptedBackend({ tokens: 4 });
    const jittery = new ScriptedBackend({ tokens: 4, tokenDelayMs: 10, tokenDelayJitterMs: 8 });
    const gaps: number[] = [];
    for (let i = 0; i < 3; i++) {
      let last = performance.now();
      const result = await jittery.generate({
        ...request,
        params: { ...request.params, seed: 3 + i },
        onText: () => {
          const now = performance.now();
          gaps.push(now - last);
          last = now;
        },
      });
      expect(result.text).toBe(
        (await steady.generate({ ...request, params: { ...request.params, seed: 3 + i } })).text,
      );
    }
    expect(gaps).toHaveLength(12);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(1);
    // Delays fall anywhere in 2–18 ms: twelve of them do not all land within 4 ms of each other.
    expect(Math.max(...gaps) - Math.min(...gaps)).toBeGreaterThan(4);
  });
});
