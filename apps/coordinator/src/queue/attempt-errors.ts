import type { ErrorBody } from "@havn/protocol";

/** How an attempt ends when the coordinator, not the node, ends it. */
export const attemptErrors = {
  nodeLost: { code: "NODE_LOST", message: "The node went offline while running the job.", retryable: true },
  leaseExpired: { code: "NODE_LOST", message: "The node stopped renewing its lease.", retryable: true },
  timedOut: {
    code: "JOB_TIMEOUT",
    message: "The node missed the attempt's deadline (its first token, its pace, or the attempt timeout).",
    retryable: true,
  },
  noCapacity: {
    code: "JOB_NO_CAPACITY",
    message: "No eligible node came online within the queue wait.",
    retryable: true,
  },
} as const satisfies Record<string, ErrorBody>;
