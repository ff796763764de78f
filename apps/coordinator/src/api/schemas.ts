import { z } from "zod";
import {
  workflowManifestSchema,
  backendHealthSchema,
  capabilitiesSchema,
  chatCompletionRequestSchema,
  completionRequestSchema,
  computeClasses,
  cosignedReceiptSchema,
  errorCatalog,
  generationParamsSchema,
  hardwareSchema,
  jobOutputSchema,
} from "@havn/protocol";
import { apiKeyScopes, jobStatuses, ledgerKinds, moneyStates, proposalStates, voteChoices } from "@havn/store";
import { proposalActionSchema } from "../governance/governance-service.js";

/**
 * The shapes of the coordinator's HTTP API, as zod schemas: request bodies (from the protocol
 * package, which validates them), path parameters (validated by the routes) and responses
 * (checked against real answers by tests). `/openapi.json` is generated from these and from the
 * route table (`routes.ts`); nothing is written twice.
 */

const errorCodes = Object.keys(errorCatalog) as [keyof typeof errorCatalog, ...(keyof typeof errorCatalog)[]];

/** Every error on every route: OpenAI's shape, with havn's catalog code, retryability and details. */
export const errorResponseSchema = z
  .object({
    error: z.object({
      message: z.string(),
      type: z.enum(["invalid_request_error", "server_error"]),
      param: z.null(),
      code: z.enum(errorCodes).describe("A code from the error catalog (docs/errors.md)."),
      retryable: z.boolean().describe("Whether the same request may succeed later."),
      details: z.unknown().optional(),
    }),
  })
  .describe("An error: OpenAI's shape, with havn's catalog code and retryability.");

const routeDecisionSchema = z
  .object({
    node_key: z.string(),
    score: z.number(),
    candidates: z.number().int(),
    reasons: z.record(z.string(), z.number()),
  })
  .describe("Why the router picked the node: its score and the terms of it.");

const errorBodySchema = z.object({
  code: z.enum(errorCodes),
  message: z.string(),
  retryable: z.boolean(),
  details: z.unknown().optional(),
});

/** µHAI as exact decimal digits (1 HAI = 1 000 000 µHAI); JSON numbers cannot hold every amount. */
const uhai = z
  .string()
  .regex(/^-?[0-9]+$/)
  .describe("µHAI, as decimal digits (1 HAI = 1 000 000 µHAI).");

export const ledgerTransactionSchema = z
  .object({
    id: z.string(),
    object: z.literal("ledger_transaction"),
    kind: z.enum(ledgerKinds),
    job_id: z.string().nullable(),
    memo: z.record(z.string(), z.unknown()).nullable(),
    created_at: z.number().int(),
    postings: z
      .array(z.object({ account: z.string(), amount_uhai: uhai }))
      .describe("Credits positive, debits negative; they sum to zero."),
  })
  .describe("One balanced transaction of the $HAI ledger.");
export const ledgerTransactionListSchema = z.object({
  object: z.literal("list"),
  data: z.array(ledgerTransactionSchema),
});

export const jobMoneySchema = z
  .object({
    state: z.enum(moneyStates).describe("escrowed → charged → settled (or held), or escrowed → refunded."),
    payer: z.string().describe("The ledger account that pays (a wallet, or the account's custodial one)."),
    escrow_uhai: uhai,
    charge_uhai: uhai.nullable(),
    price: z.object({
      input_per_1k: uhai,
      output_per_1k: uhai,
      surge_bp: z.number().int(),
      class_bp: z.record(z.string(), z.number().int()),
    }),
  })
  .describe("A job's money; null on a free network.");

