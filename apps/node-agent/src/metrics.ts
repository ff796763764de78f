import { createServer, type Server } from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** Seconds buckets for a job on a node: a token from a fast GPU up to a long CPU generation. */
const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const rateBuckets = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/**
 * A node's own Prometheus metrics (`havn node --metrics-port`): what it ran, how fast, and
 * whether its backend and its coordinator connection are up. The coordinator's `/metrics` shows
 * the network; this shows one machine, for its operator.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly jobs = new Counter({
    name: "havn_node_jobs_total",
    help: "Attempts this node ran, by model and outcome (completed, failed, cancelled).",
    labelNames: ["model", "outcome"] as const,
    registers: [this.registry],
  });
  readonly jobDuration = new Histogram({
    name: "havn_node_job_duration_seconds",
    help: "Time from receiving an attempt to sending its result, by model.",
    labelNames: ["model"] as const,
    buckets: durationBuckets,
    registers: [this.registry],
  });
  readonly timeToFirstToken = new Histogram({
    name: "havn_node_time_to_first_token_seconds",
    help: "Time from receiving a streamed attempt to its first text, by model.",
    labelNames: ["model"] as const,
    buckets: durationBuckets,
    registers: [this.registry],
  });
  readonly tokens = new Counter({
    name: "havn_node_tokens_generated_total",
    help: "Completion tokens generated, by model.",
    labelNames: ["model"] as const,
    registers: [this.registry],
  });
  readonly tokensPerSecond = new Histogram({
    name: "havn_node_tokens_per_second",
    help: "Completion tokens per second of each completed attempt, by model.",
    labelNames: ["model"] as const,
    buckets: rateBuckets,
    registers: [this.registry],
  });
  readonly slotsBusy = new Gauge({
    name: "havn_node_slots_busy",
    help: "Attempts running now.",
    registers: [this.registry],
  });
  readonly slots = new Gauge({
    name: "havn_node_slots",
    help: "Attempts this node runs at once.",
    registers: [this.registry],
  });
  readonly backendUp = new Gauge({
    name: "havn_node_backend_up",
    help: "1 when the inference backend passed its last health check, else 0.",
    registers: [this.registry],
  });
  readonly connected = new Gauge({
    name: "havn_node_connected",
    help: "1 while the node holds a welcomed connection to its coordinator, else 0.",
    registers: [this.registry],
  });
  readonly reconnects = new Counter({
    name: "havn_node_reconnects_total",
    help: "Times the connection to the coordinator was lost and retried.",
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}

/**
 * Serves `GET /metrics` (Prometheus text format) on its own port — a node has no HTTP server of
 * its own otherwise. Resolves with the URL once listening; `close` stops it.
 */
export async function serveMetrics(
  registry: Registry,
  options: { port: number; host: string },
): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || req.url?.split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics is served here\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    url: `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}/metrics`,
    server,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
