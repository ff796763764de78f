import type Database from "better-sqlite3";
import type { RawRow } from "../columns.js";
import { preparedOnFirstUse } from "../sqlite/domain.js";
import { rowToWorkflow } from "./rows.js";
import type { NewWorkflow, PublishResult, WorkflowRow, WorkflowStore } from "./types.js";

function statements(db: Database.Database) {
  return {
    nameOwner: db.prepare(`SELECT creator_id FROM workflows WHERE name = ? LIMIT 1`),
    insert: db.prepare(
      `INSERT INTO workflows (id, name, version, creator_id, manifest, content_hash, origin_id, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    ),
    get: db.prepare(`SELECT * FROM workflows WHERE id = ?`),
    latest: db.prepare(`SELECT * FROM workflows WHERE name = ? ORDER BY created_at DESC, id DESC LIMIT 1`),
    version: db.prepare(`SELECT * FROM workflows WHERE name = ? AND version = ?`),
    firstWithContent: db.prepare(`SELECT * FROM workflows WHERE content_hash = ? ORDER BY created_at, id LIMIT 1`),
    flaggedWithContent: db.prepare(`SELECT 1 FROM workflows WHERE content_hash = ? AND flagged_at IS NOT NULL LIMIT 1`),
    list: db.prepare(`SELECT * FROM workflows ORDER BY created_at DESC, id DESC LIMIT ?`),
    listBy: db.prepare(`SELECT * FROM workflows WHERE creator_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`),
    setFlag: db.prepare(`UPDATE workflows SET flagged_at = ?, flag_reason = ? WHERE id = ? RETURNING *`),
    earnings: db
      .prepare(
        `SELECT COALESCE(SUM(amount), 0) AS earned,
           COALESCE(SUM(CASE WHEN direct = 1 THEN amount ELSE 0 END), 0) AS direct,
           COUNT(*) AS runs
         FROM workflow_earnings WHERE workflow_id = ?`,
      )
      .safeIntegers(true),
  };
}

/** The workflow registry on SQLite. */
export class SqliteWorkflows implements WorkflowStore {
  private readonly q = preparedOnFirstUse(() => statements(this.db));

  constructor(private readonly db: Database.Database) {}

  async publish(w: NewWorkflow): Promise<PublishResult> {
    return this.db
      .transaction((): PublishResult => {
        const owner = this.q.nameOwner.get(w.name) as { creator_id: string } | undefined;
        if (owner && owner.creator_id !== w.creatorId) return "name_taken";
        const { changes } = this.q.insert.run(
          w.id,
          w.name,
          w.version,
          w.creatorId,
          JSON.stringify(w.manifest),
          w.contentHash,
          w.originId,
          w.createdAt,
        );
        return changes === 1 ? "published" : "version_exists";
      })
      .immediate();
  }

  async get(id: string): Promise<WorkflowRow | undefined> {
    const r = this.q.get.get(id) as RawRow | undefined;
    return r && rowToWorkflow(r);
  }

  async byName(name: string, version?: string): Promise<WorkflowRow | undefined> {
    const r = (version === undefined ? this.q.latest.get(name) : this.q.version.get(name, version)) as
      RawRow | undefined;
    return r && rowToWorkflow(r);
  }

  async firstWithContent(contentHash: string): Promise<WorkflowRow | undefined> {
    const r = this.q.firstWithContent.get(contentHash) as RawRow | undefined;
    return r && rowToWorkflow(r);
  }

  async flaggedWithContent(contentHash: string): Promise<boolean> {
    return this.q.flaggedWithContent.get(contentHash) !== undefined;
  }

  async list(query: { readonly creatorId?: string; readonly limit: number }): Promise<WorkflowRow[]> {
    const rows =
      query.creatorId === undefined ? this.q.list.all(query.limit) : this.q.listBy.all(query.creatorId, query.limit);
    return (rows as RawRow[]).map(rowToWorkflow);
  }

  async setFlag(id: string, flagged: boolean, reason: string | null, now: number): Promise<WorkflowRow | undefined> {
    const r = this.q.setFlag.get(flagged ? now : null, flagged ? reason : null, id) as RawRow | undefined;
    return r && rowToWorkflow(r);
  }

  async earnings(id: string): Promise<{ earned: bigint; direct: bigint; upstream: bigint; runs: number }> {
    const r = this.q.earnings.get(id) as { earned: bigint; direct: bigint; runs: bigint };
    return { earned: r.earned, direct: r.direct, upstream: r.earned - r.direct, runs: Number(r.runs) };
  }
}
