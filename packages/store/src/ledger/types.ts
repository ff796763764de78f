import type { ComputeClass, CosignedSettlement, LogPosition, SettlementRecord } from "@havn/protocol";

/**
 * The $HAI ledger: double-entry, in integer µHAI (1 HAI = 1 000 000 µHAI), as `bigint` end to end.
 *
 * A ledger account is a string:
 * - `wallet:0x…` — an EVM wallet (lower-case). Balances belong to wallets: binding a wallet to a
 *   havn account with Sign-In with Ethereum lets that account spend what the wallet holds.
 * - `custodial:acc-…` — the wallet havn keeps for an account that has bound none.
 * - `node:<key>` — what a node with no account behind it (the join token) earned, until claimed.
 * - `escrow:job-…` — one job's escrow: its maximum cost at admission, its charge until settled.
 * - `payouts:<holder>` — withdrawals requested and not yet paid out.
 * - `held:wf-…` — royalties of a flagged workflow, held until the flag is cleared.
 * - `stake:node:<key>`, `stake:validator:<account>` — $HAI bonded to a node or a validator.
 * - `unbonding:<ms>:<subject>` — stake leaving its bond, paid out to its owner at `<ms>` (15 digits).
 * - `quarantined:<key>` — what a quarantined node earned, held until its quarantine lifts.
 * - `treasury`, `validators` (the validator pool), `mint` (new $HAI: its balance is minus all
 *   $HAI ever issued, and it alone may go below zero).
 *
 * Every transaction's postings sum to zero, so the balances of all accounts always sum to zero.
 */
export type LedgerAccount = string;

/** Who stake is bonded to: `node:<key>` or `validator:<account id>`. */
export type StakeSubject = `node:${string}` | `validator:${string}`;

export const ledgerAccounts = {
  wallet: (address: string): LedgerAccount => `wallet:${address.toLowerCase()}`,
  custodial: (accountId: string): LedgerAccount => `custodial:${accountId}`,
  node: (nodeKey: string): LedgerAccount => `node:${nodeKey}`,
  escrow: (jobId: string): LedgerAccount => `escrow:${jobId}`,
  payouts: (holder: LedgerAccount): LedgerAccount => `payouts:${holder}`,
  held: (workflowId: string): LedgerAccount => `held:${workflowId}`,
  stake: (subject: StakeSubject): LedgerAccount => `stake:${subject}`,
  /** Named by maturity first (15 digits), so that name order is payout order. */
  unbonding: (subject: StakeSubject, maturesAt: number): LedgerAccount =>
    `unbonding:${String(maturesAt).padStart(15, "0")}:${subject}`,
  quarantined: (nodeKey: string): LedgerAccount => `quarantined:${nodeKey}`,
  treasury: "treasury",
  validators: "validators",
  mint: "mint",
} as const;

/** A cleared workflow's held royalties, to go to its creator. */
export interface HeldRelease {
  readonly workflowId: string;
  /** Its creator's ledger account. */
  readonly to: LedgerAccount;
  readonly reason: string;
  readonly by: string;
  readonly now: number;
}

/** What a transaction stands for. */
export const ledgerKinds = [
  /** Configuration's initial balances, at first start. */
  "genesis",
  /** An admin adds to or takes from a balance (standing in for deposits), with a reason. */
  "credit",
  "debit",
  /** Dev mode's faucet. */
  "faucet",
  /** A job's maximum cost, from its payer into its escrow, at admission. */
  "escrow",
  /** A completed job: what it did not cost goes back to its payer; its charge stays in escrow. */
  "charge",
  /** A failed or cancelled job: its whole escrow goes back to its payer. */
  "refund",
  /** After the challenge window: a job's charge, split among node, validators and treasury. */
  "settle",
  /** New $HAI to a node's operator for a job done (seed 000's reward formula). */
  "reward",
  /** A holder asks to withdraw: from its balance to its pending payouts. */
  "withdraw",
  /** A wallet bound to an account takes over the custodial balance. */
  "claim",
  /** A flagged workflow cleared: the royalties held for it go to its creator. */
  "release",
  /** An owner bonds $HAI to a node or a validator. */
  "bond",
  /** Stake leaves its bond: into unbonding until the delay passes. */
  "unbond",
  /** Unbonded stake whose delay passed goes back to its owner. */
  "unbonded",
  /** An offence: stake to the treasury (and the injured client). */
  "slash",
  /** The monthly pool (seed 003): the treasury to nodes, by reputation share. */
  "pool",
  /** A quarantine lifted: what the node earned meanwhile goes to its operator. */
  "unquarantine",
] as const;
export type LedgerKind = (typeof ledgerKinds)[number];

