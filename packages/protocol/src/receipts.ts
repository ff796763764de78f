import { z } from "zod";

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/);

/**
 * What a node attests about one attempt (docs/architecture.md §3, step 4). Signed by the node's Ed25519 key
 * with the `receipt` domain tag; hashes are hex SHA-256 of canonical JSON.
 */
export const receiptSchema = z.strictObject({
  v: z.literal(1),
  job_id: z.string().min(1).max(64),
  attempt_id: z.string().min(1).max(64),
  workflow_id: z.string().max(128).nullable(),
  node_key: b64url.length(43),
  model: z.string().min(1).max(256),
  /** SHA-256 of the model file, or of the backend's model identity when the file is remote. */
  model_hash: hex64,
  backend: z.string().min(1).max(64),
  params_hash: hex64,
  input_hash: hex64,
  /** CIDv1 (raw, sha2-256) of the output text's UTF-8 bytes. */
  outputs_cid: z.string().min(1).max(128),
  latency_ms: z.number().int().min(0),
  tokens: z.strictObject({ prompt: z.number().int().min(0), completion: z.number().int().min(0) }),
  /** Estimated energy for the attempt, in joules (device power × busy time). */
  energy_estimate: z.number().min(0),
  /** SHA-256 of the runtime identity: engine, version, batch size, threads, device. */
  runtime_hash: hex64,
  finished_at: z.number().int().min(0),
});
export type Receipt = z.infer<typeof receiptSchema>;

export const signedReceiptSchema = z.strictObject({
  receipt: receiptSchema,
  node_signature: b64url,
});
export type SignedReceipt = z.infer<typeof signedReceiptSchema>;

/** Where a receipt sits in the coordinator's hash-chained execution log. */
export const logPositionSchema = z.strictObject({
  seq: z.number().int().min(1),
  prev_hash: hex64,
  entry_hash: hex64,
});
export type LogPosition = z.infer<typeof logPositionSchema>;

/** The receipt as the coordinator hands it to clients: node-signed, logged and co-signed. */
export const cosignedReceiptSchema = z.strictObject({
  receipt: receiptSchema,
  node_signature: b64url,
  log: logPositionSchema,
  coordinator_key: b64url.length(43),
  coordinator_signature: b64url,
});
export type CosignedReceipt = z.infer<typeof cosignedReceiptSchema>;

/** The genesis `prev_hash` of the execution log. */
export const genesisHash = "0".repeat(64);
