import { json, jsonOrNull, num, numOrNull, type RawRow } from "../columns.js";
import type { HoldRow, ParamRow, ProposalRow, ProposalState, Tally, VoteChoice, VoteRow } from "./types.js";

export function rowToParam(r: RawRow): ParamRow {
  return {
    name: r.name as string,
    value: r.value as string,
    updatedAt: num(r.updated_at),
    updatedBy: r.updated_by as string,
  };
}

export function rowToProposal(r: RawRow): ProposalRow {
  return {
    id: r.id as string,
    idempotencyKey: r.idempotency_key as string,
    proposer: r.proposer as string,
    action: json<Record<string, unknown>>(r.action),
    reason: r.reason as string,
    state: r.state as ProposalState,
    byAdmin: Boolean(r.by_admin),
    createdAt: num(r.created_at),
    endsAt: num(r.ends_at),
    decidedAt: numOrNull(r.decided_at),
    tally: jsonOrNull<Tally>(r.tally),
  };
}

export function rowToVote(r: RawRow): VoteRow {
  return {
    proposalId: r.proposal_id as string,
    voter: r.voter as string,
    choice: r.choice as VoteChoice,
    weight: r.weight as string,
    at: num(r.created_at),
  };
}

export function rowToHold(r: RawRow): HoldRow {
  return {
    subject: r.subject as string,
    kind: r.kind as HoldRow["kind"],
    reason: r.reason as string,
    proposalId: r.proposal_id as string,
    at: num(r.created_at),
  };
}

/** Who set a parameter a decided proposal changed. */
export function paramSetter(proposal: { readonly id: string; readonly byAdmin: boolean; readonly proposer: string }) {
  return proposal.byAdmin ? `admin:${proposal.proposer}` : `proposal:${proposal.id}`;
}
