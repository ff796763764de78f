import Database from "better-sqlite3";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { SqliteAccounts } from "../accounts/sqlite.js";
import { SqliteJobs } from "../jobs/sqlite.js";
import { SqliteLedger } from "../ledger/sqlite.js";
import { SqliteLog } from "../log/sqlite.js";
import { loadMigrations } from "../migrations.js";
import { SqliteNodes } from "../nodes/sqlite.js";
import { SqliteWorkflows } from "../workflows/sqlite.js";
import { SqliteGovernance } from "../governance/sqlite.js";
import type { Store } from "../types.js";

export interface SqliteStoreOptions {
  /** Database file; `:memory:` for a throwaway database. Default `./data/havn.db`. */
  readonly path?: string;
}

/**
 * SQLite through better-sqlite3, one file in WAL mode. Every domain shares the one connection, so
 * a transaction (`db.transaction`) spans whichever domains a transition touches.
 */
export class SqliteStore implements Store {
  readonly kind = "sqlite" as const;
  readonly caps = { skipLocked: false, sharedByReplicas: false, notifications: false } as const;
  readonly path: string;
  private readonly db: Database.Database;
  readonly jobs: SqliteJobs;
  readonly nodes: SqliteNodes;
  readonly log: SqliteLog;
  readonly accounts: SqliteAccounts;
  readonly ledger: SqliteLedger;
  readonly workflows: SqliteWorkflows;
  readonly governance: SqliteGovernance;
  private readonly pingStmt: () => unknown;

  constructor(options: SqliteStoreOptions = {}) {
    this.path = options.path ?? "./data/havn.db";
    if (this.path !== ":memory:") {
      // Every prompt, output and credential hash is in this file: only its owner may read it.
      // SQLite creates the -wal and -shm files with the database file's permissions.
      const dir = dirname(this.path);
      const created = !existsSync(dir);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (created) chmodSync(dir, 0o700);
      if (!existsSync(this.path)) closeSync(openSync(this.path, "a", 0o600));
      chmodSync(this.path, 0o600);
    }
    this.db = new Database(this.path);
    this.db.pragma("journal_mode = WAL");
    // NORMAL in WAL mode is durable across process crashes; only an OS crash can lose the last
    // transactions. FULL would fsync every commit and cut write throughput ~10x.
    this.db.pragma("synchronous = NORMAL");
    this.db.pragma("busy_timeout = 5000");
    this.db.pragma("foreign_keys = ON");
    this.accounts = new SqliteAccounts(this.db);
    this.log = new SqliteLog(this.db);
    this.ledger = new SqliteLedger(this.db, this.log);
    this.nodes = new SqliteNodes(this.db);
    this.workflows = new SqliteWorkflows(this.db);
    this.governance = new SqliteGovernance(this.db);
    this.jobs = new SqliteJobs(this.db, this.ledger, this.log);
    let ping: Database.Statement | undefined;
    this.pingStmt = () => (ping ??= this.db.prepare(`SELECT 1`)).get();
  }

  async migrate(): Promise<void> {
    this.db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
      applied_at INTEGER NOT NULL)`);
    const applied = new Set(
      (this.db.prepare(`SELECT version FROM schema_migrations`).all() as { version: number }[]).map((r) => r.version),
    );
    for (const m of loadMigrations("sqlite")) {
      if (applied.has(m.version)) continue;
      this.db
        .transaction(() => {
          this.db.exec(m.sql);
          this.db.prepare(`INSERT INTO schema_migrations VALUES (?, ?, ?)`).run(m.version, m.name, Date.now());
        })
        .immediate();
    }
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async ping(): Promise<void> {
    this.pingStmt();
  }

  /** One process owns the file: there is no one else to hear from. */
  async watch(): Promise<() => Promise<void>> {
    return async () => {};
  }
}
