import type {
  CoordinatorKeyView,
  CosignedReceipt,
  CosignedSettlement,
  KeyCertificate,
  SignedLogPeriod,
} from "@havn/protocol";
import { json, jsonOrNull, num, numOrNull, type RawRow } from "../columns.js";
import type { LogEntry } from "./types.js";

/** The hash the first entry links to. */
export const genesisHash = "0".repeat(64);

export function rowToLogEntry(r: RawRow): LogEntry {
  const common = {
    seq: num(r.seq),
    jobId: r.job_id as string,
    prevHash: r.prev_hash as string,
    entryHash: r.entry_hash as string,
    createdAt: num(r.created_at),
  };
  return r.kind === "settlement"
    ? { ...common, kind: "settlement", settlement: json<CosignedSettlement>(r.receipt) }
    : { ...common, kind: "receipt", receipt: json<CosignedReceipt>(r.receipt) };
}

export function rowToPeriod(r: RawRow): SignedLogPeriod {
  return {
    from: num(r.from_seq),
    to: num(r.to_seq),
    root: r.root as string,
    last_hash: r.last_hash as string,
    signed_at: num(r.signed_at),
    key_id: r.key_id as string,
    signature: r.signature as string,
  };
}

export function rowToKey(r: RawRow): CoordinatorKeyView {
  return {
    key_id: r.key_id as string,
    public_key: r.public_key as string,
    replica: r.replica as string,
    valid_from: num(r.valid_from),
    valid_until: numOrNull(r.valid_until),
    certificate: jsonOrNull<KeyCertificate>(r.certificate),
    activation: jsonOrNull<{ at: number; signature: string }>(r.activation),
  };
}
