/**
 * Governance (seed 001): the parameter table, proposals with their stake-weighted votes, and what
 * governance holds — paused nodes, paused or flagged model names. Nothing here decides: the
 * coordinator tallies and validates; the store makes each step happen once (a replayed proposal,
 * a second vote, a second decision change nothing).
 */

/** One parameter's current value (a decimal string: µHAI amounts exceed 2^53) and who set it. */
export interface ParamRow {
  readonly name: string;
  readonly value: string;
  readonly updatedAt: number;
  /** `config` (first start), `proposal:<id>` or `admin:<id>` (an admin's act, recorded as a proposal). */
  readonly updatedBy: string;
}

export const proposalStates = ["voting", "executed", "rejected", "failed"] as const;
export type ProposalState = (typeof proposalStates)[number];

export const voteChoices = ["yes", "no", "abstain"] as const;
export type VoteChoice = (typeof voteChoices)[number];

/** Votes per choice, as decimal µHAI of bonded stake, and the stake that could have voted. */
export interface Tally {
  readonly yes: string;
  readonly no: string;
  readonly abstain: string;
  /** All bonded stake when the proposal was decided: the quorum's denominator. */
  readonly eligible: string;
  /** Why it ended as it did (quorum missed, threshold missed, executed, an error). */
  readonly outcome: string;
}

export interface ProposalRow {
  readonly id: string;
  readonly idempotencyKey: string;
  /** The account that proposed it. */
  readonly proposer: string;
  /** What it does, as the coordinator validated it (see `governance/actions.ts`). */
  readonly action: Readonly<Record<string, unknown>>;
  readonly reason: string;
  readonly state: ProposalState;
  /** An admin's act (dev mode, emergencies): executed at once, without a vote. */
  readonly byAdmin: boolean;
  readonly createdAt: number;
  readonly endsAt: number;
  readonly decidedAt: number | null;
  readonly tally: Tally | null;
}

export type NewProposal = Omit<ProposalRow, "state" | "decidedAt" | "tally">;

export interface VoteRow {
  readonly proposalId: string;
  readonly voter: string;
  readonly choice: VoteChoice;
  /** The voter's bonded stake when it voted, decimal µHAI. */
  readonly weight: string;
  readonly at: number;
}

export type VoteResult =
  | { readonly ok: true; readonly vote: VoteRow; readonly replayed: boolean }
  | { readonly ok: false; readonly reason: "not_found" | "closed" | "already_voted"; readonly vote?: VoteRow };

/**
 * A node or model name governance decided about: `paused` (an emergency), `flagged` (spam, stolen
 * weights) or, for a model name, `admitted` (a curated catalog lists it).
 */
export interface HoldRow {
  /** `node:<key>` or `model:<name>` (the name lower-cased). */
  readonly subject: string;
  readonly kind: "paused" | "flagged" | "admitted";
  readonly reason: string;
  readonly proposalId: string;
  readonly at: number;
}

/** What a decided proposal changes, applied in the transaction that decides it. */
export interface ProposalEffects {
  readonly params?: Readonly<Record<string, string>>;
  readonly hold?: HoldRow;
  /** A hold lifted: its subject and kind. */
  readonly release?: { readonly subject: string; readonly kind: HoldRow["kind"] };
}

export interface DecideInput {
  readonly id: string;
  readonly state: Exclude<ProposalState, "voting">;
  readonly tally: Tally;
  readonly effects?: ProposalEffects;
  /**
   * Checks the whole parameter table as the effects would leave it, inside the transaction (the
   * table's rows locked on PostgreSQL): problems make the proposal `failed`, its effects unapplied.
   */
  readonly validate?: (params: Readonly<Record<string, string>>) => readonly string[];
  readonly now: number;
}

export interface GovernanceStore {
  params(): Promise<ParamRow[]>;
  /** Inserts the parameters not yet in the table (first start, or a parameter new in this version). */
  initParams(values: Readonly<Record<string, string>>, now: number): Promise<void>;
  /** Records a proposal; a second with the same idempotency key records nothing and returns the first. */
  propose(proposal: NewProposal): Promise<{ readonly proposal: ProposalRow; readonly replayed: boolean }>;
  proposal(id: string): Promise<ProposalRow | undefined>;
  /** Newest first. */
  proposals(query: { readonly state?: ProposalState; readonly limit: number }): Promise<ProposalRow[]>;
  /** Proposals still voting whose period ended before `now`, oldest first. */
  due(now: number, limit: number): Promise<ProposalRow[]>;
  /** A vote, once per voter, while the proposal is voting and its period has not ended. */
  vote(vote: VoteRow): Promise<VoteResult>;
  votes(proposalId: string): Promise<VoteRow[]>;
  /**
   * Ends a proposal still voting, applying its effects in the same transaction; returns the state
   * it ended in (`failed` when `validate` found problems), or undefined — nothing applied — when it
   * was decided already (by another replica, say).
   */
  decide(input: DecideInput): Promise<ProposalState | undefined>;
  holds(): Promise<HoldRow[]>;
}
