import { randomBytes } from "node:crypto";
import type { ComputeClass } from "@havn/protocol";
import { HavnError } from "@havn/protocol";
import {
  ledgerAccounts,
  type HeldRelease,
  type JobEscrow,
  type JobMoney,
  type MoneyState,
  type LedgerAccount,
  type LedgerKind,
  type LedgerTransfer,
  type LedgerTxRow,
  type Posting,
  type PostResult,
  type PriceTerms,
} from "./types.js";
import type { InsufficientFunds } from "../jobs/types.js";

type Raw = Record<string, unknown>;

export function newLedgerTxId(): string {
  return `ltx-${Date.now().toString(16)}${randomBytes(8).toString("hex")}`;
}

/** The largest amount a posting or balance may hold: INT8 on both stores. */
export const maxMicroHai = (1n << 63n) - 1n;

/** A bigint from what either driver returns for a money column (bigint, safe number, or decimal text). */
export function money(value: unknown): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error(`A money value is not a safe integer: ${value}`);
    return BigInt(value);
  }
  if (typeof value === "string" && /^-?[0-9]+$/.test(value)) return BigInt(value);
  throw new Error(`Not a money value: ${String(value)}`);
}

export function moneyOrNull(value: unknown): bigint | null {
  return value === null || value === undefined ? null : money(value);
}

/**
 * Checks a transfer before anything is written: postings sum to zero, each is a non-zero amount in
 * range, the key and accounts are named. Returns the net change per account (one account may
 * appear in several postings).
 */
export function netChanges(t: LedgerTransfer): Map<LedgerAccount, bigint> {
  if (t.idempotencyKey.length === 0 || t.idempotencyKey.length > 255)
    throw new HavnError("LEDGER_INVALID", "A ledger transaction needs an idempotency key of 1–255 characters.");
  if (t.postings.length === 0) throw new HavnError("LEDGER_INVALID", "A ledger transaction needs postings.");
  let sum = 0n;
  const net = new Map<LedgerAccount, bigint>();
  for (const p of t.postings) {
    if (typeof p.amount !== "bigint" || p.amount === 0n || p.amount > maxMicroHai || -p.amount > maxMicroHai)
      throw new HavnError("LEDGER_INVALID", "A posting's amount is a non-zero bigint within INT8.", {
        context: { Account: p.account },
      });
    if (p.account.length === 0 || p.account.length > 200)
      throw new HavnError("LEDGER_INVALID", "A posting names its ledger account.");
    sum += p.amount;
    net.set(p.account, (net.get(p.account) ?? 0n) + p.amount);
  }
  if (sum !== 0n)
    throw new HavnError("LEDGER_INVALID", "A ledger transaction's postings must sum to zero.", {
      context: { Sum: sum.toString() },
    });
  return net;
}

/** Whether an account may go below zero: only `mint`, whose balance is minus all $HAI issued. */
export function mayGoNegative(account: LedgerAccount): boolean {
  return account === ledgerAccounts.mint;
}

/** The first account a transfer would take below zero, given current balances; undefined if none. */
export function overdrawn(
  net: ReadonlyMap<LedgerAccount, bigint>,
  balanceOf: (account: LedgerAccount) => bigint,
): { account: LedgerAccount; balance: bigint; needed: bigint } | undefined {
  for (const [account, change] of net) {
    if (change >= 0n || mayGoNegative(account)) continue;
    const balance = balanceOf(account);
    if (balance + change < 0n) return { account, balance, needed: -change };
  }
  for (const [account, change] of net) {
    if (change > 0n && balanceOf(account) + change > maxMicroHai)
      throw new HavnError("LEDGER_INVALID", "A balance would leave INT8.", { context: { Account: account } });
  }
  return undefined;
}

/** A transaction as just posted (what `post` returns). */
export function postedTx(id: string, t: LedgerTransfer): LedgerTxRow {
  return {
    id,
    kind: t.kind,
    idempotencyKey: t.idempotencyKey,
    jobId: t.jobId ?? null,
    memo: t.memo ?? null,
    createdAt: t.now,
    postings: t.postings,
  };
}

export function rowsToTransactions(txs: readonly Raw[], postings: readonly Raw[]): LedgerTxRow[] {
  const byTx = new Map<string, Posting[]>();
  for (const p of postings) {
    const list = byTx.get(String(p.tx_id)) ?? [];
    list.push({ account: String(p.account), amount: money(p.amount) });
    byTx.set(String(p.tx_id), list);
  }
  return txs.map((t) => ({
    id: String(t.id),
    kind: String(t.kind) as LedgerKind,
    idempotencyKey: String(t.idempotency_key),
    jobId: t.job_id === null || t.job_id === undefined ? null : String(t.job_id),
    memo:
      t.memo === null || t.memo === undefined
        ? null
        : ((typeof t.memo === "string" ? JSON.parse(t.memo) : t.memo) as Record<string, unknown>),
    createdAt: Number(t.created_at),
    postings: byTx.get(String(t.id)) ?? [],
  }));
}

/**
 * What a completed job costs, from the terms it was admitted under, the usage its node reported
 * and the node's compute class: (input tokens × input price + output tokens × output price) / 1 000
 * × class multiplier × surge, rounded down — and never more than its escrow.
 */
