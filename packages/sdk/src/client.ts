import { createParser } from "eventsource-parser";
// The zod-free core: the schemas cost ~120 ms to import, and a client validates none.
import {
  checkKeySet,
  contentId,
  HavnError,
  inputCommitment,
  keyAt,
  keyId,
  logEntryHash,
  verifyCosignedReceipt,
  verifyInclusionProof,
} from "@havn/protocol/core";
import type {
  ChatMessage,
  CoordinatorKeyView,
  CosignedReceipt,
  ErrorBody,
  JobInput,
  JobOutput,
  LogEntryView,
  LogInclusionProof,
  ReceiptVerification,
  SignedLogHead,
  SignedLogPeriod,
} from "@havn/protocol";

export interface HavnClientOptions {
  /** The coordinator's base URL, e.g. `http://127.0.0.1:8787`. */
  readonly baseUrl: string;
  /**
   * Sent as `Authorization: Bearer …`: an API key (`havn_sk_…`) or an access token from `login`.
   * Any value, or none, works against a coordinator in dev mode.
   */
  readonly apiKey?: string | undefined;
  readonly fetch?: typeof fetch;
}

/** An account, as the coordinator shows it. */
export interface Account {
  readonly id: string;
  readonly email: string | null;
  /** EIP-55 checksummed. */
  readonly wallet: string | null;
  readonly role: "user" | "admin";
  readonly created_at: number;
}

/** A login: the account, a short-lived access token and the refresh token that renews it. */
export interface Session {
  readonly account: Account;
  readonly access_token: string;
  readonly token_type: "Bearer";
  readonly expires_in: number;
  readonly refresh_token: string;
}

export interface Me {
  readonly account: Account;
  readonly via: "api_key" | "access_token" | "dev";
  readonly scopes: readonly string[];
  readonly key_id: string | null;
  readonly mode: "production" | "dev";
}

export interface ApiKey {
  readonly id: string;
  readonly name: string;
  /** The key's first characters; the key itself is shown once, at creation. */
  readonly prefix: string;
  readonly scopes: readonly string[];
  readonly created_at: number;
  readonly last_used_at: number | null;
  readonly revoked_at: number | null;
}

export interface ChatOptions {
  readonly model?: string;
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly seed?: number;
  /** Run a published workflow (id, `name` or `name@version`): its model, template and parameters apply. */
  readonly workflow?: string;
  readonly signal?: AbortSignal;
  /** Called with each piece of text as it streams. */
  readonly onText?: (text: string) => void;
  /**
   * Called once the coordinator has admitted the job, with its id and the model it resolved
   * (`auto` becomes a name) — before any text, which may wait in the queue for a node.
   */
  readonly onAdmitted?: (job: { readonly jobId: string; readonly model: string }) => void;
  /** Sent as `x-request-id`: the coordinator logs it with the job and echoes it back. */
  readonly requestId?: string;
  /**
   * Sent as `Idempotency-Key`: a retry with the same key (after a dropped connection, say) gets
   * the same job — its text — and never runs it twice.
   */
  readonly idempotencyKey?: string;
}

export interface ChatResult {
  readonly jobId: string;
  readonly model: string;
  readonly text: string;
  readonly finishReason: string | null;
  readonly receipt: CosignedReceipt | null;
}

export interface JobView {
  readonly id: string;
  readonly status: string;
  readonly model: string;
  readonly attempts: number;
  readonly output: JobOutput | null;
  readonly output_cid: string | null;
  readonly receipt: CosignedReceipt | null;
  /**
   * The salt of the receipt's input commitment (version 2): the job's owner holds it, the public
   * log does not. Null for jobs from before receipts version 2.
   */
  readonly input_salt?: string | null;
  readonly error: ErrorBody | null;
  /** Its money: null on a free network. */
  readonly money?: JobMoneyView | null;
  /** The ledger transactions of a paid job. */
  readonly ledger?: readonly LedgerTransaction[];
  readonly [key: string]: unknown;
}

/** Where a paid job's money stands (µHAI as decimal strings: exact). */
export interface JobMoneyView {
  readonly state: "escrowed" | "charged" | "held" | "settled" | "refunded";
  readonly payer: string;
  readonly escrow_uhai: string;
  readonly charge_uhai: string | null;
  readonly price: Record<string, unknown>;
}

