import { contentId, cosignReceipt, generateKeyPair, logEntryHash, signReceipt, type ErrorBody } from "@havn/protocol";
import type { CompleteJobInput, NewJob, ReceiptSealer } from "../src/index.ts";

// Shared by the store's test files: a node and coordinator key, jobs, claims and completions.
export const coordinator = generateKeyPair();
export const node = generateKeyPair();
export const err: ErrorBody = { code: "NODE_LOST", message: "lost", retryable: true };

export const seal: ReceiptSealer = {
  link: (prevHash, input) => logEntryHash(prevHash, input.receipt, input.nodeSignature),
  seal: async (requests) =>
    requests.map(({ log, input }) => cosignReceipt(input.receipt, input.nodeSignature, log, coordinator)),
};

let counter = 0;
export function newJob(
  now = 1_000,
  overrides: { maxAttempts?: number; queueDeadlineAt?: number; accountId?: string; idempotencyKey?: string } = {},
): NewJob & { input: { kind: "completion"; prompt: string } } {
  counter++;
  return {
    ...(overrides.accountId ? { accountId: overrides.accountId } : {}),
    ...(overrides.idempotencyKey ? { idempotencyKey: overrides.idempotencyKey } : {}),
    id: `job-${counter.toString(16).padStart(12, "0")}${Math.random().toString(16).slice(2, 8)}`,
    model: "havn-tiny",
    workflowId: null,
    input: { kind: "completion" as const, prompt: "hello" },
    params: { max_tokens: 8, temperature: 0, top_p: 1, seed: 1, stop: [] },
    inputHash: "c".repeat(64),
    inputSalt: "d".repeat(64),
    workflowVersion: null,
    stream: false,
    maxAttempts: overrides.maxAttempts ?? 3,
    queueDeadlineAt: overrides.queueDeadlineAt ?? now + 60_000,
    now,
  };
}

export const route = { node_key: node.publicKey, score: 1, candidates: 1, reasons: {} };
export function claimOf(jobId: string, attemptId: string, leaseExpiresAt = 100_000) {
  return { jobId, attemptId, nodeKey: node.publicKey, leaseExpiresAt, route };
}

export function completion(jobId: string, attemptId: string, text = "out", now = 2_000): CompleteJobInput {
  const receipt = {
    v: 1 as const,
    job_id: jobId,
    attempt_id: attemptId,
    workflow_id: null,
    node_key: node.publicKey,
    model: "havn-tiny",
    model_hash: "a".repeat(64),
    backend: "builtin",
    params_hash: "b".repeat(64),
    input_hash: "c".repeat(64),
    outputs_cid: contentId(text),
    latency_ms: 5,
    tokens: { prompt: 1, completion: 1 },
    energy_estimate: 0.1,
    runtime_hash: "d".repeat(64),
    finished_at: now,
  };
  return {
    jobId,
    attemptId,
    nodeKey: node.publicKey,
    output: { text, finish_reason: "stop", usage: { prompt_tokens: 1, completion_tokens: 1 } },
    outputCid: contentId(text),
    outputBytes: new TextEncoder().encode(text),
    receipt,
    nodeSignature: signReceipt(receipt, node.secretKey),
    now,
  };
}
