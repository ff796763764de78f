import pg from "pg";
import { PostgresAccounts } from "../accounts/postgres.js";
import { PostgresJobs } from "../jobs/postgres.js";
import { PostgresLedger } from "../ledger/postgres.js";
import { PostgresLog } from "../log/postgres.js";
import { loadMigrations } from "../migrations.js";
import { PostgresNodes } from "../nodes/postgres.js";
import { PostgresWorkflows } from "../workflows/postgres.js";
import { PostgresGovernance } from "../governance/postgres.js";
import type { Store, StoreNotification } from "../types.js";
import { poolTypes, transactions } from "./db.js";

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database`. */
  readonly connectionString: string;
  /**
   * Pool size. Default 10: enough to keep a 2–8 core coordinator's event loop busy; each
   * connection costs the server ~10 MB, so many replicas × large pools exhaust `max_connections`.
   */
  readonly poolSize?: number;
}

/**
 * PostgreSQL through node-postgres; several coordinator replicas may share the database. Every
 * domain shares one pool and one transaction mechanism (`transactions`), so a transition that
 * spans domains runs on one client in one transaction.
 */
export class PostgresStore implements Store {
  readonly kind = "postgres" as const;
  readonly caps = { skipLocked: true, sharedByReplicas: true, notifications: true } as const;
  private readonly pool: pg.Pool;
  private readonly connectionString: string;
  readonly jobs: PostgresJobs;
  readonly nodes: PostgresNodes;
  readonly log: PostgresLog;
  readonly accounts: PostgresAccounts;
  readonly ledger: PostgresLedger;
  readonly workflows: PostgresWorkflows;
  readonly governance: PostgresGovernance;

  constructor(options: PostgresStoreOptions) {
    this.connectionString = options.connectionString;
    this.pool = new pg.Pool({
      connectionString: options.connectionString,
      max: options.poolSize ?? 10,
      types: poolTypes,
    });
    // An idle client that loses its connection emits here; without a listener it crashes the process.
    this.pool.on("error", () => {});
    const tx = transactions(this.pool);
    this.accounts = new PostgresAccounts(this.pool, tx);
    this.log = new PostgresLog(this.pool, tx);
    this.ledger = new PostgresLedger(this.pool, tx, this.log);
    this.nodes = new PostgresNodes(this.pool, tx);
    this.workflows = new PostgresWorkflows(this.pool, tx);
    this.governance = new PostgresGovernance(this.pool, tx);
    this.jobs = new PostgresJobs(this.pool, tx, this.ledger, this.log);
  }

  async migrate(): Promise<void> {
    const client = await this.pool.connect();
    try {
      // Replicas starting together: one migrates, the others wait and then find nothing to do.
      await client.query(`SELECT pg_advisory_lock(hashtext('havn:migrate'))`);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
        applied_at BIGINT NOT NULL)`);
      const applied = new Set((await client.query(`SELECT version FROM schema_migrations`)).rows.map((r) => r.version));
      for (const m of loadMigrations("postgres")) {
        if (applied.has(m.version)) continue;
        await client.query("BEGIN");
        try {
          await client.query(m.sql);
          await client.query(`INSERT INTO schema_migrations VALUES ($1, $2, $3)`, [m.version, m.name, Date.now()]);
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK");
          throw err;
        }
      }
    } finally {
      await client.query(`SELECT pg_advisory_unlock(hashtext('havn:migrate'))`).catch(() => {});
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async ping(): Promise<void> {
    await this.pool.query("SELECT 1");
  }

  /**
   * LISTEN on a dedicated connection (a pooled one would be handed to others). A dropped
   * connection is reported and re-established after a second; changes made meanwhile are found
   * by the coordinator's sweep, so nothing depends on a notification arriving.
   */
  async watch(
    onChange: (change: StoreNotification) => void,
    onError: (err: unknown) => void,
  ): Promise<() => Promise<void>> {
    let stopped = false;
    let client: pg.Client | undefined;
    let retry: NodeJS.Timeout | undefined;
    const connect = async () => {
      const c = new pg.Client({ connectionString: this.connectionString });
      c.on("notification", (n) => {
        if (n.channel === "havn_jobs") onChange({ kind: "queued" });
        else if (n.channel === "havn_job_ended" && n.payload) onChange({ kind: "ended", jobId: n.payload });
      });
      c.on("error", (err) => {
        onError(err);
        c.end().catch(() => {});
        if (!stopped) retry = setTimeout(() => void connect().catch(onError), 1_000);
      });
      await c.connect();
      await c.query("LISTEN havn_jobs");
      await c.query("LISTEN havn_job_ended");
      if (stopped) await c.end();
      else client = c;
    };
    await connect();
    return async () => {
      stopped = true;
      clearTimeout(retry);
      await client?.end().catch(() => {});
    };
  }
}
