import { chmodSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { loadOrCreateKeyFile } from "@havn/protocol/local";
import { OpenAIBackend } from "@havn/engine";
import { generateKeyPair, helloPayloadSchema } from "@havn/protocol";
import { ScriptedBackend } from "@havn/testkit";
import { computeClassOf, NodeAgent, parseNvidiaSmi } from "../src/index.ts";

describe("hardware", () => {
  it("parses nvidia-smi's CSV, names with commas included", () => {
    expect(parseNvidiaSmi("NVIDIA H100 80GB HBM3, 81559\nNVIDIA GeForce RTX 4090, 24564\n")).toEqual([
      { name: "NVIDIA H100 80GB HBM3", memory_mb: 81559 },
      { name: "NVIDIA GeForce RTX 4090", memory_mb: 24564 },
    ]);
    expect(parseNvidiaSmi("")).toEqual([]);
  });
  it("maps hardware to the compute classes of the runtime mandate", () => {
    expect(computeClassOf([])).toBe("S");
    expect(computeClassOf([{ name: "A4000", memory_mb: 16_376 }])).toBe("M");
    expect(computeClassOf([{ name: "A10", memory_mb: 24_576 }])).toBe("M");
    expect(computeClassOf([{ name: "A100", memory_mb: 40_960 }])).toBe("L");
    expect(
      computeClassOf([
        { name: "H100", memory_mb: 81_559 },
        { name: "H100", memory_mb: 81_559 },
      ]),
    ).toBe("XL");
  });
});

/** A fresh directory, removed when the test ends. */
function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "havn-key-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe("node key file", () => {
  it("is created with mode 0600 and read back as the same key", () => {
    const path = join(scratchDir(), "sub", "node.key");
    const first = loadOrCreateKeyFile(path);
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const again = loadOrCreateKeyFile(path);
    expect(again).toMatchObject({ created: false, publicKey: first.publicKey, secretKey: first.secretKey });
  });
  it("is refused when other users can read it", () => {
    const path = join(scratchDir(), "node.key");
    loadOrCreateKeyFile(path);
    chmodSync(path, 0o644);
    expect(() => loadOrCreateKeyFile(path)).toThrow(/readable by other users/);
  });
});

describe("a node's name", () => {
  it("has no ~ (a name moved to another key leaves name~key behind) and no control characters", () => {
    const make = (name: string) => () =>
      new NodeAgent({
        coordinatorUrl: "http://127.0.0.1:9",
        backend: new ScriptedBackend(),
        keys: generateKeyPair(),
        name,
      });
    for (const bad of ["gpu~abc", "two\nlines", "", "x".repeat(65)])
      expect(make(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: "CONFIG_INVALID" }));
    expect(make("gpu-box 1")).not.toThrow();
    // The coordinator refuses such a hello too, whatever agent sent it.
    expect(helloPayloadSchema.shape.name.safeParse("gpu~abc").success).toBe(false);
  });
});

describe("the agent's ready promise", () => {
  const hardware = { cpu: { model: "x", cores: 1 }, memory_mb: 1, gpus: [], compute_class: "S" as const };

  it("rejects when the agent is stopped before any coordinator welcomed it (nobody waits forever)", async () => {
    const agent = new NodeAgent({
      coordinatorUrl: "http://127.0.0.1:9",
      backend: new ScriptedBackend(),
      keys: generateKeyPair(),
      hardware,
      reconnectMs: 20,
    });
    await agent.start();
    await agent.stop();
    await expect(agent.ready).rejects.toMatchObject({ code: "COORDINATOR_UNREACHABLE" });
  });

  it("rejects when the backend cannot start", async () => {
    const agent = new NodeAgent({
      coordinatorUrl: "http://127.0.0.1:9",
      backend: new OpenAIBackend({ baseUrl: "http://127.0.0.1:9/v1" }),
      keys: generateKeyPair(),
      hardware,
    });
    await expect(agent.start()).rejects.toMatchObject({ code: "BACKEND_UNAVAILABLE" });
    await expect(agent.ready).rejects.toMatchObject({ code: "BACKEND_UNAVAILABLE" });
  });
});
