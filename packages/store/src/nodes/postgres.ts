import type pg from "pg";
import { rows, type Tx } from "../postgres/db.js";
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

  async markAbandoned(key: string, lastSeenAt: number, lastEpoch: number | null): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE nodes SET online = false
        WHERE key = $1 AND online AND last_seen_at = $2 AND epoch IS NOT DISTINCT FROM $3`,
      [key, lastSeenAt, lastEpoch],
    );
    return r.rowCount === 1;
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

  async recordReputation(events: readonly ReputationEvent[]): Promise<void> {
    if (events.length === 0) return;
    // One statement: the events in order, then each node's last score.
    await this.pool.query(
      `WITH e AS (
         INSERT INTO reputation_events (node_key, delta, score, cause, job_id, created_at, count)
         SELECT node_key, delta, score, cause, job_id, created_at, count
         FROM unnest($1::text[], $2::float8[], $3::float8[], $4::text[], $5::text[], $6::bigint[], $7::int[])
           WITH ORDINALITY AS x(node_key, delta, score, cause, job_id, created_at, count, n)
         ORDER BY n
         RETURNING node_key
       )
       UPDATE nodes SET reputation = last.score, reputation_at = last.created_at
       FROM (SELECT DISTINCT ON (node_key) node_key, score, created_at
             FROM unnest($1::text[], $3::float8[], $6::bigint[]) WITH ORDINALITY AS y(node_key, score, created_at, n)
             ORDER BY node_key, n DESC) AS last
       WHERE nodes.key = last.node_key`,
      [
        events.map((e) => e.nodeKey),
        events.map((e) => e.delta),
        events.map((e) => e.score),
        events.map((e) => e.cause),
        events.map((e) => e.jobId),
        events.map((e) => e.at),
        events.map((e) => e.count),
      ],
    );
  }

  async reputationEvents(nodeKey: string, limit: number): Promise<ReputationEvent[]> {
    return (
      await rows(this.pool, `SELECT * FROM reputation_events WHERE node_key = $1 ORDER BY id DESC LIMIT $2`, [
        nodeKey,
        limit,
      ])
    ).map(rowToReputationEvent);
  }

  async recordEpoch(input: EpochInput): Promise<EpochOutcome | undefined> {
    return this.tx(async (c) => {
      const [row] = await rows(c, `SELECT epoch, missed_epochs, quarantined_at FROM nodes WHERE key = $1 FOR UPDATE`, [
        input.key,
      ]);
      if (!row || (row.epoch !== null && Number(row.epoch) >= input.epoch)) return undefined;
      const step = epochStep(
        {
          missedEpochs: Number(row.missed_epochs),
          quarantinedAt: row.quarantined_at === null ? null : Number(row.quarantined_at),
        },
        input,
      );
      await c.query(`UPDATE nodes SET epoch = $1, missed_epochs = $2, quarantined_at = $3 WHERE key = $4`, [
        input.epoch,
        step.missedEpochs,
        step.quarantinedAt,
        input.key,
      ]);
      return { missedEpochs: step.missedEpochs, quarantined: step.quarantined, change: step.change };
    });
  }

  async setPromise(key: string, promise: AvailabilityPromise | null): Promise<void> {
    await this.pool.query(`UPDATE nodes SET promise = $1 WHERE key = $2`, [promise && JSON.stringify(promise), key]);
  }

  async quarantinedKeys(): Promise<string[]> {
    return (await rows(this.pool, `SELECT key FROM nodes WHERE quarantined_at IS NOT NULL`)).map(
      (r) => r.key as string,
    );
  }

  async getByName(name: string): Promise<NodeRow | undefined> {
    const [row] = await rows(this.pool, `SELECT * FROM nodes WHERE name = $1`, [name]);
    return row && rowToNode(row);
  }

  async completedBetween(since: number, until: number): Promise<{ nodeKey: string; completed: number }[]> {
    return (
      await rows(
        this.pool,
        `SELECT node_key, SUM(count)::bigint AS completed FROM reputation_events
         WHERE cause = 'completed' AND created_at >= $1 AND created_at < $2 GROUP BY node_key ORDER BY node_key`,
        [since, until],
      )
    ).map((r) => ({ nodeKey: r.node_key as string, completed: Number(r.completed) }));
  }
}
