import { numOrNull, type RawRow } from "../columns.js";
import { rowToJob } from "../jobs/rows.js";
import type { SettleCandidate } from "./types.js";

/** Jobs with who ran them, for settlement (the same SQL on both stores). */
const candidatesSql = (where: string) =>
  `SELECT j.*, n.account_id AS node_account_id, a.wallet AS node_wallet,
     t.started_at AS attempt_started_at, t.ended_at AS attempt_ended_at
   FROM jobs j
   LEFT JOIN nodes n ON n.key = j.node_key
   LEFT JOIN accounts a ON a.id = n.account_id
   LEFT JOIN job_attempts t ON t.attempt_id = j.attempt_id
   WHERE ${where}`;

/**
 * Completed jobs waiting for settlement that finished before $1, oldest first, at most $2. The
 * partial index's own condition is repeated word for word: SQLite uses a partial index only when
 * the query states its WHERE (without it, each settlement pass scanned every job).
 */
export const settleableSql = (placeholder: (n: number) => string) =>
  candidatesSql(
    `j.money_state IN ('charged', 'held') AND j.money_state = 'charged' AND j.finished_at < ${placeholder(1)}
     ORDER BY j.finished_at LIMIT ${placeholder(2)}`,
  );

/** One job, $1, if its settlement is held. */
export const heldSql = (placeholder: (n: number) => string) =>
  candidatesSql(`j.id = ${placeholder(1)} AND j.money_state = 'held'`);

export function rowToSettleCandidate(r: RawRow): SettleCandidate {
  const started = numOrNull(r.attempt_started_at);
  const ended = numOrNull(r.attempt_ended_at);
  return {
    job: rowToJob(r),
    node: {
      key: r.node_key as string,
      accountId: (r.node_account_id as string | null) ?? null,
      wallet: (r.node_wallet as string | null) ?? null,
    },
    observedMs: started !== null && ended !== null ? Math.max(0, ended - started) : null,
  };
}
