import type pg from "pg";
import { rows, type Tx } from "../postgres/db.js";
import { rowToWorkflow } from "./rows.js";
import type { NewWorkflow, PublishResult, WorkflowRow, WorkflowStore } from "./types.js";

/** The workflow registry on PostgreSQL: a publish locks its name, so two creators cannot both take it. */
export class PostgresWorkflows implements WorkflowStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly tx: Tx,
  ) {}

  async publish(w: NewWorkflow): Promise<PublishResult> {
    return this.tx(async (c): Promise<PublishResult> => {
      await c.query(`SELECT pg_advisory_xact_lock(hashtext('havn:workflow:' || $1))`, [w.name]);
      const [owner] = await rows(c, `SELECT creator_id FROM workflows WHERE name = $1 LIMIT 1`, [w.name]);
      if (owner && owner.creator_id !== w.creatorId) return "name_taken";
      const r = await c.query(
        `INSERT INTO workflows (id, name, version, creator_id, manifest, content_hash, origin_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
        [w.id, w.name, w.version, w.creatorId, JSON.stringify(w.manifest), w.contentHash, w.originId, w.createdAt],
      );
      return r.rowCount === 1 ? "published" : "version_exists";
    });
  }

  async get(id: string): Promise<WorkflowRow | undefined> {
    const [r] = await rows(this.pool, `SELECT * FROM workflows WHERE id = $1`, [id]);
    return r && rowToWorkflow(r);
  }

  async byName(name: string, version?: string): Promise<WorkflowRow | undefined> {
    const [r] =
      version === undefined
        ? await rows(this.pool, `SELECT * FROM workflows WHERE name = $1 ORDER BY created_at DESC, id DESC LIMIT 1`, [
            name,
          ])
        : await rows(this.pool, `SELECT * FROM workflows WHERE name = $1 AND version = $2`, [name, version]);
    return r && rowToWorkflow(r);
  }

  async firstWithContent(contentHash: string): Promise<WorkflowRow | undefined> {
    const [r] = await rows(
      this.pool,
      `SELECT * FROM workflows WHERE content_hash = $1 ORDER BY created_at, id LIMIT 1`,
      [contentHash],
    );
    return r && rowToWorkflow(r);
  }

  async flaggedWithContent(contentHash: string): Promise<boolean> {
    const found = await rows(
      this.pool,
      `SELECT 1 FROM workflows WHERE content_hash = $1 AND flagged_at IS NOT NULL LIMIT 1`,
      [contentHash],
    );
    return found.length > 0;
  }

  async list(query: { readonly creatorId?: string; readonly limit: number }): Promise<WorkflowRow[]> {
    const found =
      query.creatorId === undefined
        ? await rows(this.pool, `SELECT * FROM workflows ORDER BY created_at DESC, id DESC LIMIT $1`, [query.limit])
        : await rows(
            this.pool,
            `SELECT * FROM workflows WHERE creator_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
            [query.creatorId, query.limit],
          );
    return found.map(rowToWorkflow);
  }

  async setFlag(id: string, flagged: boolean, reason: string | null, now: number): Promise<WorkflowRow | undefined> {
    const [r] = await rows(
      this.pool,
      `UPDATE workflows SET flagged_at = $1, flag_reason = $2 WHERE id = $3 RETURNING *`,
      [flagged ? now : null, flagged ? reason : null, id],
    );
    return r && rowToWorkflow(r);
  }

  async earnings(id: string): Promise<{ earned: bigint; direct: bigint; upstream: bigint; runs: number }> {
    const { rows: found } = await this.pool.query({
      text: `SELECT COALESCE(SUM(amount), 0)::text AS earned,
               COALESCE(SUM(CASE WHEN direct THEN amount ELSE 0 END), 0)::text AS direct, COUNT(*)::int AS runs
             FROM workflow_earnings WHERE workflow_id = $1`,
      values: [id],
    });
    const r = found[0] as { earned: string; direct: string; runs: number };
    const earned = BigInt(r.earned);
    const direct = BigInt(r.direct);
    return { earned, direct, upstream: earned - direct, runs: r.runs };
  }
}