/** What an account holds, in µHAI (decimal strings: exact). */
export interface Balance {
  readonly object: "balance";
  /** `wallet:0x…`, or `custodial:acc-…` until a wallet is bound. */
  readonly account: string;
  readonly balance_uhai: string;
  /** The same in HAI, for people. */
  readonly balance: string;
  readonly pending_payouts_uhai: string;
}

export interface LedgerTransaction {
  readonly id: string;
  readonly object: "ledger_transaction";
  readonly kind: string;
  readonly job_id: string | null;
  readonly memo: Record<string, unknown> | null;
  readonly created_at: number;
  readonly postings: readonly { readonly account: string; readonly amount_uhai: string }[];
}

export interface Health {
  readonly status: string;
  readonly version: string;
  readonly coordinator_key: string;
  readonly store: string;
  readonly nodes_online: number;
  readonly jobs: Record<string, number>;
}

export interface ReceiptCheck extends ReceiptVerification {
  /** The stored output hashes to the receipt's `outputs_cid`. */
  readonly output: boolean;
  /**
   * The log holds this receipt where it says, and its entry links to the one before (`chain` is
   * the receipt's own link hash; this is the log's).
   */
  readonly logged: boolean;
  /**
   * The entry is under a sealed period's signed Merkle root: true, false, or `pending` while its
   * period is not sealed yet.
   */
  readonly inclusion: boolean | "pending";
  /**
   * The receipt commits to the input given to `verifyReceipt` (with the job's salt): true or
   * false, or `unchecked` when no input was given or the receipt is version 1.
   */
  readonly input: boolean | "unchecked";
  /** Why any check failed, one sentence each. */
  readonly problems: readonly string[];
  readonly job: JobView;
  readonly coordinatorKey: string;
}

/** A node on the reputation leaderboard. */
export interface ReputationEntry {
  readonly node_key: string;
  readonly name: string;
  readonly score: number;
  readonly online: boolean;
  /** Whether routing trusts it (score at the routing floor or above, breaker closed). */
  readonly routed: boolean;
  readonly breaker_open_until: number | null;
}

export interface ReputationList {
  readonly object: "list";
  readonly routing_floor: number;
  readonly data: readonly ReputationEntry[];
}

export interface NodeReputation {
  readonly object: "reputation";
  readonly node: ReputationEntry;
  readonly events: readonly {
    readonly delta: number;
    readonly score: number;
    readonly cause: string;
    readonly job_id: string | null;
    /** How many like changes it stands for (completions are tallied per batch). */
    readonly count: number;
    readonly at: number;
  }[];
}

/** Stake bonded to a node or a validator (`GET /v1/stake`). */
export interface StakeView {
  readonly object: "stake";
  /** `node:<key>` or `validator:<account id>`. */
  readonly subject: string;
  readonly bonded_uhai: string;
  /** Leaving its bond: still slashable, paid back at `matures_at`. */
  readonly unbonding: readonly { readonly amount_uhai: string; readonly matures_at: number }[];
  /** What must be bonded: the compute class's collateral floor, or the validator floor. */
  readonly floor_uhai: string;
  readonly node: {
    readonly name: string;
    readonly compute_class: string;
    readonly promise: { readonly from_hour: number; readonly to_hour: number; readonly slots: number } | null;
    readonly quarantined: boolean;
    /** Why it gets no jobs (`below_floor`, `quarantined`, `paused`), or null; null when offline. */
    readonly held: string | null;
    readonly slots: number | null;
  } | null;
}

/** A bond or unbond, and the stake after it. */
export interface StakeChange {
  readonly object: "stake_change";
  readonly transaction: LedgerTransaction;
  readonly matures_at: number | null;
  readonly stake: StakeView;
}

/** One governance parameter. */
export interface ParamView {
  readonly name: string;
  /** Decimal digits (amounts are µHAI). */
  readonly value: string;
  readonly unit: string;
  readonly min: string;
  readonly max: string;
  readonly reason: string;
  readonly env?: string;
  readonly updated_at: string | null;
  readonly updated_by: string | null;
}

