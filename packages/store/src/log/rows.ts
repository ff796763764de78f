import type { CosignedReceipt } from "@havn/protocol";
import { json, num, type RawRow } from "../columns.js";
import type { LogEntry } from "./types.js";

/** The hash the first entry links to. */
export const genesisHash = "0".repeat(64);

export function rowToLogEntry(r: RawRow): LogEntry {
  return {
    seq: num(r.seq),
    jobId: r.job_id as string,
    prevHash: r.prev_hash as string,
    entryHash: r.entry_hash as string,
    receipt: json<CosignedReceipt>(r.receipt),
    createdAt: num(r.created_at),
  };
}
