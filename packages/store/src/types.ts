import type { AccountStore } from "./accounts/types.js";
import type { JobStore } from "./jobs/types.js";
import type { LedgerStore } from "./ledger/types.js";
import type { LogStore } from "./log/types.js";
import type { NodeStore } from "./nodes/types.js";
import type { WorkflowStore } from "./workflows/types.js";
import type { GovernanceStore } from "./governance/types.js";

/** Differences between backends, as data: queue code asks `caps.skipLocked`, never the dialect. */
export interface StoreCapabilities {
  /** `FOR UPDATE SKIP LOCKED`: several coordinators can claim from one queue without blocking. */
  readonly skipLocked: boolean;
  /** Writers in other processes may change rows under us (several replicas on one database). */
  readonly sharedByReplicas: boolean;
  /** `watch` delivers other processes' changes as they happen (LISTEN/NOTIFY). */
  readonly notifications: boolean;
}

/** A change another process made: work was queued, or a job ended. */
export type StoreNotification = { readonly kind: "queued" } | { readonly kind: "ended"; readonly jobId: string };

/**
 * The coordinator's database, by domain. Each domain has its SQL for both backends; they share
 * one connection (SQLite) or pool (PostgreSQL) and one transaction mechanism, so a transition
 * that spans domains — a job's completion with its log entry and charge — commits as one.
 */
export interface Store {
  readonly kind: "sqlite" | "postgres";
  readonly caps: StoreCapabilities;
  /** Jobs, attempts and outputs: admission, claims, completion, failure, retention. */
  readonly jobs: JobStore;
  /** Nodes: who holds which key and name, what each offers. */
  readonly nodes: NodeStore;
  /** The execution log: co-signed receipts in one hash chain. */
  readonly log: LogStore;
  /** Accounts, API keys, sessions, wallet-login nonces, invites. */
  readonly accounts: AccountStore;
  /** The $HAI ledger: balances, transactions and their postings, and each job's settlement. */
  readonly ledger: LedgerStore;
  /** The workflow registry, and what each workflow earned. */
  readonly workflows: WorkflowStore;
  /** Governance: the parameter table, proposals and votes, and what governance holds. */
  readonly governance: GovernanceStore;
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** One trivial round trip: resolves if the database answers (`/health`). */
  ping(): Promise<void>;
  /**
   * Calls `onChange` for changes made by any process (this one included) while watching; a
   * no-op where `caps.notifications` is false. Returns a function that stops watching.
   */
  watch(onChange: (change: StoreNotification) => void, onError: (err: unknown) => void): Promise<() => Promise<void>>;
}
