/**
 * Job and attempt ids: a type prefix, the creation time in milliseconds (12 hex digits) and 48
 * random bits. Time first makes ids sort by age and makes every insert land at the right edge
 * of the database's primary-key index instead of on a random page, which keeps each write
 * transaction's dirty pages (and SQLite's WAL frames) few.
 */
export function makeIdFactory(randomHex: (bytes: number) => string) {
  const timed = (prefix: string) => (): string =>
    `${prefix}-${Date.now().toString(16).padStart(12, "0")}${randomHex(6)}`;
  return { jobId: timed("job"), attemptId: timed("att") };
}

export const jobIdPattern = /^job-[0-9a-f]{12,32}$/;

/**
 * What a client's `x-request-id` may be to be kept, echoed and logged: up to 128 characters of
 * the kind request ids are made of (UUIDs, ULIDs, trace ids). Anything else is replaced by an id
 * of havn's own, so no header can smuggle text into a log line.
 */
export const requestIdPattern = /^[A-Za-z0-9._:@/+=-]{1,128}$/;
