import type { FailAttemptInput, JobRow, Store } from "@havn/store";
import type { JobEvents } from "./job-events.js";

/**
 * Ends an attempt — re-queued when `retry` and attempts remain, else failed — and tells whoever
 * waits on the job; returns the job as it now stands (undefined when the attempt was stale). Every way an attempt can fail (node error, rejected result, lost node,
 * timeout) goes through here.
 */
export async function endAttempt(
  store: Store,
  events: JobEvents,
  input: FailAttemptInput,
): Promise<JobRow | undefined> {
  const job = await store.failAttempt(input);
  if (job) events.emitTransition(job, input.attemptId);
  return job;
}
