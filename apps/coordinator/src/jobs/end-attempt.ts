import type { FailAttemptInput, Store } from "@havn/store";
import type { JobEvents } from "./job-events.js";

/**
 * Ends an attempt — re-queued when `retry` and attempts remain, else failed — and tells whoever
 * waits on the job. Every way an attempt can fail (node error, rejected result, lost node,
 * timeout) goes through here.
 */
export async function endAttempt(store: Store, events: JobEvents, input: FailAttemptInput): Promise<void> {
  const job = await store.failAttempt(input);
  if (job) events.emitTransition(job, input.attemptId);
}