export const jobViewSchema = z
  .object({
    id: z.string().describe("The job id; also the `id` of the OpenAI completion."),
    object: z.literal("job"),
    status: z.enum(jobStatuses),
    model: z.string(),
    workflow_id: z.string().nullable(),
    params: generationParamsSchema,
    input_hash: z.string().describe("SHA-256 of the job's canonical input (the prompt is not returned)."),
    input_salt: z
      .string()
      .nullable()
      .describe(
        "The salt of the receipt's input commitment (SHA-256 of canonical {input, salt}): the owner's to reveal to a verifier. Null before receipts v2.",
      ),
    attempts: z.number().int(),
    max_attempts: z.number().int(),
    node_key: z.string().nullable(),
    created_at: z.number().int().describe("Epoch milliseconds."),
    updated_at: z.number().int(),
    finished_at: z.number().int().nullable(),
    output: jobOutputSchema.nullable(),
    output_cid: z.string().nullable().describe("CIDv1 of the output text's UTF-8 bytes."),
    receipt: cosignedReceiptSchema.nullable(),
    error: errorBodySchema.nullable(),
    route: routeDecisionSchema.nullable(),
    request_id: z.string().nullable().describe("The client's x-request-id, when it sent one."),
    output_public: z.boolean().describe("Whether anyone who knows the output's CID may read it."),
    data_deleted_at: z
      .number()
      .int()
      .nullable()
      .describe("When the prompt and output were deleted (retention, or the owner); hashes and the receipt stay."),
    money: jobMoneySchema.nullable(),
    ledger: z.array(ledgerTransactionSchema).optional().describe("The job's postings, oldest first."),
  })
  .describe("A job: its status, output, co-signed receipt, routing decision and money.");

export const balanceSchema = z
  .object({
    object: z.literal("balance"),
    account: z.string().describe("The ledger account: `wallet:0x…`, or `custodial:acc-…` until a wallet is bound."),
    balance_uhai: uhai,
    balance: z.string().describe("The same in HAI, for people."),
    pending_payouts_uhai: uhai.describe("Withdrawals asked for and not yet paid out."),
  })
  .describe("What an account holds.");

const logEntryCommon = {
  seq: z.number().int().min(1),
  job_id: z.string(),
  prev_hash: z.string(),
  entry_hash: z.string(),
  created_at: z.number().int(),
};

export const settlementRecordSchema = z
  .object({
    v: z.literal(1),
    job_id: z.string(),
    workflow_id: z.string().nullable(),
    caller: z.string().describe("The payer's ledger account."),
    node_key: z.string(),
    fee_uhai: z.string().regex(/^\d+$/),
    split: z
      .array(z.object({ account: z.string(), amount_uhai: z.string().regex(/^\d+$/) }))
      .describe("Every credit of the fee, by ledger account: they sum to the fee."),
    settled_at: z.number().int(),
  })
  .describe("A settled run: workflow, caller, node, fee, split, time.");

export const logEntrySchema = z
  .union([
    z.object({ ...logEntryCommon, kind: z.literal("receipt"), receipt: cosignedReceiptSchema }),
    z.object({
      ...logEntryCommon,
      kind: z.literal("settlement"),
      settlement: z.object({
        settlement: settlementRecordSchema,
        log: z.object({ seq: z.number().int(), prev_hash: z.string(), entry_hash: z.string() }),
        coordinator_key: z.string(),
        coordinator_signature: z
          .string()
          .describe("Ed25519 over the `havn/log-settlement/v1` tag and {log, settlement}."),
      }),
    }),
  ])
  .describe("One entry of the hash-chained execution log: a completed attempt's receipt, or a settled run.");

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

export const signedLogPeriodSchema = z
  .object({
    from: z.number().int().min(1),
    to: z.number().int().min(1),
    root: hex64.describe("RFC 6962 Merkle tree hash over the entry hashes of `from`..`to`."),
    last_hash: hex64.describe("The entry hash of `to`."),
    signed_at: z.number().int(),
    key_id: z.string().describe("The coordinator key that signed (see `GET /v1/keys`)."),
    signature: z.string().describe("Ed25519, base64url, over the `havn/log-period/v1` tag and the canonical JSON."),
  })
  .describe("A sealed period of the execution log: a signed Merkle root.");

export const signedLogHeadSchema = z
  .object({
    seq: z.number().int().min(0),
    entry_hash: hex64,
    signed_at: z.number().int(),
    key_id: z.string(),
    signature: z.string().describe("Ed25519, base64url, over the `havn/log-head/v1` tag and the canonical JSON."),
  })
  .describe("The newest entry of the execution log (seq 0 while it is empty), signed when asked.");

