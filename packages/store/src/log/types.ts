import type { CosignedReceipt } from "@havn/protocol";

export interface LogEntry {
  readonly seq: number;
  readonly jobId: string;
  readonly prevHash: string;
  readonly entryHash: string;
  readonly receipt: CosignedReceipt;
  readonly createdAt: number;
}

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
  /** The co-signed receipt, as JSON. */
  readonly receipt: string;
  readonly now: number;
}

/**
 * The execution log: one hash chain of co-signed receipts. Entries are appended only by a job's
 * completion, in its transaction (see `JobStore.complete`); this is how it is read.
 */
export interface LogStore {
  entry(seq: number): Promise<LogEntry | undefined>;
  /** The newest entry, or undefined for an empty log. */
  head(): Promise<LogHead | undefined>;
}
