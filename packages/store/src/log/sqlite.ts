import type Database from "better-sqlite3";
import type { RawRow } from "../columns.js";
import { rowToLogEntry } from "./rows.js";
import type { LogEntry, LogHead, LogStore, NewLogEntry } from "./types.js";

/** The execution log on SQLite: one writer (this process), so the head is the newest row. */
export class SqliteLog implements LogStore {
  private prepared: ReturnType<SqliteLog["prepare"]> | undefined;

  constructor(private readonly db: Database.Database) {}

  private get q() {
    this.prepared ??= this.prepare();
    return this.prepared;
  }

  private prepare() {
    const db = this.db;
    return {
      head: db.prepare(`SELECT seq, entry_hash FROM execution_log ORDER BY seq DESC LIMIT 1`),
      entry: db.prepare(`SELECT * FROM execution_log WHERE seq = ?`),
      append: db.prepare(
        `INSERT INTO execution_log (seq, job_id, attempt_id, node_key, prev_hash, entry_hash, receipt, created_at)
         VALUES (@seq, @jobId, @attemptId, @nodeKey, @prevHash, @entryHash, @receipt, @now)`,
      ),
    };
  }

  headSync(): LogHead | undefined {
    const r = this.q.head.get() as { seq: number; entry_hash: string } | undefined;
    return r && { seq: r.seq, entryHash: r.entry_hash };
  }

  /** Appends an entry inside the caller's transaction (a job's completion). */
  appendSync(entry: NewLogEntry): void {
    this.q.append.run(entry);
  }

  async entry(seq: number): Promise<LogEntry | undefined> {
    const r = this.q.entry.get(seq) as RawRow | undefined;
    return r && rowToLogEntry(r);
  }

  async head(): Promise<LogHead | undefined> {
    return this.headSync();
  }
}