export const logRangeSchema = z
  .object({
    object: z.literal("log_range"),
    from: z.number().int().min(1),
    to: z.number().int().min(0),
    entries: z.array(logEntrySchema),
    periods: z.array(signedLogPeriodSchema).describe("The sealed periods that overlap the range."),
    head: signedLogHeadSchema,
    next_from: z.number().int().nullable().describe("Where the next page starts, when the range was cut short."),
  })
  .describe("A range of the execution log, with what it takes to check it offline (`havn log verify`).");

export const logProofSchema = z
  .object({
    job_id: z.string(),
    seq: z.number().int().min(1),
    entry_hash: hex64,
    period: signedLogPeriodSchema,
    path: z.array(hex64).describe("Sibling hashes from the entry's leaf to the period's root (RFC 9162 §2.1.3)."),
  })
  .describe("That a job's entry is in a sealed, signed period of the execution log.");

export const coordinatorKeyListSchema = z
  .object({
    object: z.literal("list"),
    data: z.array(
      z.object({
        key_id: z.string().describe("The first 16 hex digits of SHA-256 of the raw public key."),
        public_key: z.string().describe("Ed25519, base64url."),
        replica: z.string(),
        valid_from: z.number().int(),
        valid_until: z.number().int().nullable().describe("When a rotation retired it; null while in use."),
        certificate: z
          .object({
            by: z.string().describe("The key id of the replica's previous key, which signed this certificate."),
            issued_at: z.number().int(),
            signature: z.string(),
          })
          .nullable()
          .optional()
          .describe("A rotated-in key's certificate from the key it replaced; null for a replica's first key."),
      }),
    ),
  })
  .describe("The network's coordinator keys, each replica's included, with when each signed.");

const check = z.object({ ok: z.boolean(), latency_ms: z.number().optional(), error: z.string().optional() });

export const healthSchema = z
  .object({
    status: z
      .enum(["ok", "degraded", "failing"])
      .describe("`ok` and `degraded` answer HTTP 200, `failing` 503 — as load balancers expect."),
    reasons: z.array(z.string()).describe("Why the status is not `ok`, one sentence each."),
    version: z.string(),
    coordinator_key: z.string().describe("The coordinator's Ed25519 public key: it co-signs every receipt."),
    store: z.enum(["sqlite", "postgres"]),
    checks: z.object({
      store: check,
      nodes: z.object({ online: z.number().int(), available: z.number().int(), unavailable: z.number().int() }),
      queue: z.object({
        queued: z.number().int(),
        unserved_models: z.array(z.string()).describe("Models with queued jobs that no available node serves."),
      }),
    }),
    nodes_online: z.number().int(),
    free_slots: z.number().int(),
    jobs: z.record(z.string(), z.number().int()).nullable().describe("Jobs by status (null when the store is down)."),
    log: z.object({ seq: z.number().int(), entry_hash: z.string().nullable() }).nullable(),
  })
  .describe("Whether the coordinator can do its work, and why not.");

export const nodeViewSchema = z
  .object({
    key: z.string().describe("The node's Ed25519 public key: its identity."),
    name: z.string(),
    state: z
      .enum(["available", "unavailable", "offline"])
      .describe("`unavailable`: connected, but its backend fails its health checks; it gets no jobs."),
    backend: backendHealthSchema.nullable().describe("The node's last report of its backend (null when offline)."),
    models: z.array(z.string()),
    capabilities: capabilitiesSchema,
    hardware: hardwareSchema,
    compute_class: z.enum(computeClasses),
    slots: z.number().int(),
    slots_in_use: z.number().int(),
    latency_ewma_ms: z.number().nullable().describe("Mean dispatch-to-result time of its recent jobs."),
    connected_at: z.number().int().nullable(),
    last_heartbeat_at: z.number().int().nullable(),
    first_seen_at: z.number().int(),
    last_seen_at: z.number().int(),
    stake_uhai: uhai.nullable().describe("µHAI bonded to it (null when offline: see `GET /v1/stake`)."),
    held: z
      .enum(["below_floor", "quarantined", "paused"])
      .nullable()
      .describe(
        "Why a connected, healthy node gets no jobs: stake below its class's collateral floor, stake quarantined, or paused by governance.",
      ),
  })
  .describe("A node as its operator sees it.");

