import type pg from "pg";
import { rows, type Tx } from "../postgres/db.js";
import { paramSetter, rowToHold, rowToParam, rowToProposal, rowToVote } from "./rows.js";
import { sameVote, withChanges } from "./sqlite.js";
import type {
  DecideInput,
  GovernanceStore,
  HoldRow,
  NewProposal,
  ParamRow,
  ProposalRow,
  ProposalState,
  VoteResult,
  VoteRow,
} from "./types.js";

/**
 * Governance on PostgreSQL: a vote and a decision lock the proposal's row, so replicas voting and
 * deciding at once agree — a vote lands before the decision or is refused as closed.
 */
export class PostgresGovernance implements GovernanceStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly tx: Tx,
  ) {}

  async params(): Promise<ParamRow[]> {
    return (await rows(this.pool, `SELECT * FROM params ORDER BY name`)).map(rowToParam);
  }

  async initParams(values: Readonly<Record<string, string>>, now: number): Promise<void> {
    const entries = Object.entries(values);
    if (entries.length === 0) return;
    await this.pool.query(
      `INSERT INTO params (name, value, updated_at, updated_by)
       SELECT n, v, $3, 'config' FROM unnest($1::text[], $2::text[]) AS t (n, v)
       ON CONFLICT (name) DO NOTHING`,
      [entries.map(([n]) => n), entries.map(([, v]) => v), now],
    );
  }

  async propose(p: NewProposal): Promise<{ proposal: ProposalRow; replayed: boolean }> {
    const inserted = await this.pool.query(
      `INSERT INTO proposals (id, idempotency_key, proposer, action, reason, state, by_admin, created_at, ends_at)
       VALUES ($1, $2, $3, $4, $5, 'voting', $6, $7, $8) ON CONFLICT (idempotency_key) DO NOTHING`,
      [p.id, p.idempotencyKey, p.proposer, JSON.stringify(p.action), p.reason, p.byAdmin, p.createdAt, p.endsAt],
    );
    const [row] = await rows(this.pool, `SELECT * FROM proposals WHERE idempotency_key = $1`, [p.idempotencyKey]);
    return { proposal: rowToProposal(row!), replayed: inserted.rowCount === 0 };
  }

  async proposal(id: string): Promise<ProposalRow | undefined> {
    const [row] = await rows(this.pool, `SELECT * FROM proposals WHERE id = $1`, [id]);
    return row && rowToProposal(row);
  }

  async proposals(query: { readonly state?: ProposalState; readonly limit: number }): Promise<ProposalRow[]> {
    const found = query.state
      ? await rows(this.pool, `SELECT * FROM proposals WHERE state = $1 ORDER BY created_at DESC, id LIMIT $2`, [
          query.state,
          query.limit,
        ])
      : await rows(this.pool, `SELECT * FROM proposals ORDER BY created_at DESC, id LIMIT $1`, [query.limit]);
    return found.map(rowToProposal);
  }

  async due(now: number, limit: number): Promise<ProposalRow[]> {
    return (
      await rows(
        this.pool,
        `SELECT * FROM proposals WHERE state = 'voting' AND NOT by_admin AND ends_at <= $1 ORDER BY ends_at LIMIT $2`,
        [now, limit],
      )
    ).map(rowToProposal);
  }

  async vote(v: VoteRow): Promise<VoteResult> {
    return this.tx(async (c): Promise<VoteResult> => {
      const [row] = await rows(c, `SELECT * FROM proposals WHERE id = $1 FOR UPDATE`, [v.proposalId]);
      if (!row) return { ok: false, reason: "not_found" };
      const [existing] = await rows(c, `SELECT * FROM votes WHERE proposal_id = $1 AND voter = $2`, [
        v.proposalId,
        v.voter,
      ]);
      if (existing) return sameVote(rowToVote(existing), v);
      const proposal = rowToProposal(row);
      if (proposal.state !== "voting" || v.at >= proposal.endsAt) return { ok: false, reason: "closed" };
      await c.query(`INSERT INTO votes (proposal_id, voter, choice, weight, created_at) VALUES ($1, $2, $3, $4, $5)`, [
        v.proposalId,
        v.voter,
        v.choice,
        v.weight,
        v.at,
      ]);
      return { ok: true, vote: v, replayed: false };
    });
  }

  async votes(proposalId: string): Promise<VoteRow[]> {
    return (
      await rows(this.pool, `SELECT * FROM votes WHERE proposal_id = $1 ORDER BY created_at, voter`, [proposalId])
    ).map(rowToVote);
  }

  async decide(input: DecideInput): Promise<ProposalState | undefined> {
    return this.tx(async (c): Promise<ProposalState | undefined> => {
      const [row] = await rows(c, `SELECT * FROM proposals WHERE id = $1 FOR UPDATE`, [input.id]);
      if (!row || row.state !== "voting") return undefined;
      const e = input.effects;
      // The whole table locked: two proposals decided at once on two replicas are checked in turn.
      const problems =
        e?.params && input.validate
          ? input.validate(
              withChanges(await rows(c, `SELECT name, value FROM params ORDER BY name FOR UPDATE`), e.params),
            )
          : [];
      const [state, tally] =
        problems.length > 0
          ? (["failed", { ...input.tally, outcome: problems.join("; ") }] as const)
          : ([input.state, input.tally] as const);
      await c.query(`UPDATE proposals SET state = $1, tally = $2, decided_at = $3 WHERE id = $4`, [
        state,
        JSON.stringify(tally),
        input.now,
        input.id,
      ]);
      if (problems.length > 0) return state;
      const by = paramSetter(rowToProposal(row));
      for (const [name, value] of Object.entries(e?.params ?? {}))
        await c.query(`UPDATE params SET value = $1, updated_at = $2, updated_by = $3 WHERE name = $4`, [
          value,
          input.now,
          by,
          name,
        ]);
      if (e?.hold)
        await c.query(
          `INSERT INTO governance_holds (subject, kind, reason, proposal_id, created_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (subject, kind) DO UPDATE SET reason = excluded.reason,
             proposal_id = excluded.proposal_id, created_at = excluded.created_at`,
          [e.hold.subject, e.hold.kind, e.hold.reason, e.hold.proposalId, e.hold.at],
        );
      if (e?.release)
        await c.query(`DELETE FROM governance_holds WHERE subject = $1 AND kind = $2`, [
          e.release.subject,
          e.release.kind,
        ]);
      return state;
    });
  }

  async holds(): Promise<HoldRow[]> {
    return (await rows(this.pool, `SELECT * FROM governance_holds ORDER BY subject`)).map(rowToHold);
  }
}
