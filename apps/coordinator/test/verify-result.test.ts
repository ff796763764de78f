import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  contentId,
  generateKeyPair,
  hashCanonical,
  signMessage,
  signReceipt,
  verifyMessage,
  type JobOutput,
  type JobSpec,
  type Receipt,
} from "@havn/protocol";
import { createSignaturePool, inlineSignatures, type SignaturePool } from "../src/verification/signature-pool.ts";
import { verifyResult } from "../src/verification/verify-result.ts";

const node = generateKeyPair();
const spec: JobSpec = {
  job_id: "job-aaaaaaaaaaaaaaaaaaaaaaaa",
  attempt_id: "att-1",
  workflow_id: null,
  model: "havn-tiny",
  input: { kind: "completion", prompt: "hi" },
  params: { max_tokens: 16, temperature: 0, top_p: 1, seed: 1, stop: [] },
  stream: false,
  input_hash: hashCanonical({ kind: "completion", prompt: "hi" }),
};
const output: JobOutput = {
  text: "hello there",
  finish_reason: "stop",
  usage: { prompt_tokens: 2, completion_tokens: 3 },
};
const honest: Receipt = {
  v: 1,
  job_id: spec.job_id,
  attempt_id: spec.attempt_id,
  workflow_id: null,
  node_key: node.publicKey,
  model: "havn-tiny",
  model_hash: "a".repeat(64),
  backend: "builtin",
  params_hash: hashCanonical(spec.params),
  input_hash: spec.input_hash,
  outputs_cid: contentId(output.text),
  latency_ms: 40,
  tokens: { prompt: 2, completion: 3 },
  energy_estimate: 0.5,
  runtime_hash: "b".repeat(64),
  finished_at: 1,
};
const ctx = { spec, nodeKey: node.publicKey, advertisedModelHash: "a".repeat(64), observedMs: 50 };
const verifiers = { inline: inlineSignatures, "a worker thread": createSignaturePool(1) };
let verifier: SignaturePool = inlineSignatures;
const check = (receipt: Receipt, out: JobOutput = output, signer = node.secretKey) =>
  verifyResult({ output: out, receipt, node_signature: signReceipt(receipt, signer) }, ctx, verifier);
afterAll(() => verifiers["a worker thread"].close());

describe.each(Object.entries(verifiers))("verifying a node's result (signatures checked %s)", (_name, v) => {
  beforeAll(() => {
    verifier = v;
  });
  it("accepts an honest receipt", async () => {
    expect(await check(honest)).toBeNull();
  });
  it.each<[string, Partial<Receipt>]>([
    ["another job", { job_id: "job-bbbbbbbbbbbbbbbbbbbbbbbb" }],
    ["a stale attempt", { attempt_id: "att-0" }],
    ["another model", { model: "llama-70b" }],
    ["a model other than the one advertised", { model_hash: "c".repeat(64) }],
    ["other parameters", { params_hash: "d".repeat(64) }],
    ["another input", { input_hash: "e".repeat(64) }],
    ["an output that is not the one sent", { outputs_cid: contentId("something else") }],
    ["a runtime longer than the coordinator saw (HavnAI paid 225x for a claimed hour)", { latency_ms: 3_600_000 }],
    ["token counts that disagree with the output", { tokens: { prompt: 2, completion: 300 } }],
  ])("rejects %s", async (_name, change) => {
    expect((await check({ ...honest, ...change }))?.code).toBe("RECEIPT_INVALID");
  });
  it("rejects a signature by another key", async () => {
    expect((await check(honest, output, generateKeyPair().secretKey))?.code).toBe("RECEIPT_SIGNATURE_INVALID");
  });
  it("rejects a receipt claiming another node's key", async () => {
    expect((await check({ ...honest, node_key: generateKeyPair().publicKey }))?.code).toBe("RECEIPT_INVALID");
  });
  it("verifies many signatures at once, each on its own merits", async () => {
    const good = { ...honest, attempt_id: spec.attempt_id };
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        check(good, output, i % 5 === 0 ? generateKeyPair().secretKey : node.secretKey),
      ),
    );
    expect(results.filter((r) => r?.code === "RECEIPT_SIGNATURE_INVALID")).toHaveLength(10);
    expect(results.filter((r) => r === null)).toHaveLength(40);
  });
});

describe("the signature pool", () => {
  const pool = createSignaturePool(2);
  afterAll(() => pool.close());

  it("signs on its workers exactly as the event loop would, a large batch shared between them", async () => {
    const messages = Array.from({ length: 20 }, (_, i) =>
      new TextEncoder().encode(`havn/receipt-cosign/v1\n{"n":${i}}`),
    );
    const signatures = await Promise.all(messages.map((message) => pool.sign({ message, secretKey: node.secretKey })));
    signatures.forEach((signature, i) => {
      expect(signature).toBe(signMessage(node.secretKey, messages[i]!));
      expect(verifyMessage(node.publicKey, messages[i]!, signature)).toBe(true);
    });
    const checks = await Promise.all(
      messages.map((message, i) =>
        pool.verify({ publicKey: node.publicKey, message, signature: signatures[(i + 1) % 20]! }),
      ),
    );
    expect(checks.every((ok) => !ok)).toBe(true);
  });

  it("rejects a signing request with an unusable key instead of leaving it waiting", async () => {
    await expect(pool.sign({ message: new Uint8Array([1, 2, 3]), secretKey: "not-a-key" })).rejects.toThrow();
  });

  it("outlives its workers: a dead worker's batch and every later one are done inline", async () => {
    const dying = createSignaturePool(2, new URL("./fixtures/dying-signature-worker.mjs", import.meta.url));
    try {
      const messages = Array.from({ length: 8 }, (_, i) => new TextEncoder().encode(`message ${i}`));
      // Twice: the first batches kill both workers; the second finds none left.
      for (let round = 0; round < 2; round++) {
        const signatures = await Promise.all(
          messages.map((message) => dying.sign({ message, secretKey: node.secretKey })),
        );
        signatures.forEach((signature, i) => expect(signature).toBe(signMessage(node.secretKey, messages[i]!)));
        const checks = await Promise.all(
          messages.map((message, i) => dying.verify({ publicKey: node.publicKey, message, signature: signatures[i]! })),
        );
        expect(checks.every(Boolean)).toBe(true);
      }
    } finally {
      await dying.close();
    }
  });
});
