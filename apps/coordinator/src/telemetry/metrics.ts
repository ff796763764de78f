import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Store } from "@havn/store";

/** Seconds, from a few ms of overhead to a 10-minute generation. */
const secondsBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Store operations: sub-millisecond on SQLite, a few ms on PostgreSQL, long when contended. */
const storeBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];
const rateBuckets = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
const batchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/** What a scrape reads live, beside the counters: the queue and the nodes. */
export interface MetricsSources {
  readonly store: Store;
  /** Online nodes by state (`available` / `unavailable`) and compute class. */
  readonly nodes: () => Iterable<{
    readonly state: string;
    readonly computeClass: string;
    readonly held?: string | null;
  }>;
  /** Nodes whose stake is quarantined, as this replica knows them. */
  readonly quarantined?: () => number;
}

/**
 * The coordinator's Prometheus metrics (`GET /metrics`). Counters are per process: on several
 * replicas, sum them. Every job is counted once when admitted and once when it ends, in the same
 * places its log lines are written (`JobTelemetry`), so counters agree with the database.
 */
export class CoordinatorMetrics {
  readonly registry = new Registry();
  private readonly r = [this.registry];

  readonly admitted = new Counter({
    name: "havn_jobs_admitted_total",
    help: "Jobs accepted and written to the database, by model.",
    labelNames: ["model"] as const,
    registers: this.r,
  });
  readonly completed = new Counter({
    name: "havn_jobs_completed_total",
    help: "Jobs that completed with a verified, co-signed receipt, by model.",
    labelNames: ["model"] as const,
    registers: this.r,
  });
  readonly failed = new Counter({
    name: "havn_jobs_failed_total",
    help: "Jobs that failed, by model and reason (the catalog code of the last error).",
    labelNames: ["model", "reason"] as const,
    registers: this.r,
  });
  readonly cancelled = new Counter({
    name: "havn_jobs_cancelled_total",
    help: "Jobs cancelled by their client, by model.",
    labelNames: ["model"] as const,
    registers: this.r,
  });
  readonly money = new Counter({
    name: "havn_ledger_uhai_total",
    help:
      "µHAI moved on jobs, by what: escrowed (admission), charged and released (completion), refunded " +
      "(failure, cancel; a held charge refunded), settled (split after the challenge window), rewarded (minted to " +
      "node operators), held (charges whose settlement was held).",
    labelNames: ["what"] as const,
    registers: this.r,
  });
  readonly retried = new Counter({
    name: "havn_jobs_retried_total",
    help: "Attempts that ended with the job back in the queue for another node, by model and reason.",
    labelNames: ["model", "reason"] as const,
    registers: this.r,
  });
  readonly jobDuration = new Histogram({
    name: "havn_job_duration_seconds",
    help: "Admission to the end a client waits for (completed, failed, cancelled), by model and outcome.",
    labelNames: ["model", "outcome"] as const,
    buckets: secondsBuckets,
    registers: this.r,
  });
  readonly timeToFirstToken = new Histogram({
    name: "havn_time_to_first_token_seconds",
    help: "Admission to the first token or progress from a node, by model.",
    labelNames: ["model"] as const,
    buckets: secondsBuckets,
    registers: this.r,
  });
  readonly queueWait = new Histogram({
    name: "havn_queue_wait_seconds",
    help: "Admission (or re-queueing) to dispatch to a node, by model.",
    labelNames: ["model"] as const,
    buckets: secondsBuckets,
    registers: this.r,
  });
  readonly attemptDuration = new Histogram({
    name: "havn_attempt_duration_seconds",
    help: "Dispatch to a node's result or error, by model and outcome (completed, or the error's catalog code).",
    labelNames: ["model", "outcome"] as const,
    buckets: secondsBuckets,
    registers: this.r,
  });
  readonly tokensPerSecond = new Histogram({
    name: "havn_tokens_per_second",
    help: "Completion tokens per second of each completed attempt, dispatch to result, by model.",
    labelNames: ["model"] as const,
    buckets: rateBuckets,
    registers: this.r,
  });
  readonly admissionBatch = new Histogram({
    name: "havn_admission_batch_size",
    help: "Jobs written per admission transaction.",
    buckets: batchBuckets,
    registers: this.r,
  });
  readonly completionBatch = new Histogram({
    name: "havn_completion_batch_size",
    help: "Results completed (and log entries appended) per completion transaction.",
    buckets: batchBuckets,
    registers: this.r,
  });
  readonly nodeConnections = new Gauge({
    name: "havn_node_connections",
    help: "WebSocket connections open on the node gateway, authenticated or not.",
    registers: this.r,
  });
  readonly breakerTrips = new Counter({
    name: "havn_node_breaker_trips_total",
    help: "Times a node's circuit breaker took it out of routing (consecutive failed or refused attempts).",
    registers: this.r,
  });
  readonly reputationEvents = new Counter({
    name: "havn_reputation_events_total",
    help: "Reputation changes recorded, by cause (seed 003: completed, fast, timeout, invalid, failed).",
    labelNames: ["cause"] as const,
    registers: this.r,
  });
  readonly slashes = new Counter({
    name: "havn_stake_slashes_total",
    help: "Slashes taken from stake, by offence (invalid_result, fraud, downtime).",
    labelNames: ["offence"] as const,
    registers: this.r,
  });
  readonly slashed = new Counter({
    name: "havn_stake_slashed_uhai_total",
    help: "µHAI slashed from stake, by offence (to the treasury and injured clients).",
    labelNames: ["offence"] as const,
    registers: this.r,
  });
  readonly quarantineEvents = new Counter({
    name: "havn_quarantine_events_total",
    help: "Stake quarantines entered (heartbeats missed in consecutive epochs) and lifted (a clean epoch), an alert each.",
    labelNames: ["change"] as const,
    registers: this.r,
  });
  readonly storeOperation = new Histogram({
    name: "havn_store_operation_seconds",
    help: "Time of each database operation (one transaction or query), by operation.",
    labelNames: ["operation"] as const,
    buckets: storeBuckets,
    registers: this.r,
  });

