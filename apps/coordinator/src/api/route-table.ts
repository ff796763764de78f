import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { z } from "zod";
import type { ErrorCode } from "@havn/protocol";
import type { AuthLevel } from "../auth/auth-service.js";
import {
  apiKeyCreatedSchema,
  apiKeyListSchema,
  apiKeySchema,
  balanceSchema,
  chatCompletionResponseSchema,
  completionResponseSchema,
  healthSchema,
  inviteSchema,
  jobIdParamsSchema,
  jobViewSchema,
  coordinatorKeyListSchema,
  nodeRefParamsSchema,
  reputationEventsSchema,
  reputationListSchema,
  logEntrySchema,
  logProofSchema,
  logRangeSchema,
  signedLogHeadSchema,
  workflowEarningsSchema,
  workflowListSchema,
  workflowRefParamsSchema,
  workflowSchema,
  keyIdParamsSchema,
  ledgerTransactionListSchema,
  ledgerTransactionSchema,
  logSeqParamsSchema,
  meSchema,
  modelListSchema,
  nodeListSchema,
  outputParamsSchema,
  requestSchemas,
  sessionSchema,
  siweNonceSchema,
} from "./schemas.js";

/** One HTTP route: what it takes, what it answers, and the catalog errors it can answer with. */
export interface RouteSpec {
  readonly method: "GET" | "POST" | "DELETE";
  /** OpenAPI-style path (`/v1/jobs/{id}`). */
  readonly path: string;
  /** Older paths that answer the same, documented as deprecated. */
  readonly aliases?: readonly string[];
  readonly operationId: string;
  readonly tag: "OpenAI" | "Jobs" | "Log" | "Operators" | "Accounts" | "Ledger" | "Workflows";
  readonly summary: string;
  readonly description?: string;
  /** Who may call it (see `AuthLevel`); every route says, and a test walks them all. */
  readonly auth: AuthLevel;
  /** A body limit of its own, in bytes, below the coordinator's (`bodyLimitBytes`). */
  readonly bodyLimitBytes?: number;
  readonly params?: z.ZodObject;
  readonly body?: z.ZodType;
  /** The success answer: a schema (JSON), or a content type with a description. */
  readonly response:
    | { readonly schema: z.ZodType; readonly description: string; readonly stream?: string }
    | { readonly contentType: string; readonly description: string };
  readonly errors: readonly ErrorCode[];
}

/** What a credential-protected route may answer besides its own errors. */
const authErrors: readonly ErrorCode[] = ["AUTH_REQUIRED", "AUTH_INVALID", "AUTH_FORBIDDEN", "REQUEST_RATE_LIMITED"];
/** Small bodies: credentials and settings, never prompts. */
const smallBody = 16 * 1024;

/** Errors any route that reads a JSON body can answer with. */
const bodyErrors: readonly ErrorCode[] = [
  "REQUEST_MALFORMED_JSON",
  "REQUEST_INVALID",
  "REQUEST_TOO_LARGE",
  "REQUEST_UNSUPPORTED_MEDIA_TYPE",
];
/** Errors of every route that admits a job. */
const admissionErrors: readonly ErrorCode[] = [
  ...authErrors,
  ...bodyErrors,
  "REQUEST_IDEMPOTENCY_MISMATCH",
  "REQUEST_PROMPT_TOO_LONG",
  "MODEL_NOT_FOUND",
  "MODEL_TASK_UNSUPPORTED",
  "MODEL_REGISTRY_EMPTY",
  "LEDGER_INSUFFICIENT_FUNDS",
  "JOB_NO_CAPACITY",
  "JOB_FAILED",
  "JOB_TIMEOUT",
  "JOB_CANCELLED",
  "JOB_STREAM_INTERRUPTED",
  "REQUEST_SHUTTING_DOWN",
  "INTERNAL_ERROR",
];
const completionDescription =
  "Admits a job (written to the database before any answer), routes it to a node and answers when " +
  "it ends: the completion's `id` is the job id, and `havn` carries the co-signed receipt. With " +
  "`stream: true` the answer is server-sent events (`text/event-stream`): OpenAI's chunks, the last " +
  "one with `havn`, then `[DONE]`; an error after the first byte arrives as an event with `error`. " +
  "Send `x-request-id` to have it logged with the job and echoed back, and `Idempotency-Key` to make a " +
  "retry safe: the same key (per account, for 24 h) returns the same job — its stream or its answer — and " +
  "never runs it twice.";

