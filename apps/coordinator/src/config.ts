import { createHash } from "node:crypto";
import { availableParallelism, hostname } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { HavnError } from "@havn/protocol";
import { defaultDataDir } from "@havn/protocol/local";

/** An amount of µHAI (1 HAI = 1 000 000 µHAI): a whole number, or its decimal digits. */
const microHai = z
  .union([z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), z.string().regex(/^[0-9]{1,18}$/)])
  .transform((v) => BigInt(v));

/** Basis points: 10 000 = ×1 (or 100 %). */
const basisPoints = z.number().int().min(0).max(1_000_000);

/**
 * The money: prices, escrow, settlement and the first balances (see docs/architecture.md, "The
 * ledger"). With `enabled: false` the network is free: no escrow, no charge, no ledger writes.
 */
export const ledgerConfigSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** The price of a model the manifest gives none, per 1 000 tokens in and out. */
  defaultPrice: z
    .strictObject({ inputPer1k: microHai, outputPer1k: microHai })
    .prefault({ inputPer1k: 100, outputPer1k: 200 }),
  /** Fee multiplier per compute class (seed 002): S 1.0, M 1.5, L 2.5, XL 4.0. */
  classFeesBp: z
    .strictObject({ S: basisPoints, M: basisPoints, L: basisPoints, XL: basisPoints })
    .prefault({ S: 10_000, M: 15_000, L: 25_000, XL: 40_000 }),
  /**
   * Surge: × (1 + `perQueueRoundBp` × queued ÷ slots), at most `maxBp`. With as many jobs queued
   * for a model as its nodes have slots, the price is × 1.25 by default; it stops at × 3.
   */
  surge: z
    .strictObject({ perQueueRoundBp: basisPoints, maxBp: basisPoints.min(10_000) })
    .prefault({ perQueueRoundBp: 2_500, maxBp: 30_000 }),
  /** How long after completion a job's charge waits before it is split, in ms. Default: 0 in dev mode, 10 min otherwise. */
  challengeWindowMs: z.number().int().min(0).optional(),
  /** How a job's charge splits without a workflow: node operator, validator pool, treasury. Sums to 10 000. */
  split: z
    .strictObject({ nodeBp: basisPoints, validatorsBp: basisPoints, treasuryBp: basisPoints })
    .refine((s) => s.nodeBp + s.validatorsBp + s.treasuryBp === 10_000, "the split's shares sum to 10 000 bp")
    .prefault({ nodeBp: 8_500, validatorsBp: 500, treasuryBp: 1_000 }),
  /** First balances, posted once at the first start (from `mint`): the treasury's and any wallet's (`0x…`). */
  genesis: z
    .strictObject({ treasury: microHai.optional(), balances: z.record(z.string(), microHai).optional() })
    .prefault({}),
  /**
   * Seed 000's rewards, minted to the node's operator when a job settles: base × (model weight ÷ 10)
   * × the pipeline's compute-cost factor × max(1, runtime ÷ baseline) × success. The runtime is
   * the least of what the node claims, what the coordinator saw (lease to result) and
   * `maxRuntimeSeconds`; rewards minted per `periodMs` never exceed `budgetPerPeriod`.
   */
  rewards: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** `REWARD_BASE_HAI` (0.05 HAI). */
      base: microHai.prefault(50_000),
      /** `REWARD_BASELINE_RUNTIME`, in s (8.0). */
      baselineRuntimeSeconds: z.number().positive().default(8),
      /** `REWARD_SDXL_FACTOR`, `REWARD_SD15_FACTOR`, `REWARD_ANIME_FACTOR` (anime and cartoon); others 1.0. */
      pipelineFactorsBp: z
        .record(z.string(), basisPoints)
        .prefault({ sdxl: 15_000, sd15: 10_000, anime: 7_000, cartoon: 7_000 }),
      /** The most runtime a job is rewarded for, in s, unless the manifest gives the model `max_runtime_s`. */
      maxRuntimeSeconds: z.number().positive().default(120),
      /** New $HAI per period, at most. Default 10 000 HAI a day. */
      budgetPerPeriod: microHai.prefault(10_000_000_000),
      periodMs: z
        .number()
        .int()
        .min(1_000)
        .default(24 * 3_600_000),
    })
    .prefault({}),
  /** Dev mode: the dev account is topped up to this at start, and the faucet gives this much. Default 1 000 HAI. */
  devFunds: microHai.prefault(1_000_000_000),
});
export type LedgerConfig = z.output<typeof ledgerConfigSchema>;

