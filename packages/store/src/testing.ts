import pg from "pg";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "./open-store.js";
import type { Store } from "./types.js";

export const storeKinds = ["sqlite", "postgres"] as const;
export type StoreKind = (typeof storeKinds)[number];

const templateName = "havn_template";

/** Creates the migrated template database that every test database is cloned from. */
export async function prepareTemplateDatabase(adminUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${templateName}`);
    await admin.query(`CREATE DATABASE ${templateName}`);
  } finally {
    await admin.end();
  }
  const store = await openStore({ databaseUrl: withDatabase(adminUrl, templateName) });
  await store.close();
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A fresh, migrated PostgreSQL database cloned from the template (~30 ms). */
export async function createTestDatabase(adminUrl: string): Promise<string> {
  const name = `havn_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${templateName}`);
  } finally {
    await admin.end();
  }
  return withDatabase(adminUrl, name);
}

/** A fresh store of the given kind: SQLite in memory, or a cloned PostgreSQL database. */
export async function openTestStore(kind: StoreKind, adminUrl: string | undefined): Promise<Store> {
  if (kind === "sqlite") return openStore({ sqlitePath: ":memory:" });
  if (adminUrl === undefined) throw new Error("openTestStore: no PostgreSQL admin URL was provided to the tests");
  return openStore({ databaseUrl: await createTestDatabase(adminUrl) });
}

/**
 * One fresh database a test opens more than once (a restart): SQLite in a temporary file, or a
 * cloned PostgreSQL database. Each call of the returned function opens a new store on it; `remove`
 * deletes the SQLite file's folder (PostgreSQL test databases go with the server).
 */
export async function reopenableTestStore(
  kind: StoreKind,
  adminUrl: string | undefined,
): Promise<{ open: () => Promise<Store>; remove: () => void }> {
  if (kind === "postgres") {
    if (adminUrl === undefined) throw new Error("reopenableTestStore: no PostgreSQL admin URL was provided");
    const url = await createTestDatabase(adminUrl);
    return { open: () => openStore({ databaseUrl: url }), remove: () => {} };
  }
  const dir = mkdtempSync(join(tmpdir(), "havn-store-"));
  return {
    open: () => openStore({ sqlitePath: join(dir, "havn.db") }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
