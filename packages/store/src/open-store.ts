import { PostgresStore } from "./postgres/postgres-store.js";
import { SqliteStore } from "./sqlite/sqlite-store.js";
import type { Store } from "./types.js";

export interface OpenStoreOptions {
  /** A `postgres://` URL selects PostgreSQL; otherwise SQLite at `sqlitePath`. */
  readonly databaseUrl?: string | undefined;
  /** Default `./data/havn.db`. */
  readonly sqlitePath?: string | undefined;
  readonly poolSize?: number | undefined;
}

/** Opens and migrates the store the options name. */
export async function openStore(options: OpenStoreOptions = {}): Promise<Store> {
  const url = options.databaseUrl;
  const store: Store =
    url !== undefined && /^postgres(ql)?:\/\//.test(url)
      ? new PostgresStore({ connectionString: url, ...(options.poolSize ? { poolSize: options.poolSize } : {}) })
      : new SqliteStore({ path: options.sqlitePath ?? "./data/havn.db" });
  try {
    await store.migrate();
  } catch (err) {
    await store.close();
    throw err;
  }
  return store;
}
