/**
 * The job state machine, in one place. Every store operation that changes a job's status builds
 * its `WHERE status IN (…)` from this table, so no code path can make a transition not listed.
 *
 *   queued → leased → running → completed | failed | cancelled
 *   leased/running → queued      (lease expired or node lost, attempts left)
 *   queued → failed              (no eligible node within the queue wait)
 */
export const jobStatuses = ["queued", "leased", "running", "completed", "failed", "cancelled"] as const;
export type JobStatus = (typeof jobStatuses)[number];

export const jobTransitions: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  queued: ["leased", "failed", "cancelled"],
  // A fast node may deliver its result before any progress: leased → completed is legal.
  leased: ["running", "queued", "completed", "failed", "cancelled"],
  running: ["completed", "failed", "queued", "cancelled"],
  completed: [],
  failed: [],
  cancelled: [],
};

/**
 * The status of a job placed on a node at admission: it is written already leased, which is the
 * queued → leased transition taken inside the admission transaction.
 */
export const admittedLeasedStatus = "leased" satisfies JobStatus;

export const terminalStatuses: readonly JobStatus[] = jobStatuses.filter((s) => jobTransitions[s].length === 0);

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return jobTransitions[from].includes(to);
}

/** The statuses a job may be in for a transition to `to` — the `WHERE status IN (…)` of every update. */
export function statusesLeadingTo(to: JobStatus): JobStatus[] {
  return jobStatuses.filter((from) => canTransition(from, to));
}

export function isTerminal(status: JobStatus): boolean {
  return terminalStatuses.includes(status);
}
