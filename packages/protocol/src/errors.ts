/**
 * The one error catalog. Every error that crosses a process boundary carries one of these codes,
 * its HTTP status and whether retrying can help, so no caller guesses. Codes are grouped by area
 * prefix; a retired code is never reused. `docs/errors.md` is kept in step by a test.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly retryable: boolean;
  readonly description: string;
}

export const errorCatalog = {
  // REQUEST_: the request itself is wrong.
  REQUEST_MALFORMED_JSON: { status: 400, retryable: false, description: "The body is not valid JSON." },
  REQUEST_INVALID: {
    status: 400,
    retryable: false,
    description: "The body or query does not match the schema; `details` lists each problem.",
  },
  REQUEST_UNSUPPORTED_MEDIA_TYPE: { status: 415, retryable: false, description: "The body is not `application/json`." },
  REQUEST_TOO_LARGE: { status: 413, retryable: false, description: "The body exceeds the coordinator's size limit." },
  REQUEST_HEADERS_TOO_LARGE: {
    status: 431,
    retryable: false,
    description: "The request's headers exceed the HTTP server's size limit.",
  },
  REQUEST_TIMEOUT: {
    status: 408,
    retryable: true,
    description: "The request's headers and body did not arrive within the coordinator's receive time.",
  },
  REQUEST_PROMPT_TOO_LONG: {
    status: 400,
    retryable: false,
    description: "The prompt exceeds the configured prompt limit.",
  },
  REQUEST_ROUTE_NOT_FOUND: { status: 404, retryable: false, description: "No such route." },
  REQUEST_METHOD_NOT_ALLOWED: {
    status: 405,
    retryable: false,
    description: "The route exists but not for this method.",
  },
  REQUEST_RATE_LIMITED: {
    status: 429,
    retryable: true,
    description: "Too many requests; retry after the `Retry-After` delay.",
  },
  REQUEST_IDEMPOTENCY_MISMATCH: {
    status: 422,
    retryable: false,
    description: "This `Idempotency-Key` was used for a different request; use a new key for a new request.",
  },
  REQUEST_SHUTTING_DOWN: {
    status: 503,
    retryable: true,
    description:
      "The coordinator is shutting down; accepted jobs are kept and run when it is back — poll `GET /v1/jobs/{id}`.",
  },
  // CONFIG_: starting a process with the options it was given.
  CONFIG_INVALID: {
    status: 400,
    retryable: false,
    description: "An option or flag has a value havn cannot use; the message names the fix.",
  },
  CONFIG_PORT_IN_USE: {
    status: 500,
    retryable: false,
    description: "The port to listen on is taken by another process; stop it or choose another port.",
  },
  CONFIG_INSECURE: {
    status: 500,
    retryable: false,
    description: "The coordinator refused to start in a way that would let strangers in; the message names the fix.",
  },
  CONFIG_LISTEN_FAILED: {
    status: 500,
    retryable: false,
    description: "The process could not listen on the address and port it was given.",
  },
  // COORDINATOR_: reaching a coordinator.
  COORDINATOR_UNREACHABLE: {
    status: 503,
    retryable: true,
    description: "Nothing answered at the coordinator URL (wrong URL, or the coordinator is down).",
  },
  // STORE_: the coordinator's database.
  STORE_UNAVAILABLE: {
    status: 503,
    retryable: true,
    description: "The coordinator's database did not answer; `/health` reports `failing`.",
  },
  // MODEL_: model resolution.
  MODEL_NOT_FOUND: {
    status: 404,
    retryable: false,
    description: "The model is neither in the registry nor advertised by any node.",
  },
  MODEL_PAUSED: {
    status: 403,
    retryable: false,
    description:
      "Governance paused or flagged this model name: no new jobs run on it until a proposal (or, in an emergency, an admin) lifts it.",
  },
  MODEL_TASK_UNSUPPORTED: {
    status: 400,
    retryable: false,
    description: "The model exists but does not serve this kind of task.",
  },
  MODEL_REGISTRY_EMPTY: {
    status: 503,
    retryable: true,
    description: '`model: "auto"` found no model for this task type.',
  },
  // JOB_: the life of a job.
  JOB_NOT_FOUND: { status: 404, retryable: false, description: "No job with this id." },
  OUTPUT_NOT_FOUND: { status: 404, retryable: false, description: "No stored output has this content id." },
  LOG_PROOF_PENDING: {
    status: 409,
    retryable: true,
    description:
      "The job's log entry is not in a sealed period yet; periods are sealed every `log.periodMs` (60 s by default). Retry after `Retry-After` seconds.",
  },
  LOG_ENTRY_NOT_FOUND: {
    status: 404,
    retryable: false,
    description: "The execution log has no entry at this position (positions start at 1).",
  },
  JOB_NO_CAPACITY: {
    status: 503,
    retryable: true,
    description: "No eligible node came online within the job's queue wait.",
  },
  JOB_TIMEOUT: {
    status: 504,
    retryable: true,
    description: "The job did not finish within the request timeout; it keeps running — poll `GET /v1/jobs/{id}`.",
  },
  JOB_FAILED: {
    status: 502,
    retryable: true,
    description: "Every attempt failed; `details` carries the last node error.",
  },
  JOB_CANCELLED: { status: 409, retryable: false, description: "The job was cancelled." },
  JOB_STREAM_INTERRUPTED: {
    status: 502,
    retryable: true,
    description: "The node streaming this job was lost and the retry could not continue the same text.",
  },
  JOB_ILLEGAL_TRANSITION: {
    status: 409,
    retryable: false,
    description: "The job is not in a state that allows this change.",
  },
  // NODE_: the node gateway.
  NODE_AUTH_FAILED: {
    status: 401,
    retryable: false,
    description: "The node's hello signature does not verify with its key.",
  },
  NODE_PROTOCOL_VIOLATION: {
    status: 400,
    retryable: false,
    description: "A node message is malformed or out of order.",
  },
  NODE_PROTOCOL_VERSION: {
    status: 426,
    retryable: false,
    description:
      "The node speaks another version of the node protocol than the coordinator (version 2 carries receipts version 2): upgrade havn on the node.",
  },
  NODE_NOT_FOUND: {
    status: 404,
    retryable: false,
    description: "No node with this key or name has joined this network.",
  },
  NODE_LEASE_CONFLICT: {
    status: 409,
    retryable: false,
    description: "The attempt is stale: the job was re-leased or already finished.",
  },
  NODE_LOST: { status: 502, retryable: true, description: "The node went offline while running the job." },
  NODE_KEY_IN_USE: {
    status: 409,
    retryable: false,
    description:
      "Another live connection already uses this node key; each node needs its own key (its own `--data-dir`).",
  },
  NODE_CREDENTIAL_REQUIRED: {
    status: 401,
    retryable: false,
    description: "A node joins with an operator's `node`-scoped API key or the network's join token.",
  },
  NODE_KEY_OWNED: {
    status: 409,
    retryable: false,
    description: "This node key belongs to another account.",
  },
  NODE_NAME_TAKEN: {
    status: 409,
    retryable: false,
    description: "Another node key already registered this node name.",
  },
  // AUTH_: identities and keys.
  AUTH_REQUIRED: {
    status: 401,
    retryable: false,
    description: "The route needs a credential: `Authorization: Bearer <API key or access token>`.",
  },
  AUTH_INVALID: {
    status: 401,
    retryable: false,
    description: "The credential is not one this coordinator issued, or it expired or was revoked.",
  },
  AUTH_FORBIDDEN: {
    status: 403,
    retryable: false,
    description: "The credential is valid but lacks the scope or role the route needs.",
  },
  AUTH_KEY_NOT_FOUND: { status: 404, retryable: false, description: "This account has no API key with this id." },
  AUTH_LOGIN_FAILED: { status: 401, retryable: false, description: "The email or the password is wrong." },
  AUTH_EMAIL_TAKEN: { status: 409, retryable: false, description: "An account already has this email." },
  AUTH_WALLET_TAKEN: { status: 409, retryable: false, description: "Another account already holds this wallet." },
  AUTH_WALLET_BOUND: {
    status: 409,
    retryable: false,
    description: "This account already has another wallet; an account holds one, never silently replaced.",
  },
  AUTH_KEY_LIMIT: {
    status: 409,
    retryable: false,
    description: "The account holds as many live API keys as it may (100): revoke one first.",
  },
  AUTH_REGISTRATION_CLOSED: {
    status: 403,
    retryable: false,
    description: "Registration on this coordinator needs an invitation (`invite`).",
  },
  AUTH_INVITE_INVALID: {
    status: 403,
    retryable: false,
    description: "The invitation is unknown, used or expired.",
  },
  AUTH_REFRESH_INVALID: {
    status: 401,
    retryable: false,
    description: "The refresh token is unknown, expired, revoked or was used before (its login is now revoked).",
  },
  AUTH_SIWE_INVALID: {
    status: 401,
    retryable: false,
    description: "The Sign-In with Ethereum message or signature does not verify (domain, nonce, time or signer).",
  },
  AUTH_KEY_FILE_INSECURE: {
    status: 500,
    retryable: false,
    description: "A key file is readable by other users; fix its mode to 0600.",
  },
  AUTH_KEY_FILE_INVALID: {
    status: 500,
    retryable: false,
    description: "A key file exists but does not hold an Ed25519 key.",
  },
  // RECEIPT_: verification of what a node reports.
  RECEIPT_INVALID: {
    status: 422,
    retryable: false,
    description: "The receipt's signature or fields do not match the job and its output.",
  },
  RECEIPT_SIGNATURE_INVALID: { status: 422, retryable: false, description: "A receipt signature does not verify." },
  // BACKEND_: inference backends.
  BACKEND_UNAVAILABLE: {
    status: 502,
    retryable: true,
    description: "The inference backend could not be reached or answered an error.",
  },
  BACKEND_UNSUPPORTED: {
    status: 501,
    retryable: false,
    description: "The backend cannot do this operation (for example, scoring).",
  },
  BACKEND_MODEL_NOT_LOADED: { status: 404, retryable: false, description: "The backend does not serve this model." },
  BACKEND_URL_INVALID: {
    status: 400,
    retryable: false,
    description: "The backend URL is not an OpenAI-compatible base URL (it must end in `/v1`).",
  },
  BACKEND_NOT_OPENAI_COMPATIBLE: {
    status: 502,
    retryable: false,
    description: "The server at the backend URL answered, but not as an OpenAI-compatible API.",
  },
  BACKEND_MODEL_FILE_UNREADABLE: {
    status: 400,
    retryable: false,
    description: "The model file is missing, unreadable, or not a GGUF file.",
  },
  // INTERNAL_: our fault.
  // WORKFLOW_: the workflow registry.
  WORKFLOW_NOT_FOUND: { status: 404, retryable: false, description: "No workflow with this id or name." },
  WORKFLOW_INVALID: {
    status: 400,
    retryable: false,
    description:
      "The workflow manifest is not valid: a field, its royalty split (must sum to 100), its dependencies (must exist, shares summing to 100) or its parent.",
  },
  WORKFLOW_VERSION_EXISTS: {
    status: 409,
    retryable: false,
    description: "This name and version is published already; versions are immutable: publish a new version.",
  },
  WORKFLOW_NAME_TAKEN: {
    status: 409,
    retryable: false,
    description: "Another creator published a workflow under this name; choose another name.",
  },
  WORKFLOW_FLAGGED: {
    status: 403,
    retryable: false,
    description: "This workflow is flagged: it does not run, and its royalties are held, until the flag is cleared.",
  },
  // LEDGER_: money.
  LEDGER_INSUFFICIENT_FUNDS: {
    status: 402,
    retryable: false,
    description:
      "The payer's balance does not cover the job's maximum cost (its escrow); `details` has the balance and what was needed. Nothing was queued.",
  },
  LEDGER_INVALID: {
    status: 400,
    retryable: false,
    description:
      "A ledger transaction that cannot be posted: postings that do not sum to zero, or an amount out of range.",
  },
  LEDGER_SETTLEMENT_CONFLICT: {
    status: 409,
    retryable: false,
    description:
      "The job's money is not where this change starts: a hold needs a charged job not yet settled; settling or refunding a hold needs a held job.",
  },
  LEDGER_DISABLED: {
    status: 404,
    retryable: false,
    description: "This network runs free (`ledger.enabled` is false): no money moves.",
  },
  LEDGER_FAUCET_DISABLED: {
    status: 403,
    retryable: false,
    description: "The faucet exists in dev mode only.",
  },
  // STAKE_: bonds, unbonding and slashing.
  STAKE_FORBIDDEN: {
    status: 403,
    retryable: false,
    description: "Only the account that operates a node (or an admin) may bond or unbond its stake.",
  },
  STAKE_INSUFFICIENT: {
    status: 409,
    retryable: false,
    description: "Less is bonded than this unbond asks for; `details` has what is bonded.",
  },
  // GOVERNANCE_: parameters, proposals and votes.
  GOVERNANCE_INVALID: {
    status: 400,
    retryable: false,
    description:
      "A proposal that cannot execute: an unknown parameter, a value out of its bounds, a split that does not sum to 10 000, an unknown node or workflow; `details` lists the problems.",
  },
  GOVERNANCE_NO_STAKE: {
    status: 403,
    retryable: false,
    description: "Proposing and voting are weighted by bonded stake: this account has none bonded.",
  },
  GOVERNANCE_ADMIN_FORBIDDEN: {
    status: 403,
    retryable: false,
    description:
      "An admin acts without a vote only in dev mode, or in production for emergencies (pausing or resuming a node or a model, flagging): anything else is a proposal.",
  },
  GOVERNANCE_PROPOSAL_NOT_FOUND: { status: 404, retryable: false, description: "No proposal has this id." },
  GOVERNANCE_VOTING_CLOSED: {
    status: 409,
    retryable: false,
    description: "The proposal's voting period is over (or it was decided); votes are no longer taken.",
  },
  GOVERNANCE_ALREADY_VOTED: {
    status: 409,
    retryable: false,
    description: "This account already voted another way on this proposal; a vote is final.",
  },
  INTERNAL_ERROR: {
    status: 500,
    retryable: true,
    description: "An unexpected error inside havn; the log has the correlation id.",
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCatalog;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(errorCatalog, code);
}

/** The JSON form of an error on every surface. */
export interface ErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  readonly details?: unknown;
}

