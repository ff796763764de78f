import { availableParallelism } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { HavnError } from "@havn/protocol";
import { defaultDataDir } from "@havn/protocol/local";

/**
 * Every coordinator option, with its default, unit and trade-off. `compileConfig` fills defaults
 * from this one table, rejects unknown keys and freezes the result.
 */
const configSchema = z.strictObject({
  /**
   * Where the SQLite file and the coordinator key live. Default `~/.havn/coordinator` (see
   * `defaultDataDir`): one directory per role, never shared with a node's.
   */
  dataDir: z
    .string()
    .min(1)
    .default(() => defaultDataDir("coordinator")),
  /** `postgres://…` to use PostgreSQL (several replicas may share it); unset: SQLite in `dataDir`. */
  databaseUrl: z.string().optional(),
  /** Coordinator Ed25519 key file (co-signs receipts). Default `<dataDir>/coordinator.key`. */
  keyPath: z.string().optional(),
  /** A HavnAI-format `registry.json` (model manifest, weights for `model: "auto"`). Default: the bundled one. */
  registryPath: z.string().optional(),
  /**
   * How long a node holds a job without renewing, in ms. Default 30 000: six missed 5 s
   * heartbeats. Shorter re-queues faster after a silent node; too short re-queues jobs that a
   * busy node is still running.
   */
  leaseMs: z.number().int().min(1_000).default(30_000),
  /** How often nodes send heartbeats, in ms; told to each node in `welcome`. Default 5 000 (seed 002). */
  heartbeatIntervalMs: z.number().int().min(100).default(5_000),
  /** A node silent this long is dropped and its jobs re-queued, in ms. Default 15 000 (3 heartbeats). */
  nodeTimeoutMs: z.number().int().min(300).default(15_000),
  /**
   * When a node connects with a key that is already connected, how long the connected one has to
   * answer a ping, in ms. Default 3 000: a live node answers within milliseconds, so the newcomer
   * is refused (two processes share a key file); a crashed node's half-open socket never answers,
   * so its restarted process takes over. Longer delays a crashed node's return by as much.
   */
  duplicateKeyProbeMs: z.number().int().min(10).default(3_000),
  /** How long a node has to answer the challenge with `hello`, in ms. Default 10 000. */
  helloTimeoutMs: z.number().int().min(100).default(10_000),
  /**
   * How long an accepted job waits for an eligible node before failing with JOB_NO_CAPACITY, in
   * ms. Default 300 000 (5 min): long enough for an operator to restart a node.
   */
  queueWaitMs: z.number().int().min(0).default(300_000),
  /**
   * How long a non-streaming request waits for its answer, in ms, before a 504 that names the
   * job id (the job keeps running). Default 600 000 (10 min).
   */
  requestTimeoutMs: z.number().int().min(100).default(600_000),
  /**
   * Longest an attempt may run on a node, in ms, even while the node keeps heartbeating: a hung
   * backend would otherwise hold the job forever. Default 600 000 (10 min); the attempt is then
   * cancelled and the job retried elsewhere.
   */
  attemptTimeoutMs: z.number().int().min(100).default(600_000),
  /** Attempts per job, counting the first; node loss and lease expiry each use one. Default 3. */
  maxAttempts: z.number().int().min(1).max(20).default(3),
  /** Characters across all prompt text of one job. Default 200 000 (~50k tokens). */
  maxPromptChars: z.number().int().min(1).default(200_000),
  /** HTTP body limit in bytes. Default 4 MiB; larger gets 413 REQUEST_TOO_LARGE. */
  bodyLimitBytes: z
    .number()
    .int()
    .min(1_024)
    .default(4 * 1024 * 1024),
  /** WebSocket frame limit in bytes. Default 16 MiB (a result with a long output). */
  maxFrameBytes: z
    .number()
    .int()
    .min(1_024)
    .default(16 * 1024 * 1024),
  /** `max_tokens` when a request names none. Default 256. */
  defaultMaxTokens: z.number().int().min(1).default(256),
  /** Jobs claimed per dispatch pass. Default 256: one transaction amortised over many jobs. */
  dispatchBatchSize: z.number().int().min(1).default(256),
  /** Results completed per transaction. Default 256: the log head is locked once per batch. */
  completionBatchSize: z.number().int().min(1).default(256),
  /** How often expired leases and queue deadlines are checked, in ms. Default 1 000. */
  sweepIntervalMs: z.number().int().min(10).default(1_000),
  /**
   * Worker threads that verify receipt signatures (~110 µs each on a slow core). Default: one per
   * core beyond the first, at most 4; 0 verifies on the event loop (single-core hosts).
   */
  signatureWorkers: z
    .number()
    .int()
    .min(0)
    .max(64)
    .default(Math.max(0, Math.min(4, availableParallelism() - 1))),
  /** Router exploration: the weight of a random term in node scores. Default 0.05. */
  routerExploration: z.number().min(0).max(1).default(0.05),
  /** Malformed node frames tolerated before the connection is closed. Default 20. */
  maxProtocolViolations: z.number().int().min(1).default(20),
  /** pino log level. Default `info`; `silent` for tests. */
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export type CoordinatorOptions = z.input<typeof configSchema>;
export type CoordinatorConfig = Readonly<
  z.output<typeof configSchema> & { keyPath: string; sqlitePath: string; registryPath: string }
>;

export function compileConfig(options: CoordinatorOptions = {}): CoordinatorConfig {
  const parsed = configSchema.safeParse(options);
  if (!parsed.success) {
    throw new HavnError("CONFIG_INVALID", "Invalid coordinator options.", {
      details: parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
    });
  }
  const c = parsed.data;
  return Object.freeze({
    ...c,
    keyPath: c.keyPath ?? join(c.dataDir, "coordinator.key"),
    sqlitePath: join(c.dataDir, "havn.db"),
    registryPath: c.registryPath ?? new URL("../registry.json", import.meta.url).pathname,
  });
}
