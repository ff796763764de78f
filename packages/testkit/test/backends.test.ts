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
      const start = performance.now();
      const offsets: number[] = [];
      const result = await jittery.generate({
        ...request,
        params: { ...request.params, seed: 3 + i },
        onText: () => offsets.push(performance.now() - start),
      });
      expect(result.text).toBe(
        (await steady.generate({ ...request, params: { ...request.params, seed: 3 + i } })).text,
      );
      // Each delay is 2–18 ms, on a schedule fixed at arrival: token k never comes before 2k ms
      // (a late timer shortens the next gap, never the schedule). Timers may round down by 1 ms.
      offsets.forEach((offset, k) => expect(offset).toBeGreaterThanOrEqual(2 * (k + 1) - 1));
      gaps.push(...offsets.map((offset, k) => offset - (offsets[k - 1] ?? 0)));
    }
    expect(gaps).toHaveLength(12);
    // Delays fall anywhere in 2–18 ms: twelve of them do not all land within 4 ms of each other.
    expect(Math.max(...gaps) - Math.min(...gaps)).toBeGreaterThan(4);
  });
});
