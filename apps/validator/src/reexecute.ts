import { contentId, hashCanonical, inputCommitment, tokenIdsHash, type JobSpec, type Receipt } from "@havn/protocol";
import type { Backend } from "@havn/engine";

export interface ReexecutionResult {
  /** The re-run's output CID equals the receipt's. */
  readonly match: boolean;
  readonly expectedCid: string;
  readonly actualCid: string;
  /** Why the check could not be made, when it could not (the receipt is not for this job). */
  readonly problem?: string;
}

/**
 * The strongest check a validator can make: run the job again with the receipt's pinned
 * parameters on a backend with the same model and compare output CIDs. Exact for greedy or
 * fixed-seed decoding on the same engine, model, batch size and thread count.
 */
export async function checkByReexecution(
  backend: Backend,
  spec: JobSpec,
  receipt: Receipt,
): Promise<ReexecutionResult> {
  const base = { expectedCid: receipt.outputs_cid };
  const describesJob =
    receipt.job_id === spec.job_id &&
    (receipt.v === 1
      ? receipt.input_hash === hashCanonical(spec.input) && receipt.params_hash === hashCanonical(spec.params)
      : receipt.input_commitment === inputCommitment(spec.input, spec.input_salt) &&
        hashCanonical(receipt.sampling) === hashCanonical(spec.params));
  if (!describesJob) {
    return {
      ...base,
      match: false,
      actualCid: "",
      problem: "the receipt does not describe this job's input and parameters",
    };
  }
  const result = await backend.generate({ model: spec.model, input: spec.input, params: spec.params });
  const actualCid = contentId(result.text);
  // Version 2 receipts also hash the output's token ids: where both runs saw them, they must agree.
  const tokensAgree =
    receipt.v === 1 ||
    receipt.output_token_ids_hash === null ||
    result.tokenIds === undefined ||
    tokenIdsHash(result.tokenIds) === receipt.output_token_ids_hash;
  return { ...base, match: actualCid === receipt.outputs_cid && tokensAgree, actualCid };
}
