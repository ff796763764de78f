import { afterAll, describe, expect, it } from "vitest";
import { BuiltinBackend } from "@havn/engine";
import {
  contentId,
  hashCanonical,
  inputCommitment,
  tokenIdsHash,
  type JobSpec,
  type Receipt,
  type ReceiptV2,
} from "@havn/protocol";
import { checkByReexecution } from "../src/index.ts";

const backend = new BuiltinBackend();
afterAll(() => backend.close());

const input = { kind: "chat" as const, messages: [{ role: "user" as const, content: "validate me" }] };
const spec: JobSpec = {
  job_id: "job-cccccccccccccccccccccccc",
  attempt_id: "att-1",
  workflow_id: null,
  workflow_version: null,
  model: "havn-tiny",
  input,
  params: { max_tokens: 24, temperature: 0.8, top_p: 1, seed: 77, stop: [] },
  stream: false,
  input_hash: hashCanonical(input),
  input_salt: "7".repeat(64),
};
const receiptFor = (text: string): Receipt => ({
  v: 1,
  job_id: spec.job_id,
  attempt_id: spec.attempt_id,
  workflow_id: null,
  node_key: "A".repeat(43),
  model: "havn-tiny",
  model_hash: "a".repeat(64),
  backend: "builtin",
  params_hash: hashCanonical(spec.params),
  input_hash: spec.input_hash,
  outputs_cid: contentId(text),
  latency_ms: 1,
  tokens: { prompt: 1, completion: 1 },
  energy_estimate: 0,
  runtime_hash: "b".repeat(64),
  finished_at: 1,
});

const v2For = (text: string, tokenIds: readonly number[] | null): ReceiptV2 => ({
  v: 2,
  job_id: spec.job_id,
  attempt_id: spec.attempt_id,
  signer: { kind: "node", key: "A".repeat(43) },
  node_id: "A".repeat(43),
  workflow: null,
  model: "havn-tiny",
  model_hash: "a".repeat(64),
  model_source: { kind: "generated", ref: "havn-tiny" },
  backend: "builtin",
  runtime_hash: "b".repeat(64),
  sampling: spec.params,
  input_commitment: inputCommitment(spec.input, spec.input_salt),
  outputs_cid: contentId(text),
  output_token_ids_hash: tokenIds === null ? null : tokenIdsHash(tokenIds),
  finish_reason: "length",
  tokens: { prompt: 1, completion: 1 },
  latency_ms: 1,
  energy_estimate: 0,
  finished_at: 1,
});

describe("validation by re-execution", () => {
  it("checks a version 2 receipt's salted input, sampling and output token ids", async () => {
    const honest = await backend.generate({ model: "havn-tiny", input, params: spec.params });
    expect(honest.tokenIds?.length).toBe(honest.completionTokens);
    expect(await checkByReexecution(backend, spec, v2For(honest.text, honest.tokenIds!))).toMatchObject({
      match: true,
    });
    // The same text claimed from other token ids (a different tokenisation) is not the same run.
    expect(
      await checkByReexecution(
        backend,
        spec,
        v2For(
          honest.text,
          honest.tokenIds!.map((t) => t + 1),
        ),
      ),
    ).toMatchObject({ match: false });
    expect(await checkByReexecution(backend, { ...spec, input_salt: "8".repeat(64) }, v2For("x", null))).toMatchObject({
      match: false,
      problem: expect.stringMatching(/does not describe/),
    });
  });
  it("confirms an honest output and catches a fabricated one", async () => {
    const honest = await backend.generate({ model: "havn-tiny", input, params: spec.params });
    expect(await checkByReexecution(backend, spec, receiptFor(honest.text))).toMatchObject({ match: true });
    expect(await checkByReexecution(backend, spec, receiptFor("a made-up answer"))).toMatchObject({ match: false });
  });
  it("refuses a receipt for other parameters", async () => {
    const r = await checkByReexecution(backend, { ...spec, params: { ...spec.params, seed: 1 } }, receiptFor("x"));
    expect(r).toMatchObject({ match: false, problem: expect.stringMatching(/does not describe/) });
  });
});