export const nodeListSchema = z.object({ object: z.literal("list"), data: z.array(nodeViewSchema) });

export const modelListSchema = z
  .object({
    object: z.literal("list"),
    data: z.array(
      z.object({
        id: z.string(),
        object: z.literal("model"),
        created: z.number().int(),
        owned_by: z.string(),
        havn: z.object({
          online_nodes: z.number().int().describe("Available nodes serving the model now."),
          weight: z.number().nullable().describe("Manifest weight for `model: auto` (null: not in the registry)."),
          tier: z.string().nullable(),
          task_type: z.string().nullable(),
        }),
      }),
    ),
  })
  .describe("Models a node can serve now (OpenAI's list, with havn's extension).");

const usageSchema = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
  cost: z.number().optional().describe("What the job was charged, in HAI (absent on a free network)."),
  cost_uhai: uhai.optional().describe("The same, exact, in µHAI."),
});
const havnExtensionSchema = z
  .object({
    job_id: z.string(),
    output_cid: z.string().nullable(),
    cost_uhai: uhai.nullable().describe("What the job was charged, in µHAI; null on a free network."),
    receipt: cosignedReceiptSchema.nullable(),
    input_salt: z
      .string()
      .nullable()
      .optional()
      .describe("The salt of the receipt's input commitment: with the prompt, it lets a verifier check it."),
  })
  .describe("havn's extension: the job id and the receipt the node signed and the coordinator co-signed.");
const finish = z.enum(["stop", "length"]).nullable();

export const chatCompletionResponseSchema = z
  .object({
    id: z.string().describe("The job id."),
    object: z.literal("chat.completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({ role: z.literal("assistant"), content: z.string() }),
        finish_reason: finish,
        logprobs: z.null(),
      }),
    ),
    usage: usageSchema,
    havn: havnExtensionSchema,
  })
  .describe("A chat completion. With `stream: true` the answer is server-sent events of chunks instead.");

export const completionResponseSchema = z
  .object({
    id: z.string().describe("The job id."),
    object: z.literal("text_completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({ index: z.number().int(), text: z.string(), finish_reason: finish, logprobs: z.null() }),
    ),
    usage: usageSchema,
    havn: havnExtensionSchema,
  })
  .describe("A text completion. With `stream: true` the answer is server-sent events of chunks instead.");

export const jobIdParamsSchema = z.object({
  id: z
    .string()
    .regex(/^job-[0-9a-f]{12,32}$/)
    .describe("A job id (the `id` of an OpenAI completion)."),
});
export const outputParamsSchema = z.object({
  cid: z.string().min(1).max(128).describe("The output's CIDv1, as in the receipt's `outputs_cid`."),
});
export const workflowRefParamsSchema = z.object({
  ref: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._@-]{0,159}$/, "a workflow id, name or name@version")
    .describe("A workflow id (`wf-…`), `name` or `name@version`."),
});

export const logSeqParamsSchema = z.object({
  seq: z
    .string()
    .regex(/^[1-9][0-9]{0,15}$/, "a log position is a decimal number from 1")
    .transform(Number)
    .pipe(z.number().max(Number.MAX_SAFE_INTEGER))
    .describe("A log position, from 1."),
});

const email = z.string().trim().email().max(254).describe("An email address; compared case-insensitively.");
const password = z.string().min(8).max(1024).describe("At least 8 characters.");