export interface Posting {
  readonly account: LedgerAccount;
  /** µHAI: positive credits the account, negative debits it. */
  readonly amount: bigint;
}

export interface LedgerTransfer {
  readonly kind: LedgerKind;
  /** A second transfer with the same key posts nothing and returns the first. */
  readonly idempotencyKey: string;
  readonly jobId?: string | null;
  readonly memo?: Readonly<Record<string, unknown>> | null;
  /** Sum to zero; one account may appear more than once. */
  readonly postings: readonly Posting[];
  readonly now: number;
}

export interface LedgerTxRow {
  readonly id: string;
  readonly kind: LedgerKind;
  readonly idempotencyKey: string;
  readonly jobId: string | null;
  readonly memo: Readonly<Record<string, unknown>> | null;
  readonly createdAt: number;
  readonly postings: readonly Posting[];
}

export type PostResult =
  | { readonly ok: true; readonly tx: LedgerTxRow; readonly replayed: boolean }
  | {
      readonly ok: false;
      readonly reason: "insufficient_funds";
      readonly account: LedgerAccount;
      readonly balance: bigint;
      readonly needed: bigint;
    };

export interface TransactionQuery {
  readonly account?: LedgerAccount;
  readonly jobId?: string;
  readonly kind?: LedgerKind;
  /** Newest first; at most this many. */
  readonly limit: number;
  /** Only transactions created before this time (paging). */
  readonly before?: number;
}

export interface LedgerStore {
  /**
   * Posts one balanced transaction, atomically: refused (`insufficient_funds`, nothing written)
   * if it would take any account but `mint` below zero; a replay of its idempotency key posts
   * nothing and returns the first (`replayed`).
   */
  post(transfer: LedgerTransfer): Promise<PostResult>;
  balance(account: LedgerAccount): Promise<bigint>;
  /** Balances of these accounts (0 for an account never posted to). */
  balances(accounts: readonly LedgerAccount[]): Promise<Record<LedgerAccount, bigint>>;
  transactions(query: TransactionQuery): Promise<LedgerTxRow[]>;
  /**
   * Accounts whose names start with `prefix` and whose balance is above zero, by name, at most
   * `limit` (unbonding stake to pay out, say).
   */
  positiveBalances(
    prefix: string,
    limit: number,
    /** Only accounts whose names also end with this. */
    suffix?: string,
  ): Promise<{ readonly account: LedgerAccount; readonly balance: bigint }[]>;
  /** The sum of the balances above zero of the accounts whose names start with `prefix` (all stake, say). */
  sumPositive(prefix: string): Promise<bigint>;
  /** The sum of every balance: zero, always (the double-entry invariant the tests check). */
  total(): Promise<bigint>;
  /** The µHAI `account` received in transactions of `kind` since `since` (e.g. rewards minted this period). */
  receivedSince(kind: LedgerKind, since: number): Promise<bigint>;

  /**
   * Money held in jobs' escrows: how many jobs hold some, and how much in all (admitted and not yet
   * refunded, or completed and not yet settled). An escrow that reaches zero is not counted.
   */
  openEscrow(): Promise<{ readonly jobs: number; readonly total: bigint }>;
  /**
   * Pays everything held for a workflow to `to` (its creator's account), in one transaction that
   * first finds the workflow not flagged: a flag set meanwhile keeps what is held. Returns what
   * was released (0 when flagged, empty, or a replay of `release:<id>:<now>`).
   */
  releaseHeld(release: HeldRelease): Promise<bigint>;
  /** Unflagged workflows with royalties still held (`held:<id>` above zero), at most `limit`. */
  heldBalances(limit: number): Promise<{ readonly workflowId: string; readonly amount: bigint }[]>;

  /** Completed jobs whose charge waits for settlement and that finished before `before`, oldest first. */
  settleable(before: number, limit: number): Promise<SettleCandidate[]>;
  /**
   * Settles one job in one transaction: its money state `from` → settled, its charge split, its
   * reward (capped by the emission budget) minted. Settles nothing when the job is not in `from`.
   */
  settle(input: SettleJobInput): Promise<SettleJobResult>;
  /**
   * Settles many jobs in one transaction (one commit per settlement pass); a result per job. With
   * `sealer`, each settled job's `record` is appended to the execution log in the same transaction.
   */
  settleMany(inputs: readonly SettleJobInput[], sealer?: SettlementSealer): Promise<SettleJobResult[]>;
  /** A job whose settlement is held, with who ran it (to settle it in the node's favour); else undefined. */
  heldJob(jobId: string): Promise<SettleCandidate | undefined>;
  /** Holds a charged job's settlement (verification): charged → held. False when it is not charged. */
  hold(jobId: string): Promise<boolean>;
  /** A held job's charge back to its payer: held → refunded. False when it is not held. */
  refundHeld(jobId: string, now: number): Promise<boolean>;
}

