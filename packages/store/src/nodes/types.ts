import type { Capabilities, ComputeClass, Hardware } from "@havn/protocol";

export interface NodeRow {
  readonly key: string;
  readonly name: string;
  /** The account the key was bound to when it first joined with a credential of one. */
  readonly accountId: string | null;
  readonly capabilities: Capabilities;
  readonly hardware: Hardware;
  readonly computeClass: ComputeClass;
  readonly online: boolean;
  readonly firstSeenAt: number;
  readonly lastSeenAt: number;
  /** Its reputation score as last written (null: never scored), and when. */
  readonly reputation: number | null;
  readonly reputationAt: number | null;
}

/** One change of a node's reputation, with its cause (seed 003's table) and the score after it. */
export interface ReputationEvent {
  readonly nodeKey: string;
  readonly delta: number;
  readonly score: number;
  readonly cause: string;
  /** The job, for a change one job caused; null for a batch's tally of completions. */
  readonly jobId: string | null;
  readonly at: number;
  /** How many like changes it stands for (completions and fast bonuses are tallied per batch). */
  readonly count: number;
}

export interface UpsertNodeInput {
  readonly key: string;
  readonly name: string;
  /**
   * The account joining the node (by its operator's key), or null (the network's join token, or
   * dev mode). A key is bound to the first account it joins with; a name belongs to its key's
   * account, which may move it to another of its keys.
   */
  readonly accountId?: string | null;
  readonly capabilities: Capabilities;
  readonly hardware: Hardware;
  readonly now: number;
}

export type UpsertNodeResult =
  { readonly ok: true } | { readonly ok: false; readonly reason: "name_taken" | "key_owned" };

/** The nodes that joined: who holds each key and name, what they offer, whether they are online. */
export interface NodeStore {
  /** Records a node joining (a key under a name); refused when another account holds the key or name. */
  upsert(input: UpsertNodeInput): Promise<UpsertNodeResult>;
  setOnline(key: string, online: boolean, now: number): Promise<void>;
  get(key: string): Promise<NodeRow | undefined>;
  list(): Promise<NodeRow[]>;
  /** Records reputation changes in one transaction: each event, and each node's latest score. */
  recordReputation(events: readonly ReputationEvent[]): Promise<void>;
  /** A node's reputation changes, newest first. */
  reputationEvents(nodeKey: string, limit: number): Promise<ReputationEvent[]>;
}