export const registerRequestSchema = z.strictObject({
  email,
  password,
  invite: z.string().min(1).max(256).optional().describe("An invitation, when registration is by invite."),
});
export const loginRequestSchema = z.strictObject({ email, password: z.string().min(1).max(1024) });
export const refreshRequestSchema = z.strictObject({ refresh_token: z.string().min(1).max(256) });
export const siweVerifyRequestSchema = z.strictObject({
  message: z
    .string()
    .min(1)
    .max(4096)
    .describe("An EIP-4361 message naming this coordinator's domain and a nonce it issued."),
  signature: z.string().min(1).max(1024).describe("The wallet's signature of the message (0x hex)."),
  password: z
    .string()
    .min(1)
    .max(1024)
    .optional()
    .describe(
      "To bind the wallet to the signed-in account: the account's password (a stolen access token alone may not).",
    ),
});
export const createKeyRequestSchema = z.strictObject({
  name: z.string().trim().min(1).max(64),
  scopes: z
    .array(z.enum(apiKeyScopes))
    .min(1)
    .max(apiKeyScopes.length)
    .default(["jobs"])
    .describe(
      "`jobs` submits and reads jobs, `node` joins nodes, `metrics` reads /metrics, `admin` (admins only) administers.",
    ),
});
export const inviteRequestSchema = z.strictObject({
  ttl_seconds: z
    .number()
    .int()
    .min(60)
    .max(30 * 24 * 3600)
    .default(7 * 24 * 3600),
});
const amount = z
  .union([z.string().regex(/^[0-9]{1,18}$/), z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)])
  .describe("µHAI: decimal digits (or a whole number)")
  .transform((v) => BigInt(v))
  .refine((v) => v > 0n, "more than zero");
export const workflowSchema = z
  .object({
    id: z.string().describe("`wf-` and 24 hex digits: fixed by name and version."),
    object: z.literal("workflow"),
    name: z.string(),
    version: z.string(),
    creator: z.string().describe("The creator's account id."),
    content_hash: z.string().describe("SHA-256 of the canonical model, template and parameters."),
    origin: z.string().describe("The workflow it derives from at the root; its own id for an original."),
    flagged: z.boolean(),
    flag_reason: z.string().nullable(),
    created_at: z.number().int(),
    manifest: z.record(z.string(), z.unknown()).describe("The published manifest (see `havn publish`)."),
  })
  .describe("A published workflow version (immutable).");

export const workflowListSchema = z.object({ object: z.literal("list"), data: z.array(workflowSchema) });

export const workflowEarningsSchema = z
  .object({
    object: z.literal("workflow_earnings"),
    workflow: z.string(),
    earned_uhai: uhai.describe("Everything its creator was paid from it, held royalties included."),
    earned: z.string().describe("The same in HAI."),
    direct_uhai: uhai.describe("From runs of this workflow."),
    upstream_uhai: uhai.describe("From runs of workflows built on it."),
    runs: z.number().int().describe("Settled runs that paid it (its own and those built on it)."),
  })
  .describe("What a workflow earned its creator.");

export const workflowFlagRequestSchema = z
  .strictObject({
    flagged: z.boolean().describe("true: the workflow stops running and its royalties are held; false: cleared."),
    reason: z.string().trim().min(1).max(500),
  })
  .describe("An admin's flag on a workflow (governance, later).");

export const adminSettlementRequestSchema = z
  .strictObject({
    action: z
      .enum(["hold", "settle", "refund"])
      .describe(
        "`hold`: a completed job's charge stays in escrow, not settled, until released. `settle`: a held job's " +
          "charge is split as usual (the node's favour). `refund`: a held job's charge goes back to its payer.",
      ),
    reason: z.string().trim().min(1).max(500).describe("Logged with the change: the audit trail."),
  })
  .describe("A dispute over a job's settlement, decided by an admin until verification gives verdicts.");

export const adminLedgerRequestSchema = z
  .strictObject({
    account_id: z.string().min(1).max(64).optional().describe("A havn account (its wallet, else its custodial one)."),
    email: z.string().trim().email().max(254).optional().describe("A havn account, by its email."),
    wallet: z
      .string()
      .regex(/^0x[0-9a-fA-F]{40}$/)
      .optional()
      .describe("An EVM wallet, whether or not an account holds it."),
    amount_uhai: amount,
    reason: z.string().trim().min(1).max(500).describe("Kept with the transaction: the audit trail."),
  })
  .refine(
    (b) => [b.account_id, b.email, b.wallet].filter((t) => t !== undefined).length === 1,
    "name one of account_id, email or wallet",
  );
