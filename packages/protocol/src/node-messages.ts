import { z } from "zod";
import { jobOutputSchema, jobSpecSchema, taskKinds } from "./jobs.js";
import { receiptSchema } from "./receipts.js";

/**
 * The native node protocol: one outbound WebSocket per node at `/nodes/connect`, carrying these
 * JSON messages. Every message has `v` (protocol version) and `type`.
 *
 * coordinator → node: challenge, welcome, job, cancel, error
 * node → coordinator: hello, heartbeat, progress, token, result, error
 */
export const protocolVersion = 2;

/**
 * WebSocket close codes of the node protocol (4000–4999 are the application's). A node that is
 * closed with one of `fatalNodeCloseCodes` is refused for good and stops reconnecting: retrying
 * with the same key, name or signature cannot succeed.
 */
export const nodeCloseCodes = {
  /** Another connection with the same key took over (this one did not answer a ping in time). */
  replaced: 4000,
  /** The hello signature does not verify. */
  authFailed: 4001,
  helloTimeout: 4002,
  protocolViolation: 4003,
  /** The node name belongs to another key. */
  nameTaken: 4009,
  shuttingDown: 4010,
  /** A live connection already uses this key: two processes share one key file. */
  keyInUse: 4011,
  /** No valid credential (an operator's node-scoped API key, or the network's join token). */
  credentialRequired: 4012,
  /** The key belongs to another account than the credential's. */
  keyOwned: 4013,
  /** The node speaks another protocol version (`v`) than the coordinator: it must be upgraded. */
  protocolVersion: 4014,
} as const;
export const fatalNodeCloseCodes: ReadonlySet<number> = new Set([
  nodeCloseCodes.authFailed,
  nodeCloseCodes.protocolVersion,
  nodeCloseCodes.nameTaken,
  nodeCloseCodes.keyInUse,
  nodeCloseCodes.credentialRequired,
  nodeCloseCodes.keyOwned,
]);
const v = z.literal(protocolVersion);
const b64url = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/)
  .max(128);
const id = z.string().min(1).max(64);

export const computeClasses = ["S", "M", "L", "XL"] as const;
export type ComputeClass = (typeof computeClasses)[number];

export const modelCapabilitySchema = z.strictObject({
  name: z.string().min(1).max(256),
  tasks: z.array(z.enum(taskKinds)).min(1),
  context_length: z.number().int().min(1),
  model_hash: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ModelCapability = z.infer<typeof modelCapabilitySchema>;

export const hardwareSchema = z.strictObject({
  cpu: z.strictObject({ model: z.string().max(256), cores: z.number().int().min(1) }),
  memory_mb: z.number().int().min(0),
  gpus: z.array(z.strictObject({ name: z.string().max(256), memory_mb: z.number().int().min(0) })).max(64),
  compute_class: z.enum(computeClasses),
});
export type Hardware = z.infer<typeof hardwareSchema>;

export const capabilitiesSchema = z.strictObject({
  backend: z.string().min(1).max(64),
  engine_version: z.string().min(1).max(128),
  models: z.array(modelCapabilitySchema).max(256),
  /** Jobs the node runs at once. */
  slots: z.number().int().min(1).max(1024),
});
export type Capabilities = z.infer<typeof capabilitiesSchema>;

/** The part of hello that the node signs (domain `hello`), bound to the coordinator's nonce. */
export const helloPayloadSchema = z.strictObject({
  nonce: z.string().min(16).max(128),
  node_key: b64url,
  /** A node's name: no control characters and no `~` (a name moved to another key leaves `name~key` behind). */
  name: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[^~\p{Cc}]+$/u, "a node name has no control characters and no ~"),
  agent_version: z.string().min(1).max(64),
  capabilities: capabilitiesSchema,
  hardware: hardwareSchema,
  /** Whether the node's backend passed its health check as it connected. Default true. */
  available: z.boolean().optional(),
});
export type HelloPayload = z.infer<typeof helloPayloadSchema>;

/** The result of a node's last check of its inference backend. */
export const backendHealthSchema = z.strictObject({
  ok: z.boolean(),
  /** A catalog code when not ok (BACKEND_UNAVAILABLE, BACKEND_MODEL_NOT_LOADED…). */
  code: z.string().max(64).optional(),
  reason: z.string().max(512).optional(),
});
export type BackendHealthReport = z.infer<typeof backendHealthSchema>;

const errorFields = {
  code: z.string().min(1).max(64),
  message: z.string().max(4096),
  retryable: z.boolean(),
};

/**
 * How a node proves it may join (beside its key, which the signature proves): its operator's
 * `node`-scoped API key, or the network's join token. Not signed, never logged.
 */
export const nodeCredentialSchema = z.strictObject({
  api_key: z.string().min(1).max(256).optional(),
  join_token: z.string().min(1).max(512).optional(),
});
export type NodeCredential = z.infer<typeof nodeCredentialSchema>;

export const nodeToCoordinatorSchema = z.discriminatedUnion("type", [
  z.strictObject({
    v,
    type: z.literal("hello"),
    payload: helloPayloadSchema,
    signature: b64url,
    credential: nodeCredentialSchema.optional(),
  }),
  z.strictObject({
    v,
    type: z.literal("heartbeat"),
    in_flight: z.array(id).max(1024),
    busy_slots: z.number().int().min(0),
    /**
     * Whether the node takes jobs now. A node whose backend fails its health check says false
     * (and gets no jobs) until a check passes; it sends a heartbeat at once when this changes.
     * Absent: true.
     */
    available: z.boolean().optional(),
    backend: backendHealthSchema.optional(),
  }),
  z.strictObject({
    v,
    type: z.literal("progress"),
    job_id: id,
    attempt_id: id,
    stage: z.string().max(64),
    progress: z.number().min(0).max(1),
  }),
  z.strictObject({
    v,
    type: z.literal("token"),
    job_id: id,
    attempt_id: id,
    /** Index of the first token in `text`; chunks arrive in order. */
    index: z.number().int().min(0),
    text: z.string().max(65536),
  }),
  z.strictObject({
    v,
    type: z.literal("result"),
    job_id: id,
    attempt_id: id,
    output: jobOutputSchema,
    receipt: receiptSchema,
    node_signature: b64url,
  }),
  z.strictObject({ v, type: z.literal("error"), job_id: id.optional(), attempt_id: id.optional(), ...errorFields }),
]);
export type NodeToCoordinator = z.infer<typeof nodeToCoordinatorSchema>;

export const coordinatorToNodeSchema = z.discriminatedUnion("type", [
  z.strictObject({ v, type: z.literal("challenge"), nonce: z.string(), coordinator_key: b64url }),
  z.strictObject({
    v,
    type: z.literal("welcome"),
    node_key: b64url,
    heartbeat_interval_ms: z.number().int().min(100),
  }),
  z.strictObject({ v, type: z.literal("job"), spec: jobSpecSchema, lease_expires_at: z.number().int() }),
  z.strictObject({ v, type: z.literal("cancel"), job_id: id, attempt_id: id, reason: z.string().max(256) }),
  z.strictObject({ v, type: z.literal("error"), job_id: id.optional(), ...errorFields }),
]);
export type CoordinatorToNode = z.infer<typeof coordinatorToNodeSchema>;

type Distribute<T> = T extends { type: string } ? Omit<T, "v"> : never;
/** A message without its `v`, for building outbound messages. */
export type NodeMessageBody = Distribute<NodeToCoordinator>;
export type CoordinatorMessageBody = Distribute<CoordinatorToNode>;