/** A governance proposal, or an admin's act. */
export interface ProposalView {
  readonly object: "proposal";
  readonly id: string;
  readonly proposer: string;
  readonly action: Readonly<Record<string, unknown>>;
  readonly reason: string;
  readonly state: "voting" | "executed" | "rejected" | "failed";
  readonly by_admin: boolean;
  readonly created_at: number;
  readonly ends_at: number;
  readonly decided_at: number | null;
  readonly tally: {
    readonly yes: string;
    readonly no: string;
    readonly abstain: string;
    readonly eligible: string;
    readonly outcome: string;
  } | null;
  readonly votes?: readonly {
    readonly voter: string;
    readonly choice: string;
    readonly weight_uhai: string;
    readonly at: number;
  }[];
}

/** What a proposal does (see `POST /v1/proposals`). */
export type ProposalAction =
  | { readonly type: "set_params"; readonly params: Readonly<Record<string, string | number>> }
  | { readonly type: "pause_node" | "resume_node"; readonly node: string }
  | {
      readonly type: "pause_model" | "resume_model" | "flag_model" | "unflag_model" | "admit_model";
      readonly model: string;
    }
  | { readonly type: "flag_workflow" | "unflag_workflow"; readonly workflow: string };

export interface VoteView {
  readonly object: "vote";
  readonly proposal_id: string;
  readonly voter: string;
  readonly choice: "yes" | "no" | "abstain";
  readonly weight_uhai: string;
  readonly at: number;
  readonly replayed: boolean;
}

/** The monthly pool (`GET /v1/pool`). */
export interface PoolView {
  readonly object: "pool";
  readonly period: { readonly start: number; readonly end: number };
  readonly amount_uhai: string;
  readonly shares: readonly {
    readonly node_key: string;
    readonly score: number;
    readonly completed: number;
    readonly amount_uhai: string;
  }[];
  readonly distributions: readonly LedgerTransaction[];
}

/** A published workflow version. */
export interface WorkflowView {
  readonly id: string;
  readonly object: "workflow";
  readonly name: string;
  readonly version: string;
  readonly creator: string;
  readonly content_hash: string;
  readonly origin: string;
  readonly flagged: boolean;
  readonly flag_reason: string | null;
  readonly created_at: number;
  readonly manifest: Record<string, unknown>;
}

/** What a workflow earned its creator (µHAI as decimal strings: exact). */
export interface WorkflowEarnings {
  readonly object: "workflow_earnings";
  readonly workflow: string;
  readonly earned_uhai: string;
  readonly earned: string;
  readonly direct_uhai: string;
  readonly upstream_uhai: string;
  readonly runs: number;
}

/** A page of the execution log (`GET /v1/log`). */
export interface LogRange {
  readonly object: "log_range";
  readonly from: number;
  readonly to: number;
  readonly entries: readonly LogEntryView[];
  readonly periods: readonly SignedLogPeriod[];
  readonly head: SignedLogHead;
  readonly next_from: number | null;
}