export const withdrawRequestSchema = z.strictObject({
  amount_uhai: amount,
  to: z
    .string()
    .regex(/^0x[0-9a-fA-F]{40}$/)
    .optional()
    .describe("Where to pay it; default the account's own wallet."),
});
export const publishRequestSchema = z.strictObject({
  public: z.boolean().describe("Whether anyone who knows the output's CID may read it."),
});

export const stakeRequestSchema = z
  .strictObject({
    node: z.string().min(1).max(200).optional().describe("The node to bond to (its key or name); you operate it."),
    validator: z.literal(true).optional().describe("Bond to yourself as a validator instead."),
    amount_uhai: amount,
  })
  .refine((b) => (b.node === undefined) !== (b.validator === undefined), "name one of node or validator");
export const availabilityPromiseRequestSchema = z
  .strictObject({
    from_hour: z.number().int().min(0).max(23).describe("UTC hour the promise starts each day."),
    to_hour: z
      .number()
      .int()
      .min(0)
      .max(24)
      .describe("UTC hour it ends (below `from_hour`: across midnight; equal: all day)."),
    slots: z.number().int().min(1).max(4096).describe("Slots promised free for work inside those hours."),
  })
  .describe("Seed 003's availability promise: kept, +1 an hour of uptime as usual; broken, −5 an hour.");
export const proposalRequestSchema = z
  .strictObject({
    action: proposalActionSchema.describe(
      "`set_params` (`params`: name → value), `pause_node`/`resume_node` (`node`), `pause_model`/`resume_model`/`flag_model`/`unflag_model`/`admit_model` (`model`), `flag_workflow`/`unflag_workflow` (`workflow`).",
    ),
    reason: z.string().trim().min(1).max(500),
    admin: z
      .boolean()
      .optional()
      .describe(
        "An admin's act, executed at once without a vote: any action in dev mode, emergencies only in production.",
      ),
  })
  .describe("A governance proposal: open for votes weighted by bonded stake, or an admin's act.");
export const voteRequestSchema = z.strictObject({ choice: z.enum(voteChoices) });

/** Request bodies, named for the API document. */
export const requestSchemas = {
  ChatCompletionRequest: chatCompletionRequestSchema,
  CompletionRequest: completionRequestSchema,
  RegisterRequest: registerRequestSchema,
  LoginRequest: loginRequestSchema,
  RefreshRequest: refreshRequestSchema,
  SiweVerifyRequest: siweVerifyRequestSchema,
  CreateKeyRequest: createKeyRequestSchema,
  InviteRequest: inviteRequestSchema,
  PublishRequest: publishRequestSchema,
  AdminLedgerRequest: adminLedgerRequestSchema,
  AdminSettlementRequest: adminSettlementRequestSchema,
  WorkflowFlagRequest: workflowFlagRequestSchema,
  WorkflowManifest: workflowManifestSchema,
  WithdrawRequest: withdrawRequestSchema,
  StakeRequest: stakeRequestSchema,
  AvailabilityPromiseRequest: availabilityPromiseRequestSchema,
  ProposalRequest: proposalRequestSchema,
  VoteRequest: voteRequestSchema,
} as const;

export const accountSchema = z
  .object({
    id: z.string(),
    object: z.literal("account"),
    email: z.string().nullable(),
    wallet: z.string().nullable().describe("EIP-55 checksummed."),
    role: z.enum(["user", "admin"]),
    created_at: z.number().int(),
  })
  .describe("An account.");

export const sessionSchema = z
  .object({
    account: accountSchema,
    access_token: z.string().describe("A JWT; send it as `Authorization: Bearer …`. Short-lived."),
    token_type: z.literal("Bearer"),
    expires_in: z.number().int().describe("Seconds the access token is valid."),
    refresh_token: z.string().describe("Spend it at /auth/refresh for a new pair; each one works once."),
  })
  .describe("A login: an account and its tokens.");

