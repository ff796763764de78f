import type pg from "pg";
import type { CoordinatorKeyView, SignedLogPeriod } from "@havn/protocol";
import { rows, type Tx } from "../postgres/db.js";
import { rowToKey, rowToLogEntry, rowToPeriod } from "./rows.js";
import type { LogEntry, LogHead, LogStore, NewCoordinatorKey, NewLogEntry } from "./types.js";

/**
 * The execution log on PostgreSQL. Its head is a row of its own (`execution_log_head`), locked by
 * every appender for the rest of its transaction, so replicas append one batch at a time and the
 * chain stays single.
 */
export class PostgresLog implements LogStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly tx: Tx,
  ) {}

  /** Locks the head until the caller's transaction ends, and returns it (seq 0 for an empty log). */
  async lockHeadIn(c: pg.PoolClient): Promise<LogHead> {
    const [head] = await rows(c, `SELECT seq, entry_hash FROM execution_log_head WHERE id = 1 FOR UPDATE`);
    return { seq: Number(head!.seq), entryHash: head!.entry_hash as string };
  }

  /** Appends entries (consecutive, after the locked head) and moves the head, in the caller's transaction. */
  async appendIn(c: pg.PoolClient, entries: readonly NewLogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await c.query(
      `INSERT INTO execution_log (seq, job_id, attempt_id, node_key, prev_hash, entry_hash, receipt, created_at, kind)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
         $8::bigint[], $9::text[])`,
      [
        entries.map((e) => e.seq),
        entries.map((e) => e.jobId),
        entries.map((e) => e.attemptId),
        entries.map((e) => e.nodeKey),
        entries.map((e) => e.prevHash),
        entries.map((e) => e.entryHash),
        entries.map((e) => e.receipt),
        entries.map((e) => e.now),
        entries.map((e) => e.kind ?? "receipt"),
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

  async entryOfJob(jobId: string): Promise<LogEntry | undefined> {
    const [r] = await rows(this.pool, `SELECT * FROM execution_log WHERE job_id = $1 AND kind = 'receipt'`, [jobId]);
    return r && rowToLogEntry(r);
  }

  async range(from: number, to: number): Promise<LogEntry[]> {
    return (
      await rows(this.pool, `SELECT * FROM execution_log WHERE seq BETWEEN $1 AND $2 ORDER BY seq`, [from, to])
    ).map(rowToLogEntry);
  }

  async hashes(from: number, to: number): Promise<string[]> {
    return (
      await rows(this.pool, `SELECT entry_hash FROM execution_log WHERE seq BETWEEN $1 AND $2 ORDER BY seq`, [from, to])
    ).map((r) => r.entry_hash as string);
  }

  async periods(from: number, to: number): Promise<SignedLogPeriod[]> {
    return (
      await rows(this.pool, `SELECT * FROM log_periods WHERE to_seq >= $1 AND from_seq <= $2 ORDER BY from_seq`, [
        from,
        to,
      ])
    ).map(rowToPeriod);
  }

  async periodOf(seq: number): Promise<SignedLogPeriod | undefined> {
    const [r] = await rows(this.pool, `SELECT * FROM log_periods WHERE from_seq <= $1 AND to_seq >= $1`, [seq]);
    return r && rowToPeriod(r);
  }

  async lastPeriod(): Promise<SignedLogPeriod | undefined> {
    const [r] = await rows(this.pool, `SELECT * FROM log_periods ORDER BY from_seq DESC LIMIT 1`);
    return r && rowToPeriod(r);
  }

  /** Replicas sealing at once: the unique `from_seq` and `to_seq` let one win; the rest write nothing. */
  async sealPeriod(p: SignedLogPeriod): Promise<boolean> {
    const r = await this.pool.query(
      `INSERT INTO log_periods (from_seq, to_seq, root, last_hash, signed_at, key_id, signature)
       SELECT $1::bigint, $2::bigint, $3::text, $4::text, $5::bigint, $6::text, $7::text
       WHERE $1::bigint = 1 + COALESCE((SELECT MAX(to_seq) FROM log_periods), 0)
       ON CONFLICT DO NOTHING`,
      [p.from, p.to, p.root, p.last_hash, p.signed_at, p.key_id, p.signature],
    );
    return r.rowCount === 1;
  }

  async keys(): Promise<CoordinatorKeyView[]> {
    return (await rows(this.pool, `SELECT * FROM coordinator_keys ORDER BY valid_from, key_id`)).map(rowToKey);
  }

  async registerKey(key: NewCoordinatorKey): Promise<void> {
    await this.tx(async (c) => {
      await c.query(
        `INSERT INTO coordinator_keys (key_id, public_key, replica, valid_from, certificate, activation)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key_id) DO NOTHING`,
        [
          key.keyId,
          key.publicKey,
          key.replica,
          key.now,
          key.certificate ? JSON.stringify(key.certificate) : null,
          key.activation ? JSON.stringify(key.activation) : null,
        ],
      );
      await c.query(
        `UPDATE coordinator_keys SET valid_until = $1 WHERE replica = $2 AND key_id <> $3 AND valid_until IS NULL`,
        [key.now, key.replica, key.keyId],
      );
    });
  }
}
