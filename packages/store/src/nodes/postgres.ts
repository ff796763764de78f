import type pg from "pg";
import { rows, type Tx } from "../postgres/db.js";
import { nodeClaim, retiredName, rowToNode } from "./rows.js";
import type { NodeRow, NodeStore, UpsertNodeInput, UpsertNodeResult } from "./types.js";

/** The nodes domain on PostgreSQL: a join locks the key's and the name's rows, so two joins agree. */
export class PostgresNodes implements NodeStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly tx: Tx,
  ) {}

  async upsert(input: UpsertNodeInput): Promise<UpsertNodeResult> {
    return this.tx(async (c): Promise<UpsertNodeResult> => {
      const [keyRow] = await rows(c, `SELECT account_id FROM nodes WHERE key = $1 FOR UPDATE`, [input.key]);
      const [nameRow] = await rows(c, `SELECT key, account_id FROM nodes WHERE name = $1 FOR UPDATE`, [input.name]);
      const decision = nodeClaim(
        keyRow as { account_id: string | null } | undefined,
        nameRow as { key: string; account_id: string | null } | undefined,
        input,
      );
      if (!decision.ok) return decision;
      if (decision.moveFrom)
        await c.query(`UPDATE nodes SET name = $1 WHERE key = $2`, [
          retiredName(input.name, decision.moveFrom),
          decision.moveFrom,
        ]);
      await c.query(
        `INSERT INTO nodes (key, name, capabilities, hardware, compute_class, online, first_seen_at, last_seen_at,
           account_id)
         VALUES ($1, $2, $3, $4, $5, true, $6, $6, $7)
         ON CONFLICT (key) DO UPDATE SET name = excluded.name, capabilities = excluded.capabilities,
           hardware = excluded.hardware, compute_class = excluded.compute_class, online = true,
           last_seen_at = excluded.last_seen_at, account_id = COALESCE(nodes.account_id, excluded.account_id)`,
        [
          input.key,
          input.name,
          JSON.stringify(input.capabilities),
          JSON.stringify(input.hardware),
          input.hardware.compute_class,
          input.now,
          decision.accountId,
        ],
      );
      return { ok: true };
    }).catch((err: unknown) => {
      // Two keys racing for one new name: the UNIQUE constraint decides.
      if ((err as { code?: string }).code === "23505") return { ok: false, reason: "name_taken" } as const;
      throw err;
    });
  }

  async setOnline(key: string, online: boolean, now: number): Promise<void> {
    await this.pool.query(`UPDATE nodes SET online = $1, last_seen_at = $2 WHERE key = $3`, [online, now, key]);
  }

  async get(key: string): Promise<NodeRow | undefined> {
    const [row] = await rows(this.pool, `SELECT * FROM nodes WHERE key = $1`, [key]);
    return row && rowToNode(row);
  }

  async list(): Promise<NodeRow[]> {
    return (await rows(this.pool, `SELECT * FROM nodes ORDER BY first_seen_at`)).map(rowToNode);
  }
}