/** Every route of the coordinator's HTTP API, in the order the document lists them. */
export const routes = {
  chatCompletions: {
    method: "POST",
    path: "/v1/chat/completions",
    operationId: "createChatCompletion",
    auth: "jobs",
    tag: "OpenAI",
    summary: "Chat completion (OpenAI-compatible), streamed or not",
    description: completionDescription,
    body: requestSchemas.ChatCompletionRequest,
    response: {
      schema: chatCompletionResponseSchema,
      description: "The completion, or (stream) server-sent chunks.",
      stream: "text/event-stream",
    },
    errors: admissionErrors,
  },
  completions: {
    method: "POST",
    path: "/v1/completions",
    operationId: "createCompletion",
    auth: "jobs",
    tag: "OpenAI",
    summary: "Text completion (OpenAI-compatible), streamed or not",
    description: completionDescription,
    body: requestSchemas.CompletionRequest,
    response: {
      schema: completionResponseSchema,
      description: "The completion, or (stream) server-sent chunks.",
      stream: "text/event-stream",
    },
    errors: admissionErrors,
  },
  models: {
    method: "GET",
    path: "/v1/models",
    operationId: "listModels",
    auth: "jobs",
    tag: "OpenAI",
    summary: "Models a node can serve now",
    description: "Only models at least one available node serves; `model: auto` picks among registry models.",
    response: { schema: modelListSchema, description: "The models." },
    errors: authErrors,
  },
  getJob: {
    method: "GET",
    path: "/v1/jobs/{id}",
    aliases: ["/jobs/{id}"],
    operationId: "getJob",
    auth: "jobs",
    tag: "Jobs",
    summary: "A job: status, output, co-signed receipt, routing decision",
    params: jobIdParamsSchema,
    response: { schema: jobViewSchema, description: "The job." },
    errors: [...authErrors, "JOB_NOT_FOUND"],
  },
  cancelJob: {
    method: "POST",
    path: "/v1/jobs/{id}/cancel",
    aliases: ["/jobs/{id}/cancel"],
    operationId: "cancelJob",
    auth: "jobs",
    tag: "Jobs",
    summary: "Cancel a job that has not ended (again: no change)",
    params: jobIdParamsSchema,
    response: { schema: jobViewSchema, description: "The job, cancelled." },
    errors: [...authErrors, "JOB_NOT_FOUND", "JOB_ILLEGAL_TRANSITION"],
  },
  deleteJob: {
    method: "DELETE",
    path: "/v1/jobs/{id}",
    operationId: "deleteJobData",
    auth: "jobs",
    tag: "Jobs",
    summary: "Delete a job's prompt and output now (a running job is cancelled first)",
    description:
      "Leaves the hashes, the receipt and the log entry: the job still proves it ran. Retention does the same " +
      "by itself after `retentionMs`.",
    params: jobIdParamsSchema,
    response: { schema: jobViewSchema, description: "The job, its data deleted." },
    errors: [...authErrors, "JOB_NOT_FOUND"],
  },
  publishJob: {
    method: "POST",
    path: "/v1/jobs/{id}/visibility",
    operationId: "setJobOutputVisibility",
    auth: "jobs",
    tag: "Jobs",
    summary: "Make a job's output readable by anyone who knows its CID, or not",
    params: jobIdParamsSchema,
    body: requestSchemas.PublishRequest,
    bodyLimitBytes: smallBody,
    response: { schema: jobViewSchema, description: "The job." },
    errors: [...authErrors, ...bodyErrors, "JOB_NOT_FOUND"],
  },
  getOutput: {
    method: "GET",
    path: "/v1/outputs/{cid}",
    aliases: ["/outputs/{cid}"],
    operationId: "getOutput",
    auth: "optional",
    tag: "Jobs",
    summary: "An output's bytes by content id: its job's owner's, or one made public",
    params: outputParamsSchema,
    response: { contentType: "application/octet-stream", description: "The bytes whose CIDv1 is `cid`." },
    errors: ["AUTH_INVALID", "OUTPUT_NOT_FOUND"],
  },
  getLogEntry: {
    method: "GET",
    path: "/v1/log/{seq}",
    aliases: ["/log/{seq}"],
    operationId: "getLogEntry",
    auth: "public",
    tag: "Log",
    summary: "One entry of the hash-chained execution log",
    params: logSeqParamsSchema,
    response: { schema: logEntrySchema, description: "The entry." },
    errors: ["LOG_ENTRY_NOT_FOUND"],
  },
  logRange: {
    method: "GET",
    path: "/v1/log",
    operationId: "getLogRange",
    auth: "public",
    tag: "Log",
    summary: "A range of the execution log (`?from=&to=`, at most 1 000 entries), its periods and the signed head",
    description:
      "Everything `havn log verify` needs to check the range offline with the key set (`GET /v1/keys`): each " +
      "entry's co-signed receipt and chain link, the sealed periods' signed Merkle roots, the signed head. Hashes, " +
      "ids and counts only: no prompt or output.",
    response: { schema: logRangeSchema, description: "The range." },
    errors: ["REQUEST_INVALID"],
  },
  logHead: {
    method: "GET",
    path: "/v1/log/head",
    operationId: "getLogHead",
    auth: "public",
    tag: "Log",
    summary: "The newest entry of the execution log, signed now",
    response: { schema: signedLogHeadSchema, description: "The signed head." },
    errors: [],
  },
  logProof: {
    method: "GET",
    path: "/v1/log/proof/{id}",
    operationId: "getLogProof",
    auth: "public",
    tag: "Log",
    summary: "An inclusion proof: a job's entry under its sealed period's signed Merkle root",
    params: jobIdParamsSchema,
    response: { schema: logProofSchema, description: "The proof." },
    errors: ["LOG_ENTRY_NOT_FOUND", "LOG_PROOF_PENDING"],
  },
  publishWorkflow: {
    method: "POST",
    path: "/v1/workflows",
    operationId: "publishWorkflow",
    auth: "jobs",
    tag: "Workflows",
    summary: "Publish a workflow version: model, template, parameters, royalty split, dependencies",
    description:
      "Versions are immutable. A copy (the same content as another creator's workflow) or a declared `parent` is " +
      "traced to its origin, which is paid as its dependency. Every run of it splits its charge by `royalties` " +
      "(default 45 creator / 20 upstream / 25 node / 5 validators / 5 treasury).",
    body: requestSchemas.WorkflowManifest,
    bodyLimitBytes: smallBody * 4,
    response: { schema: workflowSchema, description: "The published workflow." },
    errors: [...authErrors, ...bodyErrors, "WORKFLOW_INVALID", "WORKFLOW_VERSION_EXISTS", "WORKFLOW_NAME_TAKEN"],
  },
  listWorkflows: {
    method: "GET",
    path: "/v1/workflows",
    operationId: "listWorkflows",
    auth: "jobs",
    tag: "Workflows",
    summary: "Published workflows, newest first (`?mine=true`: yours)",
    response: { schema: workflowListSchema, description: "The workflows." },
    errors: authErrors,
  },
  getWorkflow: {
    method: "GET",
    path: "/v1/workflows/{ref}",
    operationId: "getWorkflow",
    auth: "jobs",
    tag: "Workflows",
    summary: "A workflow, by id, `name` (its newest version) or `name@version`",
    params: workflowRefParamsSchema,
    response: { schema: workflowSchema, description: "The workflow." },
    errors: [...authErrors, "WORKFLOW_NOT_FOUND"],
  },
  workflowEarnings: {
    method: "GET",
    path: "/v1/workflows/{ref}/earnings",
    operationId: "getWorkflowEarnings",
    auth: "jobs",
    tag: "Workflows",
    summary: "What a workflow earned its creator, across how many runs",
    params: workflowRefParamsSchema,
    response: { schema: workflowEarningsSchema, description: "Its earnings." },
    errors: [...authErrors, "WORKFLOW_NOT_FOUND"],
  },
  flagWorkflow: {
    method: "POST",
    path: "/v1/admin/workflows/{ref}/flag",
    operationId: "flagWorkflow",
    auth: "admin",
    tag: "Workflows",
    summary: "Admins: flag a workflow (it stops running, its royalties are held) or clear the flag (they are paid)",
    params: workflowRefParamsSchema,
    body: requestSchemas.WorkflowFlagRequest,
    bodyLimitBytes: smallBody,
    response: { schema: workflowSchema, description: "The workflow." },
    errors: [...authErrors, ...bodyErrors, "WORKFLOW_NOT_FOUND"],
  },
  reputation: {
    method: "GET",
    path: "/v1/reputation",
    operationId: "reputationLeaderboard",
    auth: "public",
    tag: "Operators",
    summary: "Every node's reputation, best first, and whether routing trusts it",
    response: { schema: reputationListSchema, description: "The leaderboard." },
    errors: [],
  },
  nodeReputation: {
    method: "GET",
    path: "/v1/reputation/{node}",
    operationId: "nodeReputation",
    auth: "public",
    tag: "Operators",
    summary: "One node's reputation and every change to it, with its cause",
    params: nodeRefParamsSchema,
    response: { schema: reputationEventsSchema, description: "Its score and its events." },
    errors: ["NODE_NOT_FOUND"],
  },
  coordinatorKeys: {
    method: "GET",
    path: "/v1/keys",
    operationId: "listCoordinatorKeys",
    auth: "public",
    tag: "Log",
    summary: "The network's coordinator keys, with validity periods: what receipts, periods and heads are signed with",
    response: { schema: coordinatorKeyListSchema, description: "The key set." },
    errors: [],
  },
  register: {
    method: "POST",
    path: "/auth/register",
    operationId: "register",
    auth: "public",
    tag: "Accounts",
    summary: "Create an account with an email and a password (open, or by invitation)",
    body: requestSchemas.RegisterRequest,
    bodyLimitBytes: smallBody,
    response: { schema: sessionSchema, description: "The account, signed in." },
    errors: [
      ...bodyErrors,
      "AUTH_EMAIL_TAKEN",
      "AUTH_REGISTRATION_CLOSED",
      "AUTH_INVITE_INVALID",
      "REQUEST_RATE_LIMITED",
    ],
  },
  login: {
    method: "POST",
    path: "/auth/login",
    operationId: "login",
    auth: "public",
    tag: "Accounts",
    summary: "Sign in with an email and a password",
    body: requestSchemas.LoginRequest,
    bodyLimitBytes: smallBody,
    response: { schema: sessionSchema, description: "The account and its tokens." },
    errors: [...bodyErrors, "AUTH_LOGIN_FAILED", "REQUEST_RATE_LIMITED"],
  },
  refresh: {
    method: "POST",
    path: "/auth/refresh",
    operationId: "refresh",
    auth: "public",
    tag: "Accounts",
    summary: "Spend a refresh token for a new access and refresh token (each refresh token works once)",
    body: requestSchemas.RefreshRequest,
    bodyLimitBytes: smallBody,
    response: { schema: sessionSchema, description: "New tokens." },
    errors: [...bodyErrors, "AUTH_REFRESH_INVALID", "REQUEST_RATE_LIMITED"],
  },
  logout: {
    method: "POST",
    path: "/auth/logout",
    operationId: "logout",
    auth: "public",
    tag: "Accounts",
    summary: "End the login a refresh token belongs to",
    body: requestSchemas.RefreshRequest,
    bodyLimitBytes: smallBody,
    response: { contentType: "application/json", description: "`{}`" },
    errors: [...bodyErrors, "REQUEST_RATE_LIMITED"],
  },
  me: {
    method: "GET",
    path: "/auth/me",
    operationId: "me",
    auth: "account",
    tag: "Accounts",
    summary: "Who the credential acts as, and what it may do",
    response: { schema: meSchema, description: "The account and the credential's scopes." },
    errors: authErrors,
  },
  siweNonce: {
    method: "POST",
    path: "/auth/siwe/nonce",
    operationId: "siweNonce",
    auth: "public",
    tag: "Accounts",
    summary: "A nonce for a Sign-In with Ethereum message (single use, a few minutes)",
    response: { schema: siweNonceSchema, description: "The nonce." },
    errors: ["REQUEST_RATE_LIMITED"],
  },
  siweVerify: {
    method: "POST",
    path: "/auth/siwe/verify",
    operationId: "siweVerify",
    auth: "optional",
    tag: "Accounts",
    summary: "Sign in with a wallet (EIP-4361), or, signed in, bind the wallet to the account",
    body: requestSchemas.SiweVerifyRequest,
    bodyLimitBytes: smallBody,
    response: { schema: sessionSchema, description: "The wallet's account, signed in (binding answers `Me`)." },
    errors: [
      ...bodyErrors,
      "AUTH_INVALID",
      "AUTH_SIWE_INVALID",
      "AUTH_WALLET_TAKEN",
      "AUTH_REGISTRATION_CLOSED",
      "REQUEST_RATE_LIMITED",
    ],
  },
  createKey: {
    method: "POST",
    path: "/v1/api-keys",
    operationId: "createApiKey",
    auth: "owner",
    tag: "Accounts",
    summary: "Create an API key (`havn_sk_…`, shown once): a login, or an admin-scoped key",
    body: requestSchemas.CreateKeyRequest,
    bodyLimitBytes: smallBody,
    response: { schema: apiKeyCreatedSchema, description: "The key." },
    errors: [...authErrors, ...bodyErrors],
  },
  listKeys: {
    method: "GET",
    path: "/v1/api-keys",
    operationId: "listApiKeys",
    auth: "owner",
    tag: "Accounts",
    summary: "The account's API keys (never the keys themselves)",
    response: { schema: apiKeyListSchema, description: "The keys." },
    errors: authErrors,
  },
  revokeKey: {
    method: "DELETE",
    path: "/v1/api-keys/{id}",
    operationId: "revokeApiKey",
    auth: "owner",
    tag: "Accounts",
    summary: "Revoke an API key: it stops working at once",
    params: keyIdParamsSchema,
    response: { schema: apiKeySchema, description: "The key, revoked." },
    errors: [...authErrors, "AUTH_KEY_NOT_FOUND"],
  },
  createInvite: {
    method: "POST",
    path: "/v1/admin/invites",
    operationId: "createInvite",
    auth: "admin",
    tag: "Accounts",
    summary: "An invitation to register (admins), for a coordinator whose registration is by invite",
    body: requestSchemas.InviteRequest,
    bodyLimitBytes: smallBody,
    response: { schema: inviteSchema, description: "The invitation (shown once)." },
    errors: [...authErrors, ...bodyErrors],
  },
  balance: {
    method: "GET",
    path: "/v1/balance",
    operationId: "getBalance",
    auth: "account",
    tag: "Ledger",
    summary: "What the account holds (its wallet's balance, or its custodial one), and its pending withdrawals",
    response: { schema: balanceSchema, description: "The balance." },
    errors: authErrors,
  },
  ledgerTransactions: {
    method: "GET",
    path: "/v1/ledger/transactions",
    operationId: "listLedgerTransactions",
    auth: "account",
    tag: "Ledger",
    summary: "The account's ledger transactions, newest first (100; `?before=<epoch ms>` pages back)",
    response: { schema: ledgerTransactionListSchema, description: "Transactions with their postings." },
    errors: authErrors,
  },
  faucet: {
    method: "POST",
    path: "/v1/faucet",
    operationId: "useFaucet",
    auth: "account",
    tag: "Ledger",
    summary: "Dev mode only: new $HAI for the caller",
    response: { schema: ledgerTransactionSchema, description: "The transaction." },
    errors: [...authErrors, "LEDGER_FAUCET_DISABLED"],
  },
  withdraw: {
    method: "POST",
    path: "/v1/withdrawals",
    operationId: "requestWithdrawal",
    auth: "owner",
    tag: "Ledger",
    summary: "Ask to withdraw: the amount moves to pending payouts, paid out later (a login, or an admin key)",
    body: requestSchemas.WithdrawRequest,
    bodyLimitBytes: smallBody,
    response: { schema: ledgerTransactionSchema, description: "The transaction." },
    errors: [...authErrors, ...bodyErrors, "LEDGER_INSUFFICIENT_FUNDS"],
  },
  listWithdrawals: {
    method: "GET",
    path: "/v1/withdrawals",
    operationId: "listWithdrawals",
    auth: "account",
    tag: "Ledger",
    summary: "The account's withdrawal requests, newest first",
    response: { schema: ledgerTransactionListSchema, description: "Withdrawals." },
    errors: authErrors,
  },
  adminCredit: {
    method: "POST",
    path: "/v1/admin/ledger/credit",
    operationId: "adminCredit",
    auth: "admin",
    tag: "Ledger",
    summary: "Admins: add $HAI to an account or wallet, with a reason (standing in for deposits)",
    body: requestSchemas.AdminLedgerRequest,
    bodyLimitBytes: smallBody,
    response: { schema: ledgerTransactionSchema, description: "The transaction." },
    errors: [...authErrors, ...bodyErrors],
  },
  adminDebit: {
    method: "POST",
    path: "/v1/admin/ledger/debit",
    operationId: "adminDebit",
    auth: "admin",
    tag: "Ledger",
    summary: "Admins: take $HAI from an account or wallet into the treasury, with a reason",
    body: requestSchemas.AdminLedgerRequest,
    bodyLimitBytes: smallBody,
    response: { schema: ledgerTransactionSchema, description: "The transaction." },
    errors: [...authErrors, ...bodyErrors, "LEDGER_INSUFFICIENT_FUNDS"],
  },
  adminSettlement: {
    method: "POST",
    path: "/v1/admin/jobs/{id}/settlement",
    operationId: "adminSettlement",
    auth: "admin",
    tag: "Ledger",
    summary: "Admins: hold a completed job's settlement, or release a hold (settle it, or refund the payer)",
    params: jobIdParamsSchema,
    body: requestSchemas.AdminSettlementRequest,
    bodyLimitBytes: smallBody,
    response: { schema: jobViewSchema, description: "The job, with its money and postings." },
    errors: [...authErrors, ...bodyErrors, "JOB_NOT_FOUND", "LEDGER_SETTLEMENT_CONFLICT", "LEDGER_DISABLED"],
  },
  nodes: {
    method: "GET",
    path: "/v1/nodes",
    operationId: "listNodes",
    auth: "admin",
    tag: "Operators",
    summary: "Every node this coordinator knows: state, backend health, slots in use, last heartbeat",
    response: { schema: nodeListSchema, description: "Connected nodes first, then offline ones." },
    errors: authErrors,
  },
  health: {
    method: "GET",
    path: "/health",
    operationId: "getHealth",
    auth: "public",
    tag: "Operators",
    summary: "ok, degraded (no node, unserved queued models, unavailable nodes) or failing (the store)",
    description: "HTTP 200 for `ok` and `degraded`, 503 for `failing`, with the reasons in `reasons`.",
    response: { schema: healthSchema, description: "`ok` or `degraded` (503 carries the same body, `failing`)." },
    errors: [],
  },
  metrics: {
    method: "GET",
    path: "/metrics",
    operationId: "getMetrics",
    auth: "metrics",
    tag: "Operators",
    summary: "Prometheus metrics (text format): a `metrics`-scoped key (Prometheus' `authorization` setting)",
    response: { contentType: "text/plain; version=0.0.4", description: "Metrics in Prometheus text format." },
    errors: authErrors,
  },
  openapi: {
    method: "GET",
    path: "/openapi.json",
    operationId: "getOpenApiDocument",
    auth: "public",
    tag: "Operators",
    summary: "This document",
    response: { contentType: "application/json", description: "The OpenAPI 3.1 document." },
    errors: [],
  },
  docs: {
    method: "GET",
    path: "/docs",
    operationId: "getDocs",
    auth: "public",
    tag: "Operators",
    summary: "This document, rendered for people",
    response: { contentType: "text/html", description: "An HTML page." },
    errors: [],
  },
} as const satisfies Record<string, RouteSpec>;

