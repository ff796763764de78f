import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, describe, expect, inject, it } from "vitest";
import { verifyCosignedReceipt } from "@havn/protocol";
import { ledgerAccounts, openStore, type Store } from "../src/index.ts";
import { loadMigrations } from "../src/migrations.ts";
import { claimOf, completion, newJob, seal } from "./fixtures.ts";

/**
 * `fixtures/release-65bba79.sqlite` was written by the release before the ledger (commit 65bba79:
 * `havn` through testkit, five chat jobs completed on a scripted node), and is never rewritten.
 * Opening it with today's code runs the migrations since; the jobs, their receipts and the log
 * must come through intact and verifiable, and money must work on the upgraded database.
 */
const fixture = new URL("./fixtures/release-65bba79.sqlite", import.meta.url).pathname;
/** The schema that release had: the migrations up to these versions. */
const released = { sqlite: 5, postgres: 6 } as const;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** What must survive an upgrade: every job completed, its receipt verifying, the log chained. */
async function checkIntact(store: Store) {
  const head = await store.log.head();
  expect(head?.seq).toBe(5);
  let prev = "0".repeat(64);
  for (let seq = 1; seq <= 5; seq++) {
    const entry = (await store.log.entry(seq))!;
    expect(entry.prevHash).toBe(prev);
    if (entry.kind !== "receipt") throw new Error(`entry #${seq} of the released log is no receipt`);
    const check = verifyCosignedReceipt(entry.receipt);
    expect([seq, check]).toEqual([seq, { node: true, coordinator: true, chain: true }]);
    const job = (await store.jobs.get(entry.jobId))!;
    expect(job).toMatchObject({ status: "completed", money: null });
    expect(job.receipt?.log.entry_hash).toBe(entry.entryHash);
    expect(await store.jobs.output(job.outputCid!)).toBeDefined();
    prev = entry.entryHash;
  }
  expect(prev).toBe(head!.entryHash);
}

/** The ledger works on the upgraded database: a credit, a paid job escrowed, completed, charged. */
async function checkMoney(store: Store) {
  const payer = ledgerAccounts.custodial("acc-upgraded");
  await store.ledger.post({
    kind: "credit",
    idempotencyKey: "after-upgrade",
    now: Date.now(),
    postings: [
      { account: ledgerAccounts.mint, amount: -1_000_000n },
      { account: payer, amount: 1_000_000n },
    ],
  });
  const price = {
    input_per_1k: "100",
    output_per_1k: "200",
    surge_bp: 10_000,
    class_bp: { S: 10_000, M: 15_000, L: 25_000, XL: 40_000 },
  };
  const job = { ...newJob(Date.now()), money: { payer, amount: 10_000n, price } };
  expect(await store.jobs.admit([job])).toEqual(["inserted"]);
  await store.jobs.claim([claimOf(job.id, "att-upgraded", Date.now() + 60_000)], Date.now());
  const [done] = await store.jobs.complete([completion(job.id, "att-upgraded", "after", Date.now())], seal);
  expect(done).toMatchObject({ ok: true, job: { money: { state: "charged" } } });
  expect((await store.log.head())?.seq).toBe(6);
  expect(await store.ledger.total()).toBe(0n);
}

describe("upgrading a database made by the previous release", () => {
  it("on SQLite: the migrations since run; jobs, receipts and the log stay intact; money works", async () => {
    const dir = mkdtempSync(join(tmpdir(), "havn-upgrade-"));
    dirs.push(dir);
    const path = join(dir, "havn.db");
    copyFileSync(fixture, path);
    const before = new Database(path, { readonly: true });
    expect((before.prepare(`SELECT MAX(version) AS v FROM schema_migrations`).get() as { v: number }).v).toBe(
      released.sqlite,
    );
    before.close();
    const store = await openStore({ sqlitePath: path });
    try {
      await checkIntact(store);
      await checkMoney(store);
    } finally {
      await store.close();
    }
  });

  it("on PostgreSQL: the same rows under the released schema, then the migrations since", async () => {
    // The released schema, built from its migrations (they never change once released), holding
    // the fixture's rows.
    const adminUrl = inject("pgAdminUrl");
    const name = `havn_upgrade_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    const db = new pg.Client({ connectionString: url.toString() });
    await db.connect();
    try {
      await db.query(
        `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
      );
      for (const m of loadMigrations("postgres").filter((m) => m.version <= released.postgres)) {
        await db.query(m.sql);
        await db.query(`INSERT INTO schema_migrations VALUES ($1, $2, $3)`, [m.version, m.name, 1]);
      }
      const source = new Database(fixture, { readonly: true });
      const booleans = new Set(["stream", "online", "output_public"]);
      for (const table of [
        "accounts",
        "coordinator_secrets",
        "nodes",
        "jobs",
        "job_attempts",
        "outputs",
        "execution_log",
      ]) {
        for (const row of source.prepare(`SELECT * FROM ${table}`).all() as Record<string, unknown>[]) {
          const columns = Object.keys(row);
          const values = columns.map((c) => (booleans.has(c) && row[c] !== null ? Boolean(row[c]) : row[c]));
          await db.query(
            `INSERT INTO ${table} (${columns.join(", ")}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")})`,
            values,
          );
        }
      }
      const head = source.prepare(`SELECT seq, entry_hash FROM execution_log ORDER BY seq DESC LIMIT 1`).get() as {
        seq: number;
        entry_hash: string;
      };
      await db.query(`UPDATE execution_log_head SET seq = $1, entry_hash = $2 WHERE id = 1`, [
        head.seq,
        head.entry_hash,
      ]);
      source.close();
    } finally {
      await db.end();
    }
    const store = await openStore({ databaseUrl: url.toString() });
    try {
      await checkIntact(store);
      await checkMoney(store);
    } finally {
      await store.close();
    }
  });
});