  constructor(sources: MetricsSources) {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: "havn_queue_depth",
      help: "Jobs waiting in the queue for a node, by model (read from the database at scrape time).",
      labelNames: ["model"] as const,
      registers: this.r,
      async collect() {
        this.reset();
        for (const [model, n] of Object.entries(await sources.store.jobs.queuedByModel())) this.set({ model }, n);
      },
    });
    new Gauge({
      name: "havn_ledger_escrow_uhai",
      help:
        "µHAI held in jobs' escrows (read from the database at scrape time): admitted jobs' maximum cost, " +
        "completed jobs' charges waiting for settlement.",
      registers: this.r,
      async collect() {
        this.set(Number((await sources.store.ledger.openEscrow()).total));
      },
    });
    new Gauge({
      name: "havn_ledger_escrow_jobs",
      help: "Jobs whose escrow holds µHAI (read from the database at scrape time).",
      registers: this.r,
      async collect() {
        this.set((await sources.store.ledger.openEscrow()).jobs);
      },
    });
    new Gauge({
      name: "havn_stake_bonded_uhai",
      help: "µHAI bonded to nodes and validators across the network (read from the database at scrape time).",
      registers: this.r,
      async collect() {
        this.set(Number(await sources.store.ledger.sumPositive("stake:")));
      },
    });
    new Gauge({
      name: "havn_nodes_quarantined",
      help: "Nodes whose stake is quarantined (no jobs, no payouts) as this replica knows them.",
      registers: this.r,
      collect() {
        this.set(sources.quarantined?.() ?? 0);
      },
    });
    new Gauge({
      name: "havn_nodes_held",
      help: "Connected, healthy nodes that get no jobs, by reason (below_floor, quarantined, paused).",
      labelNames: ["reason"] as const,
      registers: this.r,
      collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const n of sources.nodes()) if (n.held) counts.set(n.held, (counts.get(n.held) ?? 0) + 1);
        for (const [reason, n] of counts) this.set({ reason }, n);
      },
    });
    new Gauge({
      name: "havn_nodes",
      help: "Nodes connected to this coordinator, by state (available, unavailable) and compute class.",
      labelNames: ["state", "compute_class"] as const,
      registers: this.r,
      collect() {
        this.reset();
        const counts = new Map<string, { state: string; compute_class: string; n: number }>();
        for (const n of sources.nodes()) {
          const key = `${n.state}/${n.computeClass}`;
          const c = counts.get(key) ?? { state: n.state, compute_class: n.computeClass, n: 0 };
          c.n++;
          counts.set(key, c);
        }
        for (const { n, ...labels } of counts.values()) this.set(labels, n);
      },
    });
  }
}

/** The store's domains whose operations are timed, each as `<domain>.<method>`. */
const timedDomains: ReadonlySet<string> = new Set([
  "governance",
  "jobs",
  "nodes",
  "log",
  "ledger",
  "accounts",
  "workflows",
]);

/**
 * The store, with each domain operation's duration observed in `havn_store_operation_seconds`
 * (`operation="jobs.admit"`, …). Methods are looked up on the domain at each call, so a method
 * replaced on it (fault injection in tests) is the one timed.
 */
export function instrumentStore(store: Store, histogram: CoordinatorMetrics["storeOperation"]): Store {
  const domains = new Map<string, object>();
  const timed = (domain: string, target: object) => {
    const wrappers = new Map<unknown, unknown>();
    return new Proxy(target, {
      get(t, prop, receiver) {
        const value: unknown = Reflect.get(t, prop, receiver);
        if (typeof value !== "function" || typeof prop !== "string") return value;
        let wrapper = wrappers.get(value);
        if (wrapper === undefined) {
          const fn = value as (...a: unknown[]) => unknown;
          const operation = `${domain}.${prop}`;
          wrapper = (...args: unknown[]) => {
            const end = histogram.startTimer({ operation });
            const result = fn.apply(t, args);
            const done = () => void end();
            if (result instanceof Promise) result.then(done, done);
            else done();
            return result;
          };
          wrappers.set(value, wrapper);
        }
        return wrapper;
      },
    });
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop === "string" && timedDomains.has(prop) && typeof value === "object" && value !== null) {
        let proxy = domains.get(prop);
        if (proxy === undefined) domains.set(prop, (proxy = timed(prop, value)));
        return proxy;
      }
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
