import type pg from "pg";
import { rows } from "../postgres/db.js";
import { rowToLogEntry } from "./rows.js";
import type { LogEntry, LogHead, LogStore, NewLogEntry } from "./types.js";

/**
 * The execution log on PostgreSQL. Its head is a row of its own (`execution_log_head`), locked by
 * every appender for the rest of its transaction, so replicas append one batch at a time and the
 * chain stays single.
 */
export class PostgresLog implements LogStore {
  constructor(private readonly pool: pg.Pool) {}

  /** Locks the head until the caller's transaction ends, and returns it (seq 0 for an empty log). */
  async lockHeadIn(c: pg.PoolClient): Promise<LogHead> {
    const [head] = await rows(c, `SELECT seq, entry_hash FROM execution_log_head WHERE id = 1 FOR UPDATE`);
    return { seq: Number(head!.seq), entryHash: head!.entry_hash as string };
  }

  /** Appends entries (consecutive, after the locked head) and moves the head, in the caller's transaction. */
  async appendIn(c: pg.PoolClient, entries: readonly NewLogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await c.query(
      `INSERT INTO execution_log (seq, job_id, attempt_id, node_key, prev_hash, entry_hash, receipt, created_at)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
         $8::bigint[])`,
      [
        entries.map((e) => e.seq),
        entries.map((e) => e.jobId),
        entries.map((e) => e.attemptId),
        entries.map((e) => e.nodeKey),
        entries.map((e) => e.prevHash),
        entries.map((e) => e.entryHash),
        entries.map((e) => e.receipt),
        entries.map((e) => e.now),
      ],
    );
    const last = entries[entries.length - 1]!;
    await c.query(`UPDATE execution_log_head SET seq = $1, entry_hash = $2 WHERE id = 1`, [last.seq, last.entryHash]);
  }

  async entry(seq: number): Promise<LogEntry | undefined> {
    const [r] = await rows(this.pool, `SELECT * FROM execution_log WHERE seq = $1`, [seq]);
    return r && rowToLogEntry(r);
  }

  async head(): Promise<LogHead | undefined> {
    const [r] = await rows(this.pool, `SELECT seq, entry_hash FROM execution_log_head WHERE id = 1`);
    return r === undefined || Number(r.seq) === 0
      ? undefined
      : { seq: Number(r.seq), entryHash: r.entry_hash as string };
  }
}