/**
 * An error that reads like a bug report: a short message, then context lines (`Job: …`), and a
 * code from the catalog that decides status and retryability.
 */
export class HavnError extends Error {
  override readonly name = "HavnError";
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: unknown;
  readonly context: Readonly<Record<string, string | number>>;
  readonly shortMessage: string;

  constructor(
    code: ErrorCode,
    shortMessage: string,
    options: { context?: Record<string, string | number>; details?: unknown; cause?: unknown } = {},
  ) {
    const context = options.context ?? {};
    const lines = Object.entries(context).map(([k, v]) => `${k}: ${v}`);
    super([shortMessage, ...lines].join("\n"), { cause: options.cause });
    const spec = errorCatalog[code];
    this.code = code;
    this.status = spec.status;
    this.retryable = spec.retryable;
    this.details = options.details;
    this.context = context;
    this.shortMessage = shortMessage;
  }

  toBody(): ErrorBody {
    return {
      code: this.code,
      message: this.shortMessage,
      retryable: this.retryable,
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }

  /** Rebuilds an error that crossed the wire. */
  static fromBody(body: { code: string; message: string; details?: unknown }): HavnError {
    const code = isErrorCode(body.code) ? body.code : "INTERNAL_ERROR";
    return new HavnError(code, body.message, { details: body.details });
  }
}