export const meSchema = z
  .object({
    account: accountSchema,
    via: z.enum(["api_key", "access_token", "dev"]),
    scopes: z.array(z.enum(apiKeyScopes)),
    key_id: z.string().nullable(),
    mode: z.enum(["production", "dev"]),
  })
  .describe("Who the credential acts as, and what it may do.");

export const apiKeySchema = z
  .object({
    id: z.string(),
    object: z.literal("api_key"),
    name: z.string(),
    prefix: z.string().describe("The key's first characters, to tell keys apart; the key itself is never shown again."),
    scopes: z.array(z.enum(apiKeyScopes)),
    created_at: z.number().int(),
    last_used_at: z.number().int().nullable(),
    revoked_at: z.number().int().nullable(),
  })
  .describe("An API key, as its owner sees it.");
export const apiKeyCreatedSchema = apiKeySchema
  .extend({ key: z.string().describe("The key, `havn_sk_…`: shown this once.") })
  .describe("A new API key, with the key itself (shown once).");
export const apiKeyListSchema = z.object({ object: z.literal("list"), data: z.array(apiKeySchema) });
export const siweNonceSchema = z.object({ nonce: z.string(), expires_at: z.number().int() });
export const inviteSchema = z.object({
  code: z.string().describe("The invitation (shown once): `invite` in /auth/register."),
  expires_at: z.number().int(),
});

const reputationEntrySchema = z.object({
  node_key: z.string(),
  name: z.string(),
  score: z.number().describe("Its reputation now (seed 003): starts at 50, floor 10, decays 1 % a week."),
  online: z.boolean(),
  routed: z
    .boolean()
    .describe("Whether routing trusts it: a score at the routing floor (30) or above and no open breaker."),
  breaker_open_until: z.number().int().nullable().describe("Out of routing until then (epoch ms), when tripped."),
});
export const reputationListSchema = z
  .object({
    object: z.literal("list"),
    routing_floor: z.number(),
    data: z.array(reputationEntrySchema),
  })
  .describe("The leaderboard: every node with a score, best first.");
export const reputationEventsSchema = z
  .object({
    object: z.literal("reputation"),
    node: reputationEntrySchema,
    events: z.array(
      z.object({
        delta: z.number(),
        score: z.number().describe("The score after it."),
        cause: z.string().describe("completed, fast, timeout, invalid or failed."),
        job_id: z.string().nullable().describe("The job that caused it; null for a batch's tally of completions."),
        count: z.number().int().describe("How many like changes it stands for: completions are tallied per batch."),
        at: z.number().int(),
      }),
    ),
  })
  .describe("A node's score and its changes, newest first (100 at most).");
export const stakeSchema = z
  .object({
    object: z.literal("stake"),
    subject: z.string().describe("`node:<key>` or `validator:<account id>`."),
    bonded_uhai: uhai,
    unbonding: z
      .array(z.object({ amount_uhai: uhai, matures_at: z.number().int() }))
      .describe("Stake leaving its bond: still slashable, paid back to its owner at `matures_at`."),
    floor_uhai: uhai.describe(
      "What it must have bonded: its compute class's collateral floor, or the validator floor.",
    ),
    node: z
      .object({
        name: z.string(),
        compute_class: z.enum(computeClasses),
        promise: availabilityPromiseRequestSchema.nullable(),
        quarantined: z.boolean(),
        held: z.enum(["below_floor", "quarantined", "paused"]).nullable().describe("Null when offline."),
        slots: z
          .number()
          .int()
          .nullable()
          .describe("Slots routing fills now (its stake pays for them); null when offline."),
      })
      .nullable(),
  })
  .describe("Stake bonded to a node or a validator.");
export const stakeListSchema = z.object({ object: z.literal("list"), data: z.array(stakeSchema) });
export const stakeChangeSchema = z
  .object({
    object: z.literal("stake_change"),
    transaction: ledgerTransactionSchema,
    matures_at: z.number().int().nullable().describe("An unbond: when it is paid back."),
    stake: stakeSchema,
  })
  .describe("A bond or an unbond, and the stake after it.");
