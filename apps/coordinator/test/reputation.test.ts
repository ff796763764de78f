import { afterEach, describe, expect, it } from "vitest";
import { HavnError } from "@havn/protocol";
import { HavnClient } from "@havn/sdk";
import { ScriptedBackend, startNetwork, type Network } from "@havn/testkit";
import type { GenerateRequest, GenerateResult } from "@havn/engine";

let net: Network | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

/** An honest node whose context is too small for the prompt: it says so, as the client's fault. */
class SmallContext extends ScriptedBackend {
  override async generate(_request: GenerateRequest): Promise<GenerateResult> {
    throw new HavnError("REQUEST_PROMPT_TOO_LONG", "The prompt does not fit the model's context window.");
  }
}

describe("reputation", () => {
  it("a refusal the request caused costs an honest node nothing; scores never pass 100", async () => {
    const n = (net = await startNetwork({
      nodes: [
        { backend: new SmallContext({ model: "havn-tiny" }), name: "a" },
        { backend: new SmallContext({ model: "havn-tiny" }), name: "b" },
      ],
      coordinator: { ledger: { enabled: false } },
    }));
    const client = new HavnClient({ baseUrl: n.url });
    for (let i = 0; i < 6; i++)
      await expect(client.chat(`a very long prompt ${i}`, { maxTokens: 4 })).rejects.toMatchObject({
        code: "REQUEST_PROMPT_TOO_LONG",
      });
    // Both nodes said the same: nobody lied, nobody pays, and both are still routed.
    const board = await client.reputation();
    expect(board.data.map((x) => [x.name, x.score, x.routed])).toEqual([
      ["a", 50, true],
      ["b", 50, true],
    ]);
    // An honest record tops out at the ceiling.
    await n.addNode({ backend: "scripted", name: "c", tokens: 2 });
    await n.nodes[0]!.agent.stop();
    await n.nodes[1]!.agent.stop();
    for (let i = 0; i < 8; i++) await client.chat(`short ${i}`, { maxTokens: 2 });
    const c = (await client.reputation()).data.find((x) => x.name === "c")!;
    expect(c.score).toBe(100);
  });
});