/** A typed client for a havn coordinator (Node and browsers). */
export class HavnClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: HavnClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, "");
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.base}${path}`, {
        ...init,
        headers: {
          "content-type": "application/json",
          ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
          ...init.headers,
        },
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      const cause = err as { cause?: { code?: string }; code?: string; message?: string };
      const reason = cause.cause?.code ?? cause.code ?? cause.message ?? "unreachable";
      throw new HavnError(
        "COORDINATOR_UNREACHABLE",
        `Nothing answers at ${this.base} (${reason}): start a coordinator (havn up), or point --coordinator / HAVN_COORDINATOR at one.`,
        { cause: err },
      );
    }
    if (!response.ok) {
      const body = (await response.json().catch(() => null)) as {
        error?: { code?: string; message?: string; details?: unknown };
      } | null;
      throw HavnError.fromBody({
        code: body?.error?.code ?? "INTERNAL_ERROR",
        message: body?.error?.message ?? `HTTP ${response.status}`,
        details: body?.error?.details,
      });
    }
    return response;
  }

  private async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    return (await (await this.request(path, init)).json()) as T;
  }

  private post<T>(path: string, body: unknown): Promise<T> {
    return this.json<T>(path, { method: "POST", body: JSON.stringify(body) });
  }

  /** Creates an account and signs in. */
  register(email: string, password: string, invite?: string): Promise<Session> {
    return this.post("/auth/register", { email, password, ...(invite ? { invite } : {}) });
  }

  login(email: string, password: string): Promise<Session> {
    return this.post("/auth/login", { email, password });
  }

  /** Spends a refresh token for new tokens (each refresh token works once). */
  refresh(refreshToken: string): Promise<Session> {
    return this.post("/auth/refresh", { refresh_token: refreshToken });
  }

  async logout(refreshToken: string): Promise<void> {
    await this.post("/auth/logout", { refresh_token: refreshToken });
  }

  /** Who this client's credential acts as. */
  me(): Promise<Me> {
    return this.json("/auth/me");
  }

  /** A new API key; `key` is in this answer only. */
  createKey(name: string, scopes: readonly string[] = ["jobs"]): Promise<ApiKey & { key: string }> {
    return this.post("/v1/api-keys", { name, scopes });
  }

  async listKeys(): Promise<ApiKey[]> {
    return (await this.json<{ data: ApiKey[] }>("/v1/api-keys")).data;
  }

  revokeKey(id: string): Promise<ApiKey> {
    return this.json(`/v1/api-keys/${encodeURIComponent(id)}`, { method: "DELETE" });
  }

  /** What this client's account holds. */
  balance(): Promise<Balance> {
    return this.json("/v1/balance");
  }

  /** The account's ledger transactions, newest first. */
  async transactions(before?: number): Promise<LedgerTransaction[]> {
    const query = before === undefined ? "" : `?before=${before}`;
    return (await this.json<{ data: LedgerTransaction[] }>(`/v1/ledger/transactions${query}`)).data;
  }

  /** Dev mode only: new $HAI. */
  faucet(): Promise<LedgerTransaction> {
    return this.json("/v1/faucet", { method: "POST" });
  }

  /** Asks to withdraw `amountMicroHai` µHAI (to the account's wallet, or `to`). */
  withdraw(amountMicroHai: bigint | number, to?: string): Promise<LedgerTransaction> {
    return this.post("/v1/withdrawals", { amount_uhai: amountMicroHai.toString(), ...(to ? { to } : {}) });
  }

  /** Admins: add to (`credit`) or take from (`debit`) an account's or a wallet's balance, with a reason. */
  adjustBalance(
    kind: "credit" | "debit",
    target: { readonly accountId?: string; readonly email?: string; readonly wallet?: string },
    amountMicroHai: bigint | number,
    reason: string,
  ): Promise<LedgerTransaction> {
    return this.post(`/v1/admin/ledger/${kind}`, {
      ...(target.accountId ? { account_id: target.accountId } : {}),
      ...(target.email ? { email: target.email } : {}),
      ...(target.wallet ? { wallet: target.wallet } : {}),
      amount_uhai: amountMicroHai.toString(),
      reason,
    });
  }

  /**
   * Admins: hold a completed job's settlement (`hold`), or end a hold by settling it as usual
   * (`settle`) or refunding its charge to the payer (`refund`). Returns the job with its postings.
   */
  settlement(jobId: string, action: "hold" | "settle" | "refund", reason: string): Promise<JobView> {
    return this.post(`/v1/admin/jobs/${encodeURIComponent(jobId)}/settlement`, { action, reason });
  }

  /** An invitation to register (admins): the code is in this answer only. */
  createInvite(ttlSeconds = 7 * 24 * 3600): Promise<{ code: string; expires_at: number }> {
    return this.post("/v1/admin/invites", { ttl_seconds: ttlSeconds });
  }

  async health(): Promise<Health> {
    return (await (await this.request("/health")).json()) as Health;
  }

  async job(id: string): Promise<JobView> {
    return (await (await this.request(`/v1/jobs/${encodeURIComponent(id)}`)).json()) as JobView;
  }

  async cancel(id: string): Promise<JobView> {
    return (await (
      await this.request(`/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" })
    ).json()) as JobView;
  }

  /** A streamed chat completion; resolves with the whole answer, its job id and receipt. */
  async chat(messages: readonly ChatMessage[] | string, options: ChatOptions = {}): Promise<ChatResult> {
    const body = {
      model: options.model ?? "auto",
      messages: typeof messages === "string" ? [{ role: "user", content: messages }] : messages,
      stream: true,
      ...(options.maxTokens !== undefined ? { max_tokens: options.maxTokens } : {}),
      ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      ...(options.workflow !== undefined ? { workflow: options.workflow } : {}),
    };
    const response = await this.request("/v1/chat/completions", {
      method: "POST",
      body: JSON.stringify(body),
      ...(options.signal ? { signal: options.signal } : {}),
      headers: {
        ...(options.requestId ? { "x-request-id": options.requestId } : {}),
        ...(options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : {}),
      },
    });
    let text = "";
    let jobId = response.headers.get("x-havn-job-id") ?? "";
    let model = "";
    let admitted = false;
    let finishReason: string | null = null;
    let receipt: CosignedReceipt | null = null;
    let failure: HavnError | undefined;
    const parser = createParser({
      onEvent: (event) => {
        if (event.data === "[DONE]") return;
        const chunk = JSON.parse(event.data) as {
          id?: string;
          model?: string;
          choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
          havn?: { receipt: CosignedReceipt | null };
          error?: { code: string; message: string; details?: unknown };
        };
        if (chunk.error) {
          failure = HavnError.fromBody(chunk.error);
          return;
        }
        jobId = chunk.id ?? jobId;
        model = chunk.model ?? model;
        if (!admitted) {
          admitted = true;
          options.onAdmitted?.({ jobId, model });
        }
        const choice = chunk.choices?.[0];
        const piece = choice?.delta?.content;
        if (piece) {
          text += piece;
          options.onText?.(piece);
        }
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.havn) receipt = chunk.havn.receipt;
      },
    });
    const decoder = new TextDecoder();
    for await (const bytes of response.body as unknown as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(bytes, { stream: true }));
      if (failure) throw failure;
    }
    if (failure) throw failure;
    return { jobId, model, text, finishReason, receipt };
  }

  /**
   * Fetches a job's receipt and checks it offline: the node's signature, the coordinator's
   * co-signature (against the key the coordinator publishes, or `expectedCoordinatorKey`), the
   * log chain link, and that the output hashes to the receipt's content id. Given the `input` the
   * job was sent, a version 2 receipt's salted input commitment is checked too.
   */
  async verifyReceipt(
    jobId: string,
    expectedCoordinatorKey?: string,
    options: { readonly input?: JobInput } = {},
  ): Promise<ReceiptCheck> {
    const job = await this.job(jobId);
    if (!job.receipt) {
      throw new HavnError("RECEIPT_INVALID", "This job has no receipt yet.", {
        context: { Job: jobId, Status: job.status },
      });
    }
    const r = job.receipt;
    const problems: string[] = [];
    // The co-signing key: the pinned one, else the key set's key of that id valid when it signed.
    // Only the key this receipt names matters here: another replica's broken chain is the log's
    // problem (`havn log verify`), not this receipt's.
    const keys = checkKeySet(await this.coordinatorKeys()).trusted;
    const entry = await this.logEntry(r.log.seq).catch(() => undefined);
    // Checked at the time it was co-signed: a version 2 receipt's `finished_at` (signed, held to
    // the coordinator's clock), a version 1 receipt's log entry time.
    const known = keyAt(
      keys,
      keyId(r.coordinator_key),
      r.receipt.v === 2 ? r.receipt.finished_at : (entry?.created_at ?? r.receipt.finished_at),
    );
    const coordinatorKey = expectedCoordinatorKey ?? known?.public_key ?? r.coordinator_key;
    if (!expectedCoordinatorKey && !known)
      problems.push("The receipt is co-signed by a key the network's key set does not vouch for at that time.");
    const v = verifyCosignedReceipt(r, coordinatorKey);
    const verification = { ...v, coordinator: v.coordinator && (expectedCoordinatorKey !== undefined || !!known) };
    if (!v.node) problems.push("The node's signature does not verify.");
    if (!v.coordinator) problems.push("The coordinator's co-signature does not verify.");
    if (!v.chain) problems.push("The receipt's log link hash is not the hash of its receipt.");
    const output = job.output !== null && contentId(job.output.text) === r.receipt.outputs_cid;
    if (!output)
      problems.push(
        job.output === null
          ? "The output is not kept (deleted), so it cannot be checked against the receipt."
          : "The stored output does not hash to the receipt's outputs_cid.",
      );
    // The log itself: the entry at this position is this receipt, and it links to the one before.
    let logged = entry !== undefined && entry.entry_hash === r.log.entry_hash && entry.prev_hash === r.log.prev_hash;
    if (logged && r.log.seq > 1) {
      const before = await this.logEntry(r.log.seq - 1).catch(() => undefined);
      logged = before?.entry_hash === r.log.prev_hash;
    }
    if (logged && logEntryHash(entry!.prev_hash, r.receipt, r.node_signature) !== entry!.entry_hash) logged = false;
    if (!logged)
      problems.push(`The log's entry #${r.log.seq} is not this receipt, or does not link to #${r.log.seq - 1}.`);
    // The input: what the caller says it sent, salted as the receipt committed to it.
    let input: boolean | "unchecked" = "unchecked";
    if (options.input !== undefined && r.receipt.v === 2) {
      input =
        typeof job.input_salt === "string" &&
        inputCommitment(options.input, job.input_salt) === r.receipt.input_commitment;
      if (!input) problems.push("The receipt does not commit to this input.");
    }
    let inclusion: boolean | "pending" = "pending";
    const proof = await this.logProof(jobId).catch((err: unknown) => {
      if (err instanceof HavnError && err.code === "LOG_PROOF_PENDING") return undefined;
      throw err;
    });
    if (proof) {
      const found = [
        ...verifyInclusionProof(proof, keys),
        ...(proof.entry_hash === r.log.entry_hash && proof.seq === r.log.seq
          ? []
          : [`The inclusion proof is for another entry than the receipt's (#${proof.seq}).`]),
      ];
      inclusion = found.length === 0;
      problems.push(...found);
    }
    return { ...verification, output, logged, inclusion, input, problems, job, coordinatorKey };
  }

  /** Publishes a workflow version (see `havn publish`): its manifest as JSON. */
  publishWorkflow(manifest: unknown): Promise<WorkflowView> {
    return this.post("/v1/workflows", manifest);
  }

  /** Published workflows, newest first; `mine`: only yours. */
  async workflows(options: { readonly mine?: boolean } = {}): Promise<WorkflowView[]> {
    return (await this.json<{ data: WorkflowView[] }>(`/v1/workflows${options.mine ? "?mine=true" : ""}`)).data;
  }

  /** A workflow by id, `name` or `name@version`. */
  workflow(ref: string): Promise<WorkflowView> {
    return this.json(`/v1/workflows/${encodeURIComponent(ref)}`);
  }

  /** What a workflow earned its creator, across how many runs. */
  workflowEarnings(ref: string): Promise<WorkflowEarnings> {
    return this.json(`/v1/workflows/${encodeURIComponent(ref)}/earnings`);
  }

  /** Admins: flag a workflow (it stops running, its royalties are held) or clear the flag. */
  flagWorkflow(ref: string, flagged: boolean, reason: string): Promise<WorkflowView> {
    return this.post(`/v1/admin/workflows/${encodeURIComponent(ref)}/flag`, { flagged, reason });
  }

  /** Every node's reputation, best first (`GET /v1/reputation`). */
  reputation(): Promise<ReputationList> {
    return this.json("/v1/reputation");
  }

  /** One node's reputation and its changes, newest first (`GET /v1/reputation/{node}`). */
  nodeReputation(node: string): Promise<NodeReputation> {
    return this.json(`/v1/reputation/${encodeURIComponent(node)}`);
  }

  /** The stake bonded to the nodes you operate, and to you as a validator (`GET /v1/stake`). */
  async stakes(): Promise<StakeView[]> {
    return (await this.json<{ data: StakeView[] }>("/v1/stake")).data;
  }

  /** One node's stake (`GET /v1/stake/{node}`). */
  nodeStake(node: string): Promise<StakeView> {
    return this.json(`/v1/stake/${encodeURIComponent(node)}`);
  }

  /**
   * Bonds µHAI to a node you operate (`{ node }`), or to yourself as a validator
   * (`{ validator: true }`). With `idempotencyKey`, a retry bonds once.
   */
  bond(
    target: { readonly node: string } | { readonly validator: true },
    amountUhai: bigint | string,
    idempotencyKey?: string,
  ): Promise<StakeChange> {
    return this.stakeMove("/v1/stake", target, amountUhai, idempotencyKey);
  }

  /** Starts unbonding: paid back after the unbonding delay (`matures_at`). */
  unbond(
    target: { readonly node: string } | { readonly validator: true },
    amountUhai: bigint | string,
    idempotencyKey?: string,
  ): Promise<StakeChange> {
    return this.stakeMove("/v1/stake/unbond", target, amountUhai, idempotencyKey);
  }

  private stakeMove(path: string, target: object, amountUhai: bigint | string, idempotencyKey?: string) {
    return this.json<StakeChange>(path, {
      method: "POST",
      body: JSON.stringify({ ...target, amount_uhai: amountUhai.toString() }),
      ...(idempotencyKey ? { headers: { "idempotency-key": idempotencyKey } } : {}),
    });
  }

  /** Promises the hours (UTC) and slots a node you operate is available; null withdraws it. */
  setPromise(
    node: string,
    promise: { readonly from_hour: number; readonly to_hour: number; readonly slots: number } | null,
  ): Promise<StakeView> {
    const path = `/v1/nodes/${encodeURIComponent(node)}/promise`;
    return promise ? this.post(path, promise) : this.json(path, { method: "DELETE" });
  }

  /** The monthly pool: this period's projected shares and past distributions. */
  pool(): Promise<PoolView> {
    return this.json("/v1/pool");
  }

  /** Every governance parameter (`GET /v1/params`). */
  async params(): Promise<ParamView[]> {
    return (await this.json<{ data: ParamView[] }>("/v1/params")).data;
  }

  /** Proposals and admins' acts, newest first. */
  async proposals(state?: ProposalView["state"]): Promise<ProposalView[]> {
    return (await this.json<{ data: ProposalView[] }>(`/v1/proposals${state ? `?state=${state}` : ""}`)).data;
  }

  /** One proposal with its votes. */
  proposal(id: string): Promise<ProposalView> {
    return this.json(`/v1/proposals/${encodeURIComponent(id)}`);
  }

  /**
   * Proposes a change (accounts with bonded stake), or — `admin` — acts at once as an admin (any
   * action in dev mode; emergencies in production).
   */
  propose(
    action: ProposalAction,
    reason: string,
    options: { readonly admin?: boolean; readonly idempotencyKey?: string } = {},
  ): Promise<ProposalView> {
    return this.json("/v1/proposals", {
      method: "POST",
      body: JSON.stringify({ action, reason, ...(options.admin ? { admin: true } : {}) }),
      ...(options.idempotencyKey ? { headers: { "idempotency-key": options.idempotencyKey } } : {}),
    });
  }

  /** Votes on a proposal, weighted by your bonded stake; a vote is final. */
  vote(id: string, choice: "yes" | "no" | "abstain"): Promise<VoteView> {
    return this.post(`/v1/proposals/${encodeURIComponent(id)}/votes`, { choice });
  }

  /** The network's coordinator keys, with when each was valid (`GET /v1/keys`). */
  async coordinatorKeys(): Promise<CoordinatorKeyView[]> {
    return (await this.json<{ data: CoordinatorKeyView[] }>("/v1/keys")).data;
  }

  /** One entry of the execution log. */
  logEntry(seq: number): Promise<LogEntryView> {
    return this.json(`/v1/log/${seq}`);
  }

  /** Entries `from`..`to` (at most 1 000; `next_from` says where the rest starts), periods, signed head. */
  logRange(from?: number, to?: number): Promise<LogRange> {
    const q = new URLSearchParams();
    if (from !== undefined) q.set("from", String(from));
    if (to !== undefined) q.set("to", String(to));
    return this.json(`/v1/log${q.size ? `?${q}` : ""}`);
  }

  /** The newest entry, signed now. */
  logHead(): Promise<SignedLogHead> {
    return this.json("/v1/log/head");
  }

  /** A job's inclusion proof; LOG_PROOF_PENDING until its period is sealed. */
  logProof(jobId: string): Promise<LogInclusionProof> {
    return this.json(`/v1/log/proof/${encodeURIComponent(jobId)}`);
  }
}