export const paramListSchema = z
  .object({
    object: z.literal("list"),
    data: z.array(
      z.object({
        name: z.string(),
        value: z.string().describe("Decimal digits (amounts are µHAI)."),
        unit: z.enum(["µHAI", "bp", "percent", "ms", "count"]),
        min: z.string(),
        max: z.string(),
        reason: z.string(),
        env: z.string().optional().describe("HavnAI's environment name, honoured at the first start."),
        updated_at: z.string().nullable(),
        updated_by: z.string().nullable().describe("`config`, `proposal:<id>` or `admin:<account>`."),
      }),
    ),
  })
  .describe("Every governance parameter with its value, unit, bounds and reason.");
const voteViewSchema = z.object({
  voter: z.string(),
  choice: z.enum(voteChoices),
  weight_uhai: uhai.describe("The voter's bonded stake when it voted."),
  at: z.number().int(),
});
export const proposalSchema = z
  .object({
    object: z.literal("proposal"),
    id: z.string(),
    proposer: z.string(),
    action: z.record(z.string(), z.unknown()),
    reason: z.string(),
    state: z.enum(proposalStates),
    by_admin: z.boolean(),
    created_at: z.number().int(),
    ends_at: z.number().int(),
    decided_at: z.number().int().nullable(),
    tally: z
      .object({ yes: uhai, no: uhai, abstain: uhai, eligible: uhai, outcome: z.string() })
      .nullable()
      .describe("Stake per choice, all bonded stake at the decision (quorum's denominator), and why it ended so."),
    votes: z.array(voteViewSchema).optional(),
  })
  .describe("A governance proposal (or an admin's act, recorded the same way).");
export const proposalListSchema = z.object({ object: z.literal("list"), data: z.array(proposalSchema) });
export const voteSchema = voteViewSchema
  .extend({ object: z.literal("vote"), proposal_id: z.string(), replayed: z.boolean() })
  .describe("A vote; the same vote again is a replay.");
export const poolSchema = z
  .object({
    object: z.literal("pool"),
    period: z.object({ start: z.number().int(), end: z.number().int() }),
    amount_uhai: uhai.describe("What this period's pool pays: the parameter, at most what the treasury holds."),
    shares: z
      .array(z.object({ node_key: z.string(), score: z.number(), completed: z.number().int(), amount_uhai: uhai }))
      .describe("What a snapshot now would pay: nodes with accepted results this period, by reputation share."),
    distributions: z.array(ledgerTransactionSchema).describe("Past periods' distributions, newest first."),
  })
  .describe("The monthly pool (seed 003).");
export const proposalIdParamsSchema = z.object({
  id: z
    .string()
    .regex(/^prop-[0-9a-f-]{36}$/)
    .describe("A proposal's id."),
});

export const nodeRefParamsSchema = z.object({
  node: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .describe("A node's key or name."),
});

/** Response bodies, named for the API document. */
export const responseSchemas = {
  Error: errorResponseSchema,
  Job: jobViewSchema,
  LogEntry: logEntrySchema,
  Health: healthSchema,
  Node: nodeViewSchema,
  NodeList: nodeListSchema,
  ModelList: modelListSchema,
  ChatCompletion: chatCompletionResponseSchema,
  Completion: completionResponseSchema,
  Account: accountSchema,
  Session: sessionSchema,
  Me: meSchema,
  ApiKey: apiKeySchema,
  ApiKeyCreated: apiKeyCreatedSchema,
  ApiKeyList: apiKeyListSchema,
  SiweNonce: siweNonceSchema,
  Invite: inviteSchema,
  Balance: balanceSchema,
  LedgerTransaction: ledgerTransactionSchema,
  LedgerTransactionList: ledgerTransactionListSchema,
  Stake: stakeSchema,
  StakeList: stakeListSchema,
  StakeChange: stakeChangeSchema,
  ParamList: paramListSchema,
  Proposal: proposalSchema,
  ProposalList: proposalListSchema,
  Vote: voteSchema,
  Pool: poolSchema,
} as const;

export const keyIdParamsSchema = z.object({
  id: z
    .string()
    .regex(/^key-[0-9a-f]{24}$/)
    .describe("An API key's id."),
});