/**
 * Every coordinator option, with its default, unit and trade-off. `compileConfig` fills defaults
 * from this one table, rejects unknown keys and freezes the result.
 */
const day = 24 * 60 * 60 * 1000;

const configSchema = z.strictObject({
  /**
   * `production` (default): every route but health, docs and the public log needs a credential,
   * nodes join with a credential, and a coordinator reachable from other machines refuses to start
   * without an admin. `dev` (`havn up`): one dev account, which every request acts as, with any API
   * key or none — for one person on one machine.
   */
  mode: z.enum(["production", "dev"]).default("production"),
  /**
   * HMAC secret that signs access tokens, at least 32 characters (env `HAVN_JWT_SECRET` or
   * `HAVN_JWT_SECRET_FILE` in the CLI). Default: one generated at first start and kept in the
   * database, so replicas on one PostgreSQL share it.
   */
  jwtSecret: z.string().min(32).optional(),
  /**
   * The network's join token (HavnAI's `SERVER_JOIN_TOKEN`; env `HAVN_JOIN_TOKEN[_FILE]`): a node
   * presenting it may join without an operator key, its key bound to no account. Unset: nodes join
   * with an operator's `node`-scoped API key. At least 16 characters.
   */
  joinToken: z.string().min(16).optional(),
  /** Lifetime of an access token (JWT), in s. Default 900: short, since it cannot be revoked early. */
  accessTokenTtlSeconds: z.number().int().min(30).default(900),
  /** Lifetime of a refresh token, in s. Default 2 592 000 (30 days); each use replaces it. */
  refreshTokenTtlSeconds: z
    .number()
    .int()
    .min(60)
    .default(30 * 24 * 3600),
  /**
   * A refresh token presented again within this many s of being spent is refused without ending
   * its login: two of the owner's programs refreshed at once (the CLI then uses what the other
   * saved). Later, a reuse is taken for theft and ends the login. Default 30; 0: always end it.
   */
  refreshReuseGraceSeconds: z.number().int().min(0).max(300).default(30),
  /** How long a Sign-In with Ethereum nonce may wait to be used, in s. Default 300. */
  siweNonceTtlSeconds: z.number().int().min(10).default(300),
  /**
   * The address clients reach this coordinator at, e.g. `https://havn.example` behind a proxy.
   * Sign-In with Ethereum messages must name its host (EIP-4361 `domain`), which is what a wallet
   * checks against the page that asks. Default: the loopback address the coordinator listens on;
   * a coordinator on another address without it refuses wallet sign-in (a request's own Host
   * header would let any site have its visitors sign in for it).
   */
  publicUrl: z.string().url().optional(),
  /** The EIP-4361 `domain` wallet sign-in messages must name. Default: `publicUrl`'s host. */
  siweDomain: z.string().min(1).optional(),
  /**
   * Which nodes may join besides those with the join token: `open` (default) — any account's
   * `node`-scoped key, so anyone who registers may run a node (stake and reputation keep them
   * honest); `token` — only the join token or an admin's `node`-scoped key.
   */
  nodeAdmission: z.enum(["open", "token"]).default("open"),
  /**
   * Fastify's `trustProxy`: behind a reverse proxy, its addresses (comma-separated, CIDR allowed)
   * make `X-Forwarded-For` the client's address, for per-address limits. Default false: the
   * address is the socket's. Never `true` (trust any hop): any client could then name any
   * address, escaping its limits or spending someone else's.
   */
  trustProxy: z.union([z.literal(false), z.string().min(1)]).default(false),
  /**
   * Failed sign-ins (bad credentials, passwords, refresh tokens, wallet signatures) per address
   * (an IPv6 /64) per minute, in production mode; past it, logins from the address are refused
   * unchecked and other failures answer 429. Default 60; 0: no limit.
   */
  authFailureLimitPerMinute: z.number().int().min(0).default(60),
  /** Wrong passwords per email per minute before its logins are refused unchecked. Default 10; 0: no limit. */
  emailFailureLimitPerMinute: z.number().int().min(0).default(10),
  /** `open` (default, as Iris): anyone may register. `invite`: registration needs an admin's invitation. */
  registration: z.enum(["open", "invite"]).default("open"),
  /**
   * Requests per minute per credential (API key or login), in production mode (dev mode has no
   * limits). Default 1 200 (20/s). 0: no limit. Beyond it: 429 REQUEST_RATE_LIMITED with
   * `Retry-After`. Counted per replica.
   */
  rateLimitPerMinute: z.number().int().min(0).default(1_200),
  /** Requests per minute per IP address without a credential (sign-in, health, docs). Default 120. */
  anonymousRateLimitPerMinute: z.number().int().min(0).default(120),
  /**
   * Requests per minute per account, across all its keys and logins: many keys do not multiply
   * an account's share. Default three times `rateLimitPerMinute`; 0: no limit.
   */
  accountRateLimitPerMinute: z.number().int().min(0).optional(),
  /**
   * Requests per minute per IP address with credentials: one address cycling through many
   * accounts. Default five times `rateLimitPerMinute`; 0: no limit.
   */
  addressRateLimitPerMinute: z.number().int().min(0).optional(),
  /** Origins a browser may call the API from (CORS). Default none: only same-origin pages. */
  corsOrigins: z.array(z.string().min(1)).default([]),
  /**
   * How long a job's `Idempotency-Key` is kept, in ms. Default 86 400 000 (24 h, as Stripe): a
   * retry within it gets the same job, never a second run.
   */
  idempotencyWindowMs: z.number().int().min(60_000).default(day),
  /**
   * How long prompts and outputs are kept after a job ends, in ms; then they are deleted, leaving
   * hashes, receipts and the log. Default 2 592 000 000 (30 days). 0: kept until the owner
   * deletes them.
   */
  retentionMs: z
    .number()
    .int()
    .min(0)
    .default(30 * day),
  /** How long a request may take to arrive (headers and body), in ms: slow senders hold sockets. Default 30 000. */
  requestReceiveTimeoutMs: z.number().int().min(1_000).default(30_000),
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
  /**
   * This replica's name in the network's key set (`GET /v1/keys`): a new key under the same name
   * retires the old one (a rotation). Default: a hash of the host name and the key file's path,
   * stable across restarts and rotations, distinct per data directory.
   */
  replica: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .optional(),
  /**
   * Sealing the execution log: every `periodEntries` entries, or once the oldest unsealed entry is
   * `periodMs` old, the coordinator signs a Merkle root over the entries since the last period
   * (`GET /v1/log/proof/{job}` proves a job's entry against it). Defaults 1 024 entries, and 60 s
   * (0 in dev mode: every sweep seals what is new).
   */
  log: z
    .strictObject({
      periodEntries: z.number().int().min(1).max(65_536).default(1_024),
      periodMs: z.number().int().min(0).optional(),
    })
    .prefault({}),
  /** Prices, escrow, settlement, first balances; `ledger: { enabled: false }` for a free network. */
  ledger: ledgerConfigSchema.prefault({}),
  /**
   * Workflows: the least every run pays the node that ran it, the validators and the treasury, in
   * percent (seed 001's 25 / 5 / 5) — a split below them is refused at publish, and raised to them
   * at settlement — and the least upstream share of a derivative (what its origin is owed).
   */
  workflows: z
    .strictObject({
      floors: z
        .strictObject({
          node: z.number().int().min(0).max(100),
          validators: z.number().int().min(0).max(100),
          treasury: z.number().int().min(0).max(100),
        })
        .refine((f) => f.node + f.validators + f.treasury <= 100, "the floors sum to at most 100")
        .prefault({ node: 25, validators: 5, treasury: 5 }),
      derivativeUpstream: z.number().int().min(0).max(100).default(20),
    })
    .prefault({}),
  /**
   * Stake (seeds 001, 002): what nodes and validators must bond, how it leaves, what offences
   * cost. These are the first values of governance parameters (`stake.*`, `slash.*`): after the
   * first start only a proposal changes them (see docs/architecture.md, "Governance").
   */
  staking: z
    .strictObject({
      /** Collateral floor per compute class: S 2 000, M 5 000, L 9 000, XL 18 000 HAI. */
      floors: z
        .strictObject({ S: microHai, M: microHai, L: microHai, XL: microHai })
        .prefault({ S: 2_000_000_000, M: 5_000_000_000, L: 9_000_000_000, XL: 18_000_000_000 }),
      /** A validator's least stake. Default 5 000 HAI. */
      validatorFloor: microHai.prefault(5_000_000_000),
      /** Slots a node's floor pays for; each further slot needs floor ÷ this more. Default 8. */
      slotsAtFloor: z.number().int().min(1).max(4096).default(8),
      /** How long unbonded stake waits (still slashable), in ms. Default 7 days; 60 s in dev mode. */
      unbondingDelayMs: z.number().int().min(0).optional(),
      slash: z
        .strictObject({
          /** A result signed by the node's own key that the coordinator proved wrong. Default 100 HAI. */
          invalidResult: microHai.prefault(100_000_000),
          /** Fraud a validator verdict proves. Default 1 000 HAI. */
          fraud: microHai.prefault(1_000_000_000),
          /** Quarantine for missed heartbeats. Default 20 HAI. */
          downtime: microHai.prefault(20_000_000),
          /** The injured client's share of a slash, the rest to the treasury. Default 5 000 (half). */
          injuredShareBp: basisPoints.max(10_000).default(5_000),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Quarantine (seed 002): `missedEpochs` epochs in a row with missed heartbeats. Default 1 h epochs, 3. */
  quarantine: z
    .strictObject({
      epochMs: z.number().int().min(60_000).default(3_600_000),
      missedEpochs: z.number().int().min(1).max(100).default(3),
      /** Breaks in one epoch (reconnects) that add up to at most this keep it clean. Default 2 minutes. */
      reconnectGraceMs: z.number().int().min(0).max(3_600_000).default(120_000),
    })
    .prefault({}),
  /** The monthly pool (seed 003): paid from the treasury by reputation share. Default 10 000 HAI; 0 ms: calendar months. */
  pool: z
    .strictObject({
      amount: microHai.prefault(10_000_000_000),
      periodMs: z.number().int().min(0).default(0),
      /** Accepted results a node needs in the period to share it. Default 10. */
      minCompleted: z.number().int().min(1).default(10),
    })
    .prefault({}),
  /**
   * Proposals: open for `votingPeriodMs` (default 3 days; 60 s in dev mode), they pass when the
   * stake that voted is at least `quorumBp` of all bonded stake and yes is more than
   * `thresholdBp` of yes and no.
   */
  governance: z
    .strictObject({
      votingPeriodMs: z.number().int().min(1_000).optional(),
      quorumBp: basisPoints.max(10_000).default(3_334),
      /** Stake an account must have bonded to propose. Default 1 000 HAI. */
      proposalStake: microHai.prefault(1_000_000_000),
      thresholdBp: basisPoints.min(5_000).max(10_000).default(5_000),
    })
    .prefault({}),
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
  /**
   * Deadlines that fit the work, for text jobs: an attempt must show its first token within
   * `firstTokenFactor` × the model's observed 95th-percentile time to first token (at least
   * `firstTokenFloorMs`; `firstTokenDefaultMs` until 20 results were seen), and then finish within
   * `perTokenFactor` × the observed 95th-percentile time per token × its `max_tokens` (at least
   * `perTokenFloorMs` a token). `attemptTimeoutMs` stays the outer bound. A node that misses a
   * deadline loses the attempt and reputation (a timeout).
   */
  deadlines: z
    .strictObject({
      firstTokenFactor: z.number().min(1).default(4),
      firstTokenFloorMs: z.number().int().min(100).default(10_000),
      firstTokenDefaultMs: z.number().int().min(100).default(120_000),
      perTokenFactor: z.number().min(1).default(4),
      perTokenFloorMs: z.number().int().min(1).default(250),
    })
    .prefault({}),
  /**
   * Which model names nodes may serve. `open` (the default in dev mode): any name of the right
   * syntax, as `--model llama3.2:3b` on a one-operator network expects. `curated` (the production
   * default): only the manifest's models and the names in `admitted`. Either way a node counts at
   * most `maxModelsPerNode` names; the rest of what it advertises is ignored.
   */
  catalog: z
    .strictObject({
      mode: z.enum(["open", "curated"]).optional(),
      maxModelsPerNode: z.number().int().min(1).max(256).default(16),
      admitted: z.array(z.string().min(1).max(128)).max(10_000).default([]),
    })
    .prefault({}),
  /** Slots a node may advertise, at most: more are ignored (a node cannot hoard jobs). Default 64. */
  maxNodeSlots: z.number().int().min(1).max(4096).default(64),
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
   * How often the API keys that connected nodes joined with are checked, in ms: a key revoked on
   * another replica closes its nodes here within this time (on the revoking replica: at once).
   * Default 10 000 (the time a verified key stays cached).
   */
  nodeKeyCheckMs: z.number().int().min(10).default(10_000),
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
  z.output<typeof configSchema> & {
    keyPath: string;
    replica: string;
    sqlitePath: string;
    registryPath: string;
    accountRateLimitPerMinute: number;
    addressRateLimitPerMinute: number;
    ledger: LedgerConfig & { challengeWindowMs: number };
    log: { periodEntries: number; periodMs: number };
    catalog: { mode: "open" | "curated"; maxModelsPerNode: number; admitted: string[] };
    staking: z.output<typeof configSchema>["staking"] & { unbondingDelayMs: number };
    governance: z.output<typeof configSchema>["governance"] & { votingPeriodMs: number };
  }
>;

export function compileConfig(options: CoordinatorOptions = {}): CoordinatorConfig {
  const parsed = configSchema.safeParse(options);
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
    throw new HavnError(
      "CONFIG_INVALID",
      `Invalid coordinator options: ${details.map((d) => `${d.path || "options"}: ${d.message}`).join("; ")}.`,
      { details },
    );
  }
  const c = parsed.data;
  return Object.freeze({
    ...c,
    keyPath: c.keyPath ?? join(c.dataDir, "coordinator.key"),
    replica:
      c.replica ??
      createHash("sha256")
        .update(`${hostname()}\n${resolve(c.keyPath ?? join(c.dataDir, "coordinator.key"))}`)
        .digest("hex")
        .slice(0, 12),
    sqlitePath: join(c.dataDir, "havn.db"),
    registryPath: c.registryPath ?? new URL("../registry.json", import.meta.url).pathname,
    siweDomain: c.siweDomain ?? (c.publicUrl ? new URL(c.publicUrl).host : undefined),
    accountRateLimitPerMinute: c.accountRateLimitPerMinute ?? 3 * c.rateLimitPerMinute,
    addressRateLimitPerMinute: c.addressRateLimitPerMinute ?? 5 * c.rateLimitPerMinute,
    ledger: { ...c.ledger, challengeWindowMs: c.ledger.challengeWindowMs ?? (c.mode === "dev" ? 0 : 600_000) },
    log: { ...c.log, periodMs: c.log.periodMs ?? (c.mode === "dev" ? 0 : 60_000) },
    catalog: { ...c.catalog, mode: c.catalog.mode ?? (c.mode === "dev" ? "open" : "curated") },
    staking: { ...c.staking, unbondingDelayMs: c.staking.unbondingDelayMs ?? (c.mode === "dev" ? 60_000 : 7 * day) },
    governance: {
      ...c.governance,
      votingPeriodMs: c.governance.votingPeriodMs ?? (c.mode === "dev" ? 60_000 : 3 * day),
    },
  });
}