/** `/v1/jobs/{id}` → `/v1/jobs/:id`. */
const fastifyPath = (path: string) => path.replace(/\{(\w+)\}/g, ":$1");

/**
 * Registers a route of the table on its path and on its aliases. Path parameters are parsed by
 * the route's own schema (the one the document shows); a parameter that does not match is
 * answered with `invalidParams`' error.
 */
export function registerRoute<P = Record<string, never>>(
  app: FastifyInstance,
  spec: RouteSpec,
  handler: (request: FastifyRequest, reply: FastifyReply, params: P) => unknown,
  invalidParams?: (raw: Record<string, string>) => Error,
): void {
  const run = async (request: FastifyRequest, reply: FastifyReply) => {
    let params = {} as P;
    if (spec.params) {
      const parsed = spec.params.safeParse(request.params);
      if (!parsed.success) throw invalidParams?.(request.params as Record<string, string>) ?? parsed.error;
      params = parsed.data as P;
    }
    return handler(request, reply, params);
  };
  for (const path of [spec.path, ...(spec.aliases ?? [])]) {
    app.route({
      method: spec.method,
      url: fastifyPath(path),
      handler: run,
      config: { auth: spec.auth },
      ...(spec.bodyLimitBytes ? { bodyLimit: spec.bodyLimitBytes } : {}),
    });
  }
}