export function chargeFor(
  price: PriceTerms,
  usage: { readonly prompt_tokens: number; readonly completion_tokens: number },
  computeClass: ComputeClass,
  escrow: bigint,
): bigint {
  const base =
    BigInt(usage.prompt_tokens) * BigInt(price.input_per_1k) +
    BigInt(usage.completion_tokens) * BigInt(price.output_per_1k);
  const charge = (base * BigInt(price.class_bp[computeClass]) * BigInt(price.surge_bp)) / (1_000n * 10_000n * 10_000n);
  return charge < escrow ? charge : escrow;
}

/** A job's escrow at admission: its maximum cost, from its payer. */
export function escrowTransfer(jobId: string, escrow: JobEscrow, now: number): LedgerTransfer {
  return {
    kind: "escrow",
    idempotencyKey: `escrow:${jobId}`,
    jobId,
    now,
    postings: [
      { account: escrow.payer, amount: -escrow.amount },
      { account: ledgerAccounts.escrow(jobId), amount: escrow.amount },
    ],
  };
}

/**
 * A completed job's charge: what it did not cost goes back to its payer; the charge stays in
 * escrow until settlement. Undefined when it cost its whole escrow (nothing to post).
 */
export function chargeTransfer(
  jobId: string,
  money: JobMoney,
  charge: bigint,
  now: number,
): LedgerTransfer | undefined {
  const released = money.escrow - charge;
  if (released <= 0n) return undefined;
  return {
    kind: "charge",
    idempotencyKey: `charge:${jobId}`,
    jobId,
    now,
    memo: { charge: charge.toString() },
    postings: [
      { account: ledgerAccounts.escrow(jobId), amount: -released },
      { account: money.payer, amount: released },
    ],
  };
}

/** A failed or cancelled job: its escrow goes back to its payer. Undefined when it escrowed nothing. */
export function refundTransfer(jobId: string, money: JobMoney, now: number): LedgerTransfer | undefined {
  if (money.escrow <= 0n) return undefined;
  return {
    kind: "refund",
    idempotencyKey: `refund:${jobId}`,
    jobId,
    now,
    postings: [
      { account: ledgerAccounts.escrow(jobId), amount: -money.escrow },
      { account: money.payer, amount: money.escrow },
    ],
  };
}

/** A job's money from its row's columns (either driver); null on a free network. */
export function rowToMoney(r: Raw): JobMoney | null {
  if (r.money_state === null || r.money_state === undefined) return null;
  return {
    state: String(r.money_state) as MoneyState,
    payer: String(r.payer),
    escrow: money(r.escrow),
    charge: moneyOrNull(r.charge),
    price: (typeof r.price === "string" ? JSON.parse(r.price) : r.price) as PriceTerms,
  };
}

/** The catalog error for a transfer (by default, a job's escrow) its payer cannot cover. */
export function insufficientFunds(
  o: InsufficientFunds,
  message = "The balance does not cover this job's maximum cost.",
): HavnError {
  return new HavnError("LEDGER_INSUFFICIENT_FUNDS", message, {
    context: { Balance: `${o.balance} µHAI`, Needed: `${o.needed} µHAI` },
    details: { balance: o.balance.toString(), needed: o.needed.toString() },
  });
}

/** What of a reward fits the period's emission budget: all of it, part, or nothing. */
export function cappedReward(wanted: bigint, mintedSincePeriodStart: bigint, budget: bigint): bigint {
  const left = budget - mintedSincePeriodStart;
  if (left <= 0n) return 0n;
  return wanted < left ? wanted : left;
}

/** A reward transfer with its amount replaced (its single credit and mint's debit). */
export function withRewardAmount(t: LedgerTransfer, amount: bigint): LedgerTransfer {
  return {
    ...t,
    postings: t.postings.map((p) => ({ account: p.account, amount: p.amount < 0n ? -amount : amount })),
  };
}

/** A held job's charge goes back to its payer (verification found against the node). */
export function heldRefundTransfer(jobId: string, money: JobMoney, now: number): LedgerTransfer | undefined {
  const charge = money.charge ?? 0n;
  if (charge <= 0n) return undefined;
  return {
    kind: "refund",
    idempotencyKey: `refund:${jobId}`,
    jobId,
    now,
    memo: { held: true },
    postings: [
      { account: ledgerAccounts.escrow(jobId), amount: -charge },
      { account: money.payer, amount: charge },
    ],
  };
}

/** A posting the caller's transaction cannot do without: refused, it rolls the transaction back. */
export function mustPost(r: PostResult): void {
  if (!r.ok) throw new Error(`A ledger transfer was refused: ${r.account} holds ${r.balance}, needs ${r.needed}.`);
}

/** A `held:<workflow>` balance row as `heldBalances` returns it. */
export function heldRow(r: { account: string; balance: bigint }): { workflowId: string; amount: bigint } {
  return { workflowId: r.account.slice("held:".length), amount: r.balance };
}

/** The `release` transfer of what is held for a workflow (`LedgerStore.releaseHeld`). */
export function releaseTransfer(r: HeldRelease, amount: bigint): LedgerTransfer {
  return {
    kind: "release",
    idempotencyKey: `release:${r.workflowId}:${r.now}`,
    now: r.now,
    memo: { workflow: r.workflowId, reason: r.reason, by: r.by },
    postings: [
      { account: ledgerAccounts.held(r.workflowId), amount: -amount },
      { account: r.to, amount },
    ],
  };
}
