import type Database from "better-sqlite3";
import type { CoordinatorKeyView, SignedLogPeriod } from "@havn/protocol";
import type { RawRow } from "../columns.js";
import { rowToKey, rowToLogEntry, rowToPeriod } from "./rows.js";
import type { LogEntry, LogHead, LogStore, NewCoordinatorKey, NewLogEntry } from "./types.js";
import { preparedOnFirstUse } from "../sqlite/domain.js";

function statements(db: Database.Database) {
  return {
    head: db.prepare(`SELECT seq, entry_hash FROM execution_log ORDER BY seq DESC LIMIT 1`),
    entry: db.prepare(`SELECT * FROM execution_log WHERE seq = ?`),
    entryOfJob: db.prepare(`SELECT * FROM execution_log WHERE job_id = ? AND kind = 'receipt'`),
    range: db.prepare(`SELECT * FROM execution_log WHERE seq BETWEEN ? AND ? ORDER BY seq`),
    hashes: db.prepare(`SELECT entry_hash FROM execution_log WHERE seq BETWEEN ? AND ? ORDER BY seq`).pluck(),
    periods: db.prepare(`SELECT * FROM log_periods WHERE to_seq >= ? AND from_seq <= ? ORDER BY from_seq`),
    periodOf: db.prepare(`SELECT * FROM log_periods WHERE from_seq <= ? AND to_seq >= ?`),
    lastPeriod: db.prepare(`SELECT * FROM log_periods ORDER BY from_seq DESC LIMIT 1`),
    seal: db.prepare(
      `INSERT INTO log_periods (from_seq, to_seq, root, last_hash, signed_at, key_id, signature)
       SELECT @from, @to, @root, @last_hash, @signed_at, @key_id, @signature
       WHERE @from = 1 + COALESCE((SELECT MAX(to_seq) FROM log_periods), 0)
       ON CONFLICT DO NOTHING`,
    ),
    keys: db.prepare(`SELECT * FROM coordinator_keys ORDER BY valid_from, key_id`),
    addKey: db.prepare(
      `INSERT INTO coordinator_keys (key_id, public_key, replica, valid_from, certificate, activation)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING`,
    ),
    retireKeys: db.prepare(
      `UPDATE coordinator_keys SET valid_until = ? WHERE replica = ? AND key_id <> ? AND valid_until IS NULL`,
    ),
    append: db.prepare(
      `INSERT INTO execution_log (seq, job_id, kind, attempt_id, node_key, prev_hash, entry_hash, receipt, created_at)
       VALUES (@seq, @jobId, @kind, @attemptId, @nodeKey, @prevHash, @entryHash, @receipt, @now)`,
    ),
  };
}

/** The execution log on SQLite: one writer (this process), so the head is the newest row. */
export class SqliteLog implements LogStore {
  private readonly q = preparedOnFirstUse(() => statements(this.db));

  constructor(private readonly db: Database.Database) {}

  headSync(): LogHead | undefined {
    const r = this.q.head.get() as { seq: number; entry_hash: string } | undefined;
    return r && { seq: r.seq, entryHash: r.entry_hash };
  }

  /** Appends an entry inside the caller's transaction (a job's completion). */
  appendSync(entry: NewLogEntry): void {
    this.q.append.run({ ...entry, kind: entry.kind ?? "receipt" });
  }

  async entry(seq: number): Promise<LogEntry | undefined> {
    const r = this.q.entry.get(seq) as RawRow | undefined;
    return r && rowToLogEntry(r);
  }

  async head(): Promise<LogHead | undefined> {
    return this.headSync();
  }

  async entryOfJob(jobId: string): Promise<LogEntry | undefined> {
    const r = this.q.entryOfJob.get(jobId) as RawRow | undefined;
    return r && rowToLogEntry(r);
  }

  async range(from: number, to: number): Promise<LogEntry[]> {
    return (this.q.range.all(from, to) as RawRow[]).map(rowToLogEntry);
  }

  async hashes(from: number, to: number): Promise<string[]> {
    return this.q.hashes.all(from, to) as string[];
  }

  async periods(from: number, to: number): Promise<SignedLogPeriod[]> {
    return (this.q.periods.all(from, to) as RawRow[]).map(rowToPeriod);
  }

  async periodOf(seq: number): Promise<SignedLogPeriod | undefined> {
    const r = this.q.periodOf.get(seq, seq) as RawRow | undefined;
    return r && rowToPeriod(r);
  }

  async lastPeriod(): Promise<SignedLogPeriod | undefined> {
    const r = this.q.lastPeriod.get() as RawRow | undefined;
    return r && rowToPeriod(r);
  }

  async sealPeriod(period: SignedLogPeriod): Promise<boolean> {
    return this.q.seal.run(period).changes === 1;
  }

  async keys(): Promise<CoordinatorKeyView[]> {
    return (this.q.keys.all() as RawRow[]).map(rowToKey);
  }

  async registerKey(key: NewCoordinatorKey): Promise<void> {
    this.db.transaction(() => {
      const certificate = key.certificate ? JSON.stringify(key.certificate) : null;
      const activation = key.activation ? JSON.stringify(key.activation) : null;
      this.q.addKey.run(key.keyId, key.publicKey, key.replica, key.now, certificate, activation);
      this.q.retireKeys.run(key.now, key.replica, key.keyId);
    })();
  }
}
