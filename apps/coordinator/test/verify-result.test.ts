import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  contentId,
  generateKeyPair,
  hashCanonical,
  inputCommitment,
  signMessage,
  signReceipt,
  verifyMessage,
  type JobOutput,
  type JobSpec,
  tokenIdsHash,
  type Receipt,
  type ReceiptV2,
} from "@havn/protocol";
import { createSignaturePool, inlineSignatures, type SignaturePool } from "../src/verification/signature-pool.ts";
import { verifyResult } from "../src/verification/verify-result.ts";

const node = generateKeyPair();
const spec: JobSpec = {
  job_id: "job-aaaaaaaaaaaaaaaaaaaaaaaa",
  attempt_id: "att-1",
  workflow_id: "wf-0123456789abcdef01234567",
  workflow_version: "1.0.0",
  model: "havn-tiny",
  input: { kind: "completion", prompt: "hi" },
  params: { max_tokens: 16, temperature: 0, top_p: 1, seed: 1, stop: [] },
  stream: false,
  input_hash: hashCanonical({ kind: "completion", prompt: "hi" }),
  input_salt: "5".repeat(64),
};
const output: JobOutput = {
  text: "hello there",
  finish_reason: "stop",
  usage: { prompt_tokens: 2, completion_tokens: 3 },
};
const now = 1_800_000_000_000;
const honest: ReceiptV2 = {
  v: 2,
  job_id: spec.job_id,
  attempt_id: spec.attempt_id,
  signer: { kind: "node", key: node.publicKey },
  node_id: node.publicKey,
  workflow: { id: "wf-0123456789abcdef01234567", version: "1.0.0" },
  model: "havn-tiny",
  model_hash: "a".repeat(64),
  model_source: { kind: "generated", ref: "havn-tiny" },
  backend: "builtin",
  runtime_hash: "b".repeat(64),
  sampling: spec.params,
  input_commitment: inputCommitment(spec.input, spec.input_salt),
  outputs_cid: contentId(output.text),
  output_token_ids_hash: tokenIdsHash([1, 2, 3]),
  finish_reason: "stop",
  tokens: { prompt: 2, completion: 3 },
  latency_ms: 40,
  energy_estimate: 0.5,
  finished_at: now - 10,
};
const ctx = { spec, nodeKey: node.publicKey, advertisedModelHash: "a".repeat(64), observedMs: 50, now };
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
  it.each<[string, Partial<ReceiptV2>]>([
    ["another job", { job_id: "job-bbbbbbbbbbbbbbbbbbbbbbbb" }],
    ["a stale attempt", { attempt_id: "att-0" }],
    ["another model", { model: "llama-70b" }],
    ["a model other than the one advertised", { model_hash: "c".repeat(64) }],
    ["other sampling parameters", { sampling: { ...spec.params, temperature: 0.7 } }],
    ["another seed", { sampling: { ...spec.params, seed: 2 } }],
    ["another input", { input_commitment: inputCommitment({ kind: "completion", prompt: "ho" }, spec.input_salt) }],
    ["the input without its salt", { input_commitment: hashCanonical(spec.input) }],
    ["another workflow version", { workflow: { id: "wf-0123456789abcdef01234567", version: "1.0.1" } }],
    ["no workflow", { workflow: null }],
    ["a finish reason the output does not give", { finish_reason: "length" }],
    ["a clock far from the coordinator's", { finished_at: now - 3_600_000 }],
    ["a receipt the coordinator would have to sign", { signer: { kind: "coordinator", key_id: "0123456789abcdef" } }],
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
    const other = generateKeyPair();
    expect(
      (await check({ ...honest, signer: { kind: "node", key: other.publicKey } }, output, other.secretKey))?.code,
    ).toBe("RECEIPT_INVALID");
    expect((await check({ ...honest, node_id: other.publicKey }))?.code).toBe("RECEIPT_INVALID");
  });
  it("rejects a version 1 receipt from a node: new attempts are signed as version 2", async () => {
    const v1: Receipt = {
      v: 1,
      job_id: spec.job_id,
      attempt_id: spec.attempt_id,
      workflow_id: spec.workflow_id,
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
      finished_at: now,
    };
    expect((await check(v1))?.code).toBe("RECEIPT_INVALID");
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
