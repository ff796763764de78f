import {
  contentId,
  hashCanonical,
  HavnError,
  inputCommitment,
  receiptMessage,
  type JobOutput,
  type JobSpec,
  type Receipt,
} from "@havn/protocol";
import { inlineSignatures, type SignaturePool } from "./signature-pool.js";

export interface ResultToVerify {
  readonly output: JobOutput;
  readonly receipt: Receipt;
  readonly node_signature: string;
}

export interface VerifyContext {
  readonly spec: JobSpec;
  readonly nodeKey: string;
  /** The model hash the node advertised in its hello for `spec.model`. */
  readonly advertisedModelHash: string | undefined;
  /** Time from dispatch to result as the coordinator saw it, in ms. */
  readonly observedMs: number;
  /** The coordinator's clock when the result arrived (epoch ms). */
  readonly now: number;
}

/**
 * Slack on a node's reported latency over what the coordinator observed, in ms: clocks and the
 * network add a little. HavnAI paid on unbounded node-reported runtime; havn never trusts more
 * than it saw.
 */
const latencySlackMs = 1_000;

/** How far a node's clock may be from the coordinator's, in ms (the log's key-validity skew). */
const clockSkewMs = 5 * 60_000;

/**
 * Checks a node's result against the attempt it was given: every receipt field that the
 * coordinator can know is compared, the output is hashed to its CID, and the signature is
 * verified with the node's key (on a worker thread when the pool has one). Returns the
 * first problem, or null.
 */
export async function verifyResult(
  result: ResultToVerify,
  ctx: VerifyContext,
  signatures: SignaturePool = inlineSignatures,
): Promise<HavnError | null> {
  const problem = checkResultFields(result, ctx);
  if (problem) return problem;
  const signed = await signatures.verify({
    publicKey: ctx.nodeKey,
    message: receiptMessage(result.receipt),
    signature: result.node_signature,
  });
  if (!signed) {
    return new HavnError("RECEIPT_SIGNATURE_INVALID", "The node's receipt signature does not verify.", {
      context: { Job: ctx.spec.job_id, Attempt: ctx.spec.attempt_id, Node: ctx.nodeKey },
    });
  }
  return null;
}

/** The cheap part of `verifyResult`: every field, no signature. */
export function checkResultFields(result: ResultToVerify, ctx: VerifyContext): HavnError | null {
  const { receipt, output } = result;
  const { spec } = ctx;
  const mismatch = (field: string, expected: unknown, got: unknown) =>
    new HavnError("RECEIPT_INVALID", `The receipt's ${field} does not match the attempt.`, {
      context: {
        Job: spec.job_id,
        Attempt: spec.attempt_id,
        Field: field,
        Expected: String(expected),
        Got: String(got),
      },
    });
  if (receipt.v !== 2) return mismatch("version", 2, receipt.v);
  if (receipt.signer.kind !== "node") return mismatch("signer.kind", "node", receipt.signer.kind);
  const checks: [string, unknown, unknown][] = [
    ["job_id", spec.job_id, receipt.job_id],
    ["attempt_id", spec.attempt_id, receipt.attempt_id],
    ["workflow.id", spec.workflow_id, receipt.workflow?.id ?? null],
    ["workflow.version", spec.workflow_version, receipt.workflow?.version ?? null],
    ["signer.key", ctx.nodeKey, receipt.signer.key],
    ["node_id", ctx.nodeKey, receipt.node_id],
    ["model", spec.model, receipt.model],
    ["input_commitment", inputCommitment(spec.input, spec.input_salt), receipt.input_commitment],
    ["sampling", hashCanonical(spec.params), hashCanonical(receipt.sampling)],
    ["outputs_cid", contentId(output.text), receipt.outputs_cid],
    ["finish_reason", output.finish_reason, receipt.finish_reason],
    ["tokens.prompt", output.usage.prompt_tokens, receipt.tokens.prompt],
    ["tokens.completion", output.usage.completion_tokens, receipt.tokens.completion],
  ];
  if (ctx.advertisedModelHash !== undefined) checks.push(["model_hash", ctx.advertisedModelHash, receipt.model_hash]);
  for (const [field, expected, got] of checks) if (expected !== got) return mismatch(field, expected, got);
  // The log checks a receipt's co-signing key against `finished_at` (signed), so it must be now.
  if (Math.abs(receipt.finished_at - ctx.now) > clockSkewMs) {
    return mismatch("finished_at (the coordinator's clock, within 5 minutes)", ctx.now, receipt.finished_at);
  }
  if (receipt.latency_ms > ctx.observedMs + latencySlackMs) {
    return mismatch(
      "latency_ms (bounded by the coordinator's observation)",
      `<= ${ctx.observedMs + latencySlackMs}`,
      receipt.latency_ms,
    );
  }
  if (output.usage.completion_tokens > spec.params.max_tokens) {
    return mismatch(
      "completion tokens (bounded by max_tokens)",
      `<= ${spec.params.max_tokens}`,
      output.usage.completion_tokens,
    );
  }
  return null;
}
