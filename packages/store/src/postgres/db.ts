import pg from "pg";
import type { RawRow } from "../columns.js";

/** A pool (a statement on its own) or a client inside a transaction. */
export type Queryable = pg.Pool | pg.PoolClient;

/** Runs `fn` in one transaction on one pooled client: every domain's transactions go through it. */
export type Tx = <T>(fn: (c: pg.PoolClient) => Promise<T>) => Promise<T>;

export function transactions(pool: pg.Pool): Tx {
  return async (fn) => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      const result = await fn(client);
      await client.query("COMMIT");
      return result;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  };
}

export async function rows(db: Queryable, sql: string, params: unknown[] = []): Promise<RawRow[]> {
  return (await db.query(sql, params)).rows as RawRow[];
}

/**
 * BIGINT columns outside the ledger hold millisecond timestamps and counts, far below 2^53: read
 * them as numbers — and refuse, rather than round, one that is not exactly a number. Money is
 * read as bigint by the ledger's own queries (`ledger/postgres.ts`).
 */
function int8AsNumber(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`An INT8 beyond 2^53 was read as a number: ${value}`);
  return n;
}

/** The pool's type parsers (see `int8AsNumber`). */
export const poolTypes = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === pg.types.builtins.INT8
      ? int8AsNumber
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};
