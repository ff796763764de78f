import { z } from "zod";
import { finishReasons, generationParamsSchema } from "./jobs.js";

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/);

/**
 * Version 1 of a receipt: what a node attests about one attempt. Signed by the node's Ed25519 key
 * with the `receipt` domain tag; hashes are hex SHA-256 of canonical JSON. Nodes now sign version
 * 2; version 1 receipts in the log stay verifiable.
 */
export const receiptV1Schema = z.strictObject({
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
export type ReceiptV1 = z.infer<typeof receiptV1Schema>;

/** Where a model came from, as the node that ran it says (docs/architecture.md §3). */
export const modelSources = ["generated", "file", "server"] as const;

/**
 * Version 2 of a receipt, designed once for what verification, fraud proofs and HavnAI nodes
 * need (docs/architecture.md §3):
 *
 * - `signer`: who signed — the node with its own key, or the coordinator (by key id) on behalf
 *   of a node that has no key; `node_id` is the node either way.
 * - `model_source`: where the model came from, beside its hash.
 * - `sampling`: the generation parameters and seed, in full (not only their hash), so a
 *   verifier can run the job again.
 * - `output_token_ids_hash`: SHA-256 of the output's token ids (canonical JSON array), when the
 *   backend sees them; two runs that tokenise the same text differently are told apart.
 * - `input_commitment`: SHA-256 of canonical `{input, salt}`. The salt is random per job, known
 *   to the client (its job view), the node (its job spec) and verifiers; the public log shows
 *   only the commitment, so nobody can confirm a guessed prompt from it.
 */
export const receiptV2Schema = z.strictObject({
  v: z.literal(2),
  job_id: z.string().min(1).max(64),
  attempt_id: z.string().min(1).max(64),
  signer: z.discriminatedUnion("kind", [
    z.strictObject({ kind: z.literal("node"), key: b64url.length(43) }),
    z.strictObject({ kind: z.literal("coordinator"), key_id: z.string().regex(/^[0-9a-f]{16}$/) }),
  ]),
  /**
   * The node that ran the attempt: its public key (the signer's key, for a node-signed receipt), or
   * the id the coordinator knows a keyless node by — never shaped like a key (43 base64url
   * characters), so a coordinator-signed receipt cannot speak for a keyed node.
   */
  node_id: z.string().min(1).max(128),
  workflow: z.strictObject({ id: z.string().min(1).max(128), version: z.string().min(1).max(32) }).nullable(),
  model: z.string().min(1).max(256),
  model_hash: hex64,
  model_source: z.strictObject({
    kind: z.enum(modelSources),
    /** A file's name, a generator's spec, or a server's model id: never a local path or an address. */
    ref: z.string().max(256),
  }),
  backend: z.string().min(1).max(64),
  runtime_hash: hex64,
  sampling: generationParamsSchema,
  input_commitment: hex64,
  outputs_cid: z.string().min(1).max(128),
  output_token_ids_hash: hex64.nullable(),
  finish_reason: z.enum(finishReasons),
  tokens: z.strictObject({ prompt: z.number().int().min(0), completion: z.number().int().min(0) }),
  latency_ms: z.number().int().min(0),
  energy_estimate: z.number().min(0),
  finished_at: z.number().int().min(0),
});
export type ReceiptV2 = z.infer<typeof receiptV2Schema>;

/** A receipt of either version; `v` tells them apart. */
export const receiptSchema = z.discriminatedUnion("v", [receiptV1Schema, receiptV2Schema]);
export type Receipt = ReceiptV1 | ReceiptV2;

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