/** How the coordinator links a settlement record into its log and signs it (synchronously). */
export interface SettlementSealer {
  /** The entry hash of this record following the entry `prevHash`. */
  link(prevHash: string, record: SettlementRecord): string;
  /** The record signed at its log position. */
  seal(record: SettlementRecord, log: LogPosition): CosignedSettlement;
}

/** Basis points: 10 000 = ×1. */
export type BasisPoints = number;

/**
 * The price a job was admitted under, kept with it: its charge is worked out from these and the
 * usage its node reports, never from prices that changed since. Amounts are µHAI as decimal
 * strings (JSON has no bigint).
 */
export interface PriceTerms {
  readonly input_per_1k: string;
  readonly output_per_1k: string;
  /** The queue's surge factor at admission. */
  readonly surge_bp: BasisPoints;
  /** The fee multiplier of each compute class (seed 002): the class of the node that runs it applies. */
  readonly class_bp: Readonly<Record<ComputeClass, BasisPoints>>;
}

/** Where a job's money stands; see `moneyTransitions`. Null on a free network. */
export const moneyStates = ["escrowed", "charged", "held", "settled", "refunded"] as const;
export type MoneyState = (typeof moneyStates)[number];

/**
 * The money state machine, apart from the job's own: a job ends for its client (completed, failed,
 * cancelled) before its money is final.
 *
 *   escrowed → charged   (completed: the rest released to the payer)
 *   escrowed → refunded  (failed or cancelled: all released)
 *   charged  → settled   (after the challenge window: split)
 *   charged  → held      (verification holds it until its verdict)
 *   held     → settled | refunded
 */
export const moneyTransitions: Readonly<Record<MoneyState, readonly MoneyState[]>> = {
  escrowed: ["charged", "refunded"],
  charged: ["settled", "held"],
  held: ["settled", "refunded"],
  settled: [],
  refunded: [],
};

/** A job's money as `GET /v1/jobs/{id}` shows it. */
export interface JobMoney {
  readonly state: MoneyState;
  readonly payer: LedgerAccount;
  readonly escrow: bigint;
  readonly charge: bigint | null;
  readonly price: PriceTerms;
}

/** A completed job whose charge waits for settlement, with who ran it. */
export interface SettleCandidate {
  readonly job: JobRowLike;
  /** The node that ran it, and the account (and its wallet) that operates the node, if any. */
  readonly node: { readonly key: string; readonly accountId: string | null; readonly wallet: string | null };
  /** What the coordinator saw of the completed attempt: from its lease to its result, in ms. */
  readonly observedMs: number | null;
}

/** The job fields settlement reads (a `JobRow`; named here to keep the ledger domain apart). */
export interface JobRowLike {
  readonly id: string;
  readonly model: string;
  readonly workflowId: string | null;
  readonly attemptId: string | null;
  readonly accountId: string | null;
  readonly money: JobMoney | null;
  readonly receipt: { readonly receipt: { readonly latency_ms: number } } | null;
  readonly finishedAt: number | null;
}

export interface SettleJobInput {
  readonly jobId: string;
  /** `charged` normally; `held` when a hold is released in the node's favour. */
  readonly from: "charged" | "held";
  /** The charge, split (escrow → node operator, validators, treasury); absent when it cost nothing. */
  readonly settle?: LedgerTransfer;
  /**
   * New $HAI for the node's operator, capped so that rewards minted in the emission period that
   * starts at `since` never exceed `budget` (a running total per period, read and updated inside
   * the transaction; locked on PostgreSQL, so replicas cannot overshoot it together).
   */
  readonly reward?: { readonly transfer: LedgerTransfer; readonly budget: bigint; readonly since: number };
  /**
   * The settled run for the execution log (workflow, caller, node, fee, split, time): appended,
   * signed by `SettlementSealer`, in the settlement's transaction — only if the job settles.
   */
  readonly record?: { readonly settlement: SettlementRecord; readonly attemptId: string; readonly nodeKey: string };
  /** A workflow run: what its split paid each workflow's creator, recorded with the settlement. */
  readonly earnings?: readonly { readonly workflowId: string; readonly amount: bigint; readonly direct: boolean }[];
  readonly now: number;
}

export interface SettleJobResult {
  readonly settled: boolean;
  /** What was minted as its reward (0 when none, or the budget was spent). */
  readonly rewarded: bigint;
}

/** A job's escrow at admission (see `NewJob.money`). */
export interface JobEscrow {
  readonly payer: LedgerAccount;
  readonly amount: bigint;
  readonly price: PriceTerms;
}
