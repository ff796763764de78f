/** Job, attempt and request ids: a type prefix and random hex. 96 bits make collisions moot. */
export function makeIdFactory(randomHex: (bytes: number) => string) {
  return {
    jobId: (): string => `job-${randomHex(12)}`,
    attemptId: (): string => `att-${randomHex(12)}`,
  };
}

export const jobIdPattern = /^job-[0-9a-f]{12,32}$/;
