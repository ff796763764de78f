import type {
  CoordinatorKeyView,
  CosignedReceipt,
  CosignedSettlement,
  KeyCertificate,
  SignedLogPeriod,
} from "@havn/protocol";

/** An entry of the execution log: a completed attempt's co-signed receipt, or a settled run's signed record. */
export type LogEntry = {
  readonly seq: number;
  readonly jobId: string;
  readonly prevHash: string;
  readonly entryHash: string;
  readonly createdAt: number;
} & (
  | { readonly kind: "receipt"; readonly receipt: CosignedReceipt }
  | { readonly kind: "settlement"; readonly settlement: CosignedSettlement }
);

/** The newest entry of the execution log: its position and hash. */
export interface LogHead {
  readonly seq: number;
  readonly entryHash: string;
}

/** An entry as a completion writes it, at the position it was linked and co-signed for. */
export interface NewLogEntry {
  readonly seq: number;
  readonly jobId: string;
  readonly attemptId: string;
  readonly nodeKey: string;
  readonly prevHash: string;
  readonly entryHash: string;
  /** The co-signed receipt (or signed settlement), as JSON. */
  readonly receipt: string;
  readonly now: number;
  /** Default `receipt`. */
  readonly kind?: "receipt" | "settlement";
}

/** A replica's key as it registers: a rotated-in key brings the certificate its predecessor signed. */
export interface NewCoordinatorKey {
  readonly keyId: string;
  readonly publicKey: string;
  readonly replica: string;
  readonly now: number;
  readonly certificate?: KeyCertificate | null;
  /** When it began to sign, signed by itself (see `CoordinatorKeyView.activation`). */
  readonly activation?: { readonly at: number; readonly signature: string } | null;
}

/**
 * The execution log: one hash chain of co-signed receipts. Entries are appended only by a job's
 * completion, in its transaction (see `JobStore.complete`); this is how it is read.
 */
export interface LogStore {
  entry(seq: number): Promise<LogEntry | undefined>;
  /** The receipt entry of a job's completed attempt, if it completed. */
  entryOfJob(jobId: string): Promise<LogEntry | undefined>;
  /** Entries `from`..`to` (inclusive), in order; the caller bounds the range. */
  range(from: number, to: number): Promise<LogEntry[]>;
  /** The entry hashes of `from`..`to`, in order: what a period's Merkle tree is built from. */
  hashes(from: number, to: number): Promise<string[]>;
  /** The newest entry, or undefined for an empty log. */
  head(): Promise<LogHead | undefined>;

  /** Sealed periods that overlap `from`..`to`, in order. */
  periods(from: number, to: number): Promise<SignedLogPeriod[]>;
  /** The sealed period holding entry `seq`, if it is sealed. */
  periodOf(seq: number): Promise<SignedLogPeriod | undefined>;
  /** The newest sealed period, if any. */
  lastPeriod(): Promise<SignedLogPeriod | undefined>;
  /**
   * Records a sealed period. False, writing nothing, when a period starting there exists (another
   * replica sealed it first) or it does not start right after the last one.
   */
  sealPeriod(period: SignedLogPeriod): Promise<boolean>;

  /** The network's coordinator keys, oldest first. */
  keys(): Promise<CoordinatorKeyView[]>;
  /**
   * A replica's key as it starts: added to the set if new, and the replica's other keys still in
   * use retired at `now` (a rotation). Its key is never removed: old receipts still verify.
   */
  registerKey(key: NewCoordinatorKey): Promise<void>;
}
