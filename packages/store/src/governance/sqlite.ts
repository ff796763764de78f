import type Database from "better-sqlite3";
import type { RawRow } from "../columns.js";
import { preparedOnFirstUse } from "../sqlite/domain.js";
import { paramSetter, rowToHold, rowToParam, rowToProposal, rowToVote } from "./rows.js";
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

function statements(db: Database.Database) {
  return {
    params: db.prepare(`SELECT * FROM params ORDER BY name`),
    initParam: db.prepare(
      `INSERT INTO params (name, value, updated_at, updated_by) VALUES (?, ?, ?, 'config') ON CONFLICT (name) DO NOTHING`,
    ),
    setParam: db.prepare(`UPDATE params SET value = ?, updated_at = ?, updated_by = ? WHERE name = ?`),
    insertProposal: db.prepare(
      `INSERT INTO proposals (id, idempotency_key, proposer, action, reason, state, by_admin, created_at, ends_at)
       VALUES (@id, @idempotencyKey, @proposer, @action, @reason, 'voting', @byAdmin, @createdAt, @endsAt)
       ON CONFLICT (idempotency_key) DO NOTHING`,
    ),
    byKey: db.prepare(`SELECT * FROM proposals WHERE idempotency_key = ?`),
    proposal: db.prepare(`SELECT * FROM proposals WHERE id = ?`),
    // An admin's act is executed by the request that made it, never decided by a vote.
    due: db.prepare(
      `SELECT * FROM proposals WHERE state = 'voting' AND by_admin = 0 AND ends_at <= ? ORDER BY ends_at LIMIT ?`,
    ),
    insertVote: db.prepare(
      `INSERT INTO votes (proposal_id, voter, choice, weight, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (proposal_id, voter) DO NOTHING`,
    ),
    vote: db.prepare(`SELECT * FROM votes WHERE proposal_id = ? AND voter = ?`),
    votes: db.prepare(`SELECT * FROM votes WHERE proposal_id = ? ORDER BY created_at, voter`),
    decide: db.prepare(`UPDATE proposals SET state = ?, tally = ?, decided_at = ? WHERE id = ? AND state = 'voting'`),
    hold: db.prepare(
      `INSERT INTO governance_holds (subject, kind, reason, proposal_id, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (subject, kind) DO UPDATE SET reason = excluded.reason,
         proposal_id = excluded.proposal_id, created_at = excluded.created_at`,
    ),
    release: db.prepare(`DELETE FROM governance_holds WHERE subject = ? AND kind = ?`),
    allParams: db.prepare(`SELECT name, value FROM params`),
    holds: db.prepare(`SELECT * FROM governance_holds ORDER BY subject`),
  };
}

/** Governance on SQLite: one writer, so each step's check and write share a transaction. */
export class SqliteGovernance implements GovernanceStore {
  private readonly q = preparedOnFirstUse(() => statements(this.db));

  constructor(private readonly db: Database.Database) {}

  async params(): Promise<ParamRow[]> {
    return (this.q.params.all() as RawRow[]).map(rowToParam);
  }

  async initParams(values: Readonly<Record<string, string>>, now: number): Promise<void> {
    this.db.transaction(() => {
      for (const [name, value] of Object.entries(values)) this.q.initParam.run(name, value, now);
    })();
  }

  async propose(p: NewProposal): Promise<{ proposal: ProposalRow; replayed: boolean }> {
    return this.db
      .transaction(() => {
        const inserted = this.q.insertProposal.run({
          ...p,
          action: JSON.stringify(p.action),
          byAdmin: p.byAdmin ? 1 : 0,
        }).changes;
        return { proposal: rowToProposal(this.q.byKey.get(p.idempotencyKey) as RawRow), replayed: inserted === 0 };
      })
      .immediate();
  }

  async proposal(id: string): Promise<ProposalRow | undefined> {
    const row = this.q.proposal.get(id) as RawRow | undefined;
    return row && rowToProposal(row);
  }

  async proposals(query: { readonly state?: ProposalState; readonly limit: number }): Promise<ProposalRow[]> {
    const rows = query.state
      ? this.db
          .prepare(`SELECT * FROM proposals WHERE state = ? ORDER BY created_at DESC, id LIMIT ?`)
          .all(query.state, query.limit)
      : this.db.prepare(`SELECT * FROM proposals ORDER BY created_at DESC, id LIMIT ?`).all(query.limit);
    return (rows as RawRow[]).map(rowToProposal);
  }

  async due(now: number, limit: number): Promise<ProposalRow[]> {
    return (this.q.due.all(now, limit) as RawRow[]).map(rowToProposal);
  }

  async vote(v: VoteRow): Promise<VoteResult> {
    return this.db
      .transaction((): VoteResult => {
        const row = this.q.proposal.get(v.proposalId) as RawRow | undefined;
        if (!row) return { ok: false, reason: "not_found" };
        const existing = this.q.vote.get(v.proposalId, v.voter) as RawRow | undefined;
        if (existing) return sameVote(rowToVote(existing), v);
        const proposal = rowToProposal(row);
        if (proposal.state !== "voting" || v.at >= proposal.endsAt) return { ok: false, reason: "closed" };
        this.q.insertVote.run(v.proposalId, v.voter, v.choice, v.weight, v.at);
        return { ok: true, vote: v, replayed: false };
      })
      .immediate();
  }

  async votes(proposalId: string): Promise<VoteRow[]> {
    return (this.q.votes.all(proposalId) as RawRow[]).map(rowToVote);
  }

  async decide(input: DecideInput): Promise<ProposalState | undefined> {
    return this.db
      .transaction((): ProposalState | undefined => {
        const row = this.q.proposal.get(input.id) as RawRow | undefined;
        if (!row || row.state !== "voting") return undefined;
        const e = input.effects;
        const problems =
          e?.params && input.validate ? input.validate(withChanges(this.q.allParams.all(), e.params)) : [];
        const [state, tally] =
          problems.length > 0
            ? (["failed", { ...input.tally, outcome: problems.join("; ") }] as const)
            : ([input.state, input.tally] as const);
        this.q.decide.run(state, JSON.stringify(tally), input.now, input.id);
        if (state === "failed" && problems.length > 0) return state;
        const by = paramSetter(rowToProposal(row));
        for (const [name, value] of Object.entries(e?.params ?? {})) this.q.setParam.run(value, input.now, by, name);
        if (e?.hold) this.q.hold.run(e.hold.subject, e.hold.kind, e.hold.reason, e.hold.proposalId, e.hold.at);
        if (e?.release) this.q.release.run(e.release.subject, e.release.kind);
        return state;
      })
      .immediate();
  }

  async holds(): Promise<HoldRow[]> {
    return (this.q.holds.all() as RawRow[]).map(rowToHold);
  }
}

/** The parameter table's rows with a proposal's changes over them. */
export function withChanges(
  rows: readonly unknown[],
  changes: Readonly<Record<string, string>>,
): Record<string, string> {
  const table: Record<string, string> = {};
  for (const r of rows as { name: string; value: string }[]) table[r.name] = r.value;
  return { ...table, ...changes };
}

/** A voter's second vote: the same choice is a replay; another is refused. */
export function sameVote(existing: VoteRow, v: VoteRow): VoteResult {
  return existing.choice === v.choice
    ? { ok: true, vote: existing, replayed: true }
    : { ok: false, reason: "already_voted", vote: existing };
}
