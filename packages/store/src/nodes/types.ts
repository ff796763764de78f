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
  /** Epochs in a row in which it missed heartbeats (quarantine; see `recordEpoch`). */
  readonly missedEpochs: number;
  /** The start of the last epoch judged for it (by whichever replica), or null: never judged. */
  readonly lastEpoch: number | null;
  /** When its stake was quarantined (no jobs, no payouts), or null. */
  readonly quarantinedAt: number | null;
  /** The hours and slots its operator promised, or null: none. */
  readonly promise: AvailabilityPromise | null;
}

/**
 * What an operator promises (seed 003): online with at least `slots` slots every day from
 * `fromHour` to `toHour` UTC (`toHour` may be below `fromHour`: across midnight; equal: all day).
 */
export interface AvailabilityPromise {
  readonly fromHour: number;
  readonly toHour: number;
  readonly slots: number;
}

/** A node's heartbeat epoch: clean (heartbeats throughout) or missed. */
export interface EpochInput {
  readonly key: string;
  /** The epoch's number (time ÷ epoch length); each is recorded once per node. */
  readonly epoch: number;
  readonly clean: boolean;
  /** Missed epochs in a row that quarantine a node's stake (seed 002: 3). */
  readonly threshold: number;
  readonly now: number;
}

export interface EpochOutcome {
  readonly missedEpochs: number;
  readonly quarantined: boolean;
  /** `entered`: this epoch quarantined it; `lifted`: this clean epoch ended its quarantine. */
  readonly change: "entered" | "lifted" | null;
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
  /**
   * Marks offline a node still marked online though last seen at `lastSeenAt` and last judged for
   * `lastEpoch`, and neither since (the replica that held it stopped without saying so); false
   * when it joined again or a replica judged it meanwhile.
   */
  markAbandoned(key: string, lastSeenAt: number, lastEpoch: number | null): Promise<boolean>;
  get(key: string): Promise<NodeRow | undefined>;
  list(): Promise<NodeRow[]>;
  /** Records reputation changes in one transaction: each event, and each node's latest score. */
  recordReputation(events: readonly ReputationEvent[]): Promise<void>;
  /** A node's reputation changes, newest first. */
  reputationEvents(nodeKey: string, limit: number): Promise<ReputationEvent[]>;
  /**
   * Records one node's epoch, once (a replica recording an epoch already recorded gets
   * undefined): its run of missed epochs, and quarantine entered or lifted.
   */
  recordEpoch(input: EpochInput): Promise<EpochOutcome | undefined>;
  setPromise(key: string, promise: AvailabilityPromise | null): Promise<void>;
  /** The keys of the nodes whose stake is quarantined now (whichever replica recorded it). */
  quarantinedKeys(): Promise<string[]>;
  /** A node by its name (names are unique). */
  getByName(name: string): Promise<NodeRow | undefined>;
  /** Accepted results per node in [since, until), from its reputation events. */
  completedBetween(since: number, until: number): Promise<{ readonly nodeKey: string; readonly completed: number }[]>;
}
