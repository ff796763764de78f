import type { WorkflowManifest } from "@havn/protocol";

/** A published workflow version. */
export interface WorkflowRow {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly creatorId: string;
  readonly manifest: WorkflowManifest;
  /** SHA-256 of its canonical model, template and parameters: what it does. */
  readonly contentHash: string;
  /** The workflow it derives from at the root: itself for an original. */
  readonly originId: string;
  readonly flaggedAt: number | null;
  readonly flagReason: string | null;
  readonly createdAt: number;
}

export type NewWorkflow = Omit<WorkflowRow, "flaggedAt" | "flagReason">;

export type PublishResult = "published" | "version_exists" | "name_taken";

/** One workflow's share of one settled run (see `SettleJobInput.earnings`). */
export interface WorkflowEarning {
  readonly workflowId: string;
  readonly amount: bigint;
  /** The run was of this workflow (not of one built on it). */
  readonly direct: boolean;
}

/** The workflow registry (seed 001) and what each workflow earned. */
export interface WorkflowStore {
  /** Publishes a version: refused when the version exists, or another creator holds the name. */
  publish(w: NewWorkflow): Promise<PublishResult>;
  get(id: string): Promise<WorkflowRow | undefined>;
  /** The newest version of a name (the last published), or one version of it. */
  byName(name: string, version?: string): Promise<WorkflowRow | undefined>;
  /** The first workflow published with this content hash, if any: a copy's origin. */
  firstWithContent(contentHash: string): Promise<WorkflowRow | undefined>;
  /** Whether any workflow with this content hash is flagged (a flag covers every copy). */
  flaggedWithContent(contentHash: string): Promise<boolean>;
  /** Newest first; one creator's, or everyone's. */
  list(query: { readonly creatorId?: string; readonly limit: number }): Promise<WorkflowRow[]>;
  /** Flags (a flagged workflow does not run, and its royalties are held) or clears a flag. */
  setFlag(id: string, flagged: boolean, reason: string | null, now: number): Promise<WorkflowRow | undefined>;
  /** What a workflow's creator earned from it: in all, from runs of it, and how many runs paid. */
  earnings(id: string): Promise<{ earned: bigint; direct: bigint; upstream: bigint; runs: number }>;
}
