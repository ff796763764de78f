import type Database from "better-sqlite3";
import type { RawRow } from "../columns.js";
import { epochStep, nodeClaim, retiredName, rowToNode, rowToReputationEvent } from "./rows.js";
import type {
  AvailabilityPromise,
  EpochInput,
  EpochOutcome,
  NodeRow,
  NodeStore,
  ReputationEvent,
  UpsertNodeInput,
  UpsertNodeResult,
} from "./types.js";
import { preparedOnFirstUse } from "../sqlite/domain.js";

function statements(db: Database.Database) {
  return {
    byName: db.prepare(`SELECT key, account_id FROM nodes WHERE name = ?`),
    owner: db.prepare(`SELECT account_id FROM nodes WHERE key = ?`),
    rename: db.prepare(`UPDATE nodes SET name = ? WHERE key = ?`),
    upsert: db.prepare(
      `INSERT INTO nodes (key, name, capabilities, hardware, compute_class, online, first_seen_at, last_seen_at,
         account_id)
       VALUES (@key, @name, @capabilities, @hardware, @computeClass, 1, @now, @now, @accountId)
       ON CONFLICT (key) DO UPDATE SET name = excluded.name, capabilities = excluded.capabilities,
         hardware = excluded.hardware, compute_class = excluded.compute_class, online = 1,
         last_seen_at = excluded.last_seen_at, account_id = COALESCE(nodes.account_id, excluded.account_id)`,
    ),
    setOnline: db.prepare(`UPDATE nodes SET online = ?, last_seen_at = ? WHERE key = ?`),
    markAbandoned: db.prepare(
      `UPDATE nodes SET online = 0 WHERE key = ? AND online = 1 AND last_seen_at = ? AND epoch IS ?`,
    ),
    get: db.prepare(`SELECT * FROM nodes WHERE key = ?`),
    list: db.prepare(`SELECT * FROM nodes ORDER BY first_seen_at`),
    addReputation: db.prepare(
      `INSERT INTO reputation_events (node_key, delta, score, cause, job_id, created_at, count)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ),
    setReputation: db.prepare(`UPDATE nodes SET reputation = ?, reputation_at = ? WHERE key = ?`),
    reputationEvents: db.prepare(`SELECT * FROM reputation_events WHERE node_key = ? ORDER BY id DESC LIMIT ?`),
    epochState: db.prepare(`SELECT epoch, missed_epochs, quarantined_at FROM nodes WHERE key = ?`),
    setEpoch: db.prepare(`UPDATE nodes SET epoch = ?, missed_epochs = ?, quarantined_at = ? WHERE key = ?`),
    setPromise: db.prepare(`UPDATE nodes SET promise = ? WHERE key = ?`),
    quarantined: db.prepare(`SELECT key FROM nodes WHERE quarantined_at IS NOT NULL`),
    getByName: db.prepare(`SELECT * FROM nodes WHERE name = ?`),
    completed: db.prepare(
      `SELECT node_key, SUM(count) AS completed FROM reputation_events
       WHERE cause = 'completed' AND created_at >= ? AND created_at < ? GROUP BY node_key ORDER BY node_key`,
    ),
  };
}

/** The nodes domain on SQLite. */
export class SqliteNodes implements NodeStore {
  private readonly q = preparedOnFirstUse(() => statements(this.db));

  constructor(private readonly db: Database.Database) {}

  async upsert(input: UpsertNodeInput): Promise<UpsertNodeResult> {
    return this.db
      .transaction((): UpsertNodeResult => {
        const decision = nodeClaim(
          this.q.owner.get(input.key) as { account_id: string | null } | undefined,
          this.q.byName.get(input.name) as { key: string; account_id: string | null } | undefined,
          input,
        );
        if (!decision.ok) return decision;
        if (decision.moveFrom) this.q.rename.run(retiredName(input.name, decision.moveFrom), decision.moveFrom);
        this.q.upsert.run({
          key: input.key,
          name: input.name,
          accountId: decision.accountId,
          capabilities: JSON.stringify(input.capabilities),
          hardware: JSON.stringify(input.hardware),
          computeClass: input.hardware.compute_class,
          now: input.now,
        });
        return { ok: true };
      })
      .immediate();
  }

  async markAbandoned(key: string, lastSeenAt: number, lastEpoch: number | null): Promise<boolean> {
    return this.q.markAbandoned.run(key, lastSeenAt, lastEpoch).changes === 1;
  }

  async setOnline(key: string, online: boolean, now: number): Promise<void> {
    this.q.setOnline.run(online ? 1 : 0, now, key);
  }

  async get(key: string): Promise<NodeRow | undefined> {
    const row = this.q.get.get(key) as RawRow | undefined;
    return row && rowToNode(row);
  }

  async list(): Promise<NodeRow[]> {
    return (this.q.list.all() as RawRow[]).map(rowToNode);
  }

  async recordReputation(events: readonly ReputationEvent[]): Promise<void> {
    if (events.length === 0) return;
    this.db.transaction(() => {
      for (const e of events) {
        this.q.addReputation.run(e.nodeKey, e.delta, e.score, e.cause, e.jobId, e.at, e.count);
        this.q.setReputation.run(e.score, e.at, e.nodeKey);
      }
    })();
  }

  async reputationEvents(nodeKey: string, limit: number): Promise<ReputationEvent[]> {
    return (this.q.reputationEvents.all(nodeKey, limit) as RawRow[]).map(rowToReputationEvent);
  }

  async recordEpoch(input: EpochInput): Promise<EpochOutcome | undefined> {
    return this.db
      .transaction(() => {
        const row = this.q.epochState.get(input.key) as RawRow | undefined;
        if (!row || (row.epoch !== null && Number(row.epoch) >= input.epoch)) return undefined;
        const step = epochStep(
          { missedEpochs: Number(row.missed_epochs), quarantinedAt: row.quarantined_at as number | null },
          input,
        );
        this.q.setEpoch.run(input.epoch, step.missedEpochs, step.quarantinedAt, input.key);
        return { missedEpochs: step.missedEpochs, quarantined: step.quarantined, change: step.change };
      })
      .immediate();
  }

  async setPromise(key: string, promise: AvailabilityPromise | null): Promise<void> {
    this.q.setPromise.run(promise && JSON.stringify(promise), key);
  }

  async quarantinedKeys(): Promise<string[]> {
    return (this.q.quarantined.all() as { key: string }[]).map((r) => r.key);
  }

  async getByName(name: string): Promise<NodeRow | undefined> {
    const row = this.q.getByName.get(name) as RawRow | undefined;
    return row && rowToNode(row);
  }

  async completedBetween(since: number, until: number): Promise<{ nodeKey: string; completed: number }[]> {
    return (this.q.completed.all(since, until) as RawRow[]).map((r) => ({
      nodeKey: r.node_key as string,
      completed: Number(r.completed),
    }));
  }
}
