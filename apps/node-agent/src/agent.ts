import { hostname } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import {
  contentId,
  coordinatorToNodeSchema,
  fatalNodeCloseCodes,
  hashCanonical,
  HavnError,
  helloPayloadSchema,
  nodeCloseCodes,
  protocolVersion,
  sign,
  signReceipt,
  inputCommitment,
  tokenIdsHash,
  type CoordinatorToNode,
  type ErrorCode,
  type Hardware,
  type HelloPayload,
  type JobSpec,
  type KeyPair,
  type NodeCredential,
  type NodeMessageBody,
  type Receipt,
} from "@havn/protocol";
import { defaultDataDir, loadOrCreateKeyFile } from "@havn/protocol/local";
import { jobOutputOf, type Backend, type BackendHealth, type BackendInfo } from "@havn/engine";
import { pino, type Logger } from "pino";
import { assumedPowerW, detectHardware } from "./hardware.js";
import type { NodeMetrics } from "./metrics.js";

export const agentVersion = "0.1.0";

export interface NodeAgentOptions {
  /** The coordinator's base URL (`http://…` or `ws://…`); the agent connects to `/nodes/connect`. */
  readonly coordinatorUrl: string;
  readonly backend: Backend;
  /**
   * Key file (created mode 0600 on first start). Default `~/.havn/node/node.key` (see
   * `defaultDataDir`). Ignored if `keys` is given.
   */
  readonly keyPath?: string | undefined;
  readonly keys?: KeyPair | undefined;
  /** The node's human name, bound to its key on first registration. Default `<hostname>-<key prefix>`. */
  readonly name?: string | undefined;
  /** Override detected hardware (tests, or operators who know better). */
  readonly hardware?: Hardware | undefined;
  /** First reconnect delay, in ms; doubles up to `maxReconnectMs`. Default 500. */
  readonly reconnectMs?: number | undefined;
  /** Longest reconnect delay, in ms. Default 30 000. */
  readonly maxReconnectMs?: number | undefined;
  /**
   * How often the backend's health is checked, in ms. Default 5 000: one heartbeat interval, so a
   * backend that stops is noticed — and the node stops getting jobs — within one heartbeat. A job
   * that fails in the backend triggers a check at once.
   */
  readonly healthCheckMs?: number | undefined;
  /**
   * What lets the node join a production coordinator: its operator's `node`-scoped API key, or the
   * network's join token. Sent in the hello, never logged. Dev-mode coordinators need none.
   */
  readonly credential?: NodeCredential | undefined;
  /** Where the agent logs (its lines get `name: "node"`). Default: nowhere. */
  readonly logger?: Logger | undefined;
  /** Prometheus metrics to keep (`havn node --metrics-port`). */
  readonly metrics?: NodeMetrics | undefined;
  /**
   * Called when the coordinator refuses this node for good after it had been welcomed — its key
   * is live on another connection, its name belongs to another key. The agent has stopped. Before
   * the first welcome, a refusal rejects `ready` instead.
   */
  readonly onFatal?: ((err: HavnError) => void) | undefined;
}

interface Running {
  readonly abort: AbortController;
}

/** How a refusal the coordinator closed the socket with reads, for the node's operator. */
const refusals: Record<number, { code: ErrorCode; fix: string }> = {
  [nodeCloseCodes.authFailed]: {
    code: "NODE_AUTH_FAILED",
    fix: "the key file may be corrupt; move it away to make a new key",
  },
  [nodeCloseCodes.nameTaken]: {
    code: "NODE_NAME_TAKEN",
    fix: "choose another --name, or start this node with the key that registered the name",
  },
  [nodeCloseCodes.keyInUse]: {
    code: "NODE_KEY_IN_USE",
    fix: "another process is connected with this node's key: give this node its own --data-dir",
  },
  [nodeCloseCodes.credentialRequired]: {
    code: "NODE_CREDENTIAL_REQUIRED",
    fix: "pass an operator's node-scoped API key (--api-key, HAVN_API_KEY) or the join token (--join-token, HAVN_JOIN_TOKEN)",
  },
  [nodeCloseCodes.keyOwned]: {
    code: "NODE_KEY_OWNED",
    fix: "this key joined under another account: use that account's key, or give this node its own --data-dir",
  },
};

/** A network failure in a few words: the system code (ECONNREFUSED, ENOTFOUND…) or ws's message. */
function connectProblem(err: Error): string {
  const code = (err as { code?: string }).code;
  const unexpected = /Unexpected server response: (\d+)/.exec(err.message);
  if (unexpected) return `HTTP ${unexpected[1]} on /nodes/connect: is this a havn coordinator?`;
  return code ?? err.message;
}

/** A job not streamed tells the coordinator it has started only if it runs this long past its first token. */
const progressAfterMs = 1_000;
/**
 * A node: holds one outbound WebSocket to a coordinator (NAT never matters), proves its key,
 * advertises its backend's models and hardware, runs jobs, streams tokens and signs a receipt
 * for every result. It checks its backend before it connects and keeps checking: while the
 * backend fails, the node tells the coordinator it is unavailable and gets no jobs, and it comes
 * back by itself when the backend answers again. Reconnects with exponential backoff and jitter
 * until stopped, saying where it is trying to connect and why it failed.
 */
export class NodeAgent {
  readonly keys: KeyPair;
  readonly name: string;
  private socket: WebSocket | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;
  private info: BackendInfo | undefined;
  /** Hash of the backend's runtime identity, the same for every receipt. */
  private runtimeHash = "";
  private hardware: Hardware | undefined;
  private readonly running = new Map<string, Running>();
  private backendHealth: BackendHealth = { ok: true };
  private checking: Promise<void> | undefined;
  /** Why the current connection attempt failed before it was welcomed, if it did. */
  private problem: string | undefined;
  /** The last error the coordinator sent without a job: the reason for a refusal that follows. */
  private lastRefusal: string | undefined;
  private welcomed = false;
  private readyResolve: (() => void) | undefined;
  private readyReject: ((err: HavnError) => void) | undefined;
  private readonly log: Logger;
  /** Resolves the first time the coordinator welcomes this node; rejects if it is refused for good first. */
  readonly ready: Promise<void>;
  /** Jobs completed since start. */
  completed = 0;

  constructor(private readonly options: NodeAgentOptions) {
    this.keys = options.keys ?? loadOrCreateKeyFile(options.keyPath ?? join(defaultDataDir("node"), "node.key"));
    this.name = options.name ?? `${hostname().slice(0, 48)}-${this.keys.publicKey.slice(0, 6)}`;
    const named = helloPayloadSchema.shape.name.safeParse(this.name);
    if (!named.success)
      throw new HavnError("CONFIG_INVALID", "A node name is 1–64 characters, with no control characters and no ~.", {
        context: { Name: JSON.stringify(this.name.slice(0, 80)) },
      });
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    // Whoever awaits `ready` sees a refusal; nobody awaiting it is not an unhandled rejection.
    this.ready.catch(() => {});
    this.log = (options.logger ?? pino({ level: process.env.HAVN_TEST_LOG ?? "silent" })).child({
      name: "node",
      node: this.name,
    });
  }

  /**
   * Reads the backend's models, checks that it answers, detects the hardware, and connects.
   * Throws (a catalog error naming the fix) when the backend cannot serve at all.
   */
  async start(): Promise<void> {
    try {
      this.info = await this.options.backend.info();
      this.runtimeHash = hashCanonical(this.info.runtime);
      this.hardware = this.options.hardware ?? (await detectHardware());
      await this.checkHealth();
    } catch (err) {
      this.readyReject?.(err as HavnError);
      throw err;
    }
    const m = this.options.metrics;
    m?.slots.set(this.info.slots);
    m?.connected.set(0);
    this.healthTimer = setInterval(() => void this.checkHealth(), this.options.healthCheckMs ?? 5_000);
    this.healthTimer.unref();
    this.log.info(
      { coordinator: this.options.coordinatorUrl, models: this.info.models.map((x) => x.name), slots: this.info.slots },
      "connecting to the coordinator",
    );
    this.connect();
  }

  /** Whether the agent holds an open, welcomed connection. */
  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN && this.heartbeat !== undefined;
  }

  /** Whether the backend passed its last health check (the node takes jobs). */
  get available(): boolean {
    return this.backendHealth.ok;
  }

  /**
   * Checks the backend once (concurrent calls share the check). A change is logged and told to
   * the coordinator at once, in an extra heartbeat.
   */
  checkHealth(): Promise<void> {
    this.checking ??= (async () => {
      const before = this.backendHealth;
      const now = await this.options.backend
        .health()
        .catch((err: unknown): BackendHealth => ({ ok: false, code: "BACKEND_UNAVAILABLE", reason: String(err) }));
      this.backendHealth = now;
      this.options.metrics?.backendUp.set(now.ok ? 1 : 0);
      const changed = now.ok !== before.ok || (!now.ok && !before.ok && now.reason !== before.reason);
      if (!changed) return;
      if (now.ok) this.log.info("backend answers again; taking jobs");
      else
        this.log.warn({ code: now.code, reason: now.reason }, "backend unavailable; taking no jobs until it answers");
      if (this.connected) this.sendHeartbeat();
    })().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private url(): string {
    const base = this.options.coordinatorUrl.replace(/\/+$/, "").replace(/^http/, "ws");
    return `${base}/nodes/connect`;
  }

  private connect() {
    if (this.stopped) return;
    this.problem = undefined;
    this.lastRefusal = undefined;
    const socket = new WebSocket(this.url(), { maxPayload: 64 * 1024 * 1024 });
    this.socket = socket;
    socket.on("message", (data) => {
      let msg: CoordinatorToNode;
      try {
        const parsed = coordinatorToNodeSchema.safeParse(JSON.parse(data.toString()));
        if (!parsed.success) return this.log.warn("ignoring a malformed coordinator message");
        msg = parsed.data;
      } catch {
        return this.log.warn("ignoring a non-JSON coordinator message");
      }
      this.onMessage(msg);
    });
    socket.on("close", (code, reason) => {
      if (this.socket === socket) this.onClose(code, reason.toString());
    });
    socket.on("error", (err) => {
      if (socket.readyState !== WebSocket.OPEN) this.problem = connectProblem(err);
      else this.log.warn({ err: err.message }, "connection error");
    });
  }

  private send(message: NodeMessageBody) {
    if (this.socket?.readyState === WebSocket.OPEN)
      this.socket.send(JSON.stringify({ v: protocolVersion, ...message }));
  }

  private onMessage(msg: CoordinatorToNode) {
    switch (msg.type) {
      case "challenge":
        return this.hello(msg.nonce);
      case "welcome": {
        this.attempt = 0;
        this.welcomed = true;
        clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => this.sendHeartbeat(), msg.heartbeat_interval_ms);
        this.heartbeat.unref();
        this.options.metrics?.connected.set(1);
        this.log.info({ coordinator: this.options.coordinatorUrl, available: this.available }, "connected");
        this.readyResolve?.();
        // A backend that failed while we were away is reported at once, not at the first beat.
        if (!this.available) this.sendHeartbeat();
        return;
      }
      case "job":
        void this.run(msg.spec);
        return;
      case "cancel":
        this.running.get(msg.attempt_id)?.abort.abort();
        return;
      case "error":
        if (!msg.job_id && msg.code.startsWith("NODE_")) this.lastRefusal = msg.message;
        this.log.warn({ code: msg.code, reason: msg.message, job: msg.job_id }, "coordinator reported an error");
        return;
    }
  }

  private hello(nonce: string) {
    const info = this.info!;
    const payload: HelloPayload = {
      nonce,
      node_key: this.keys.publicKey,
      name: this.name,
      agent_version: agentVersion,
      capabilities: {
        backend: info.backend,
        engine_version: info.engineVersion,
        models: info.models.map((m) => ({
          name: m.name,
          tasks: [...m.tasks],
          context_length: m.contextLength,
          model_hash: m.modelHash,
        })),
        slots: info.slots,
      },
      hardware: this.hardware!,
      available: this.available,
    };
    const credential = this.options.credential;
    this.send({
      type: "hello",
      payload,
      signature: sign("hello", payload, this.keys.secretKey),
      ...(credential && (credential.api_key || credential.join_token) ? { credential } : {}),
    });
  }

  private sendHeartbeat() {
    const h = this.backendHealth;
    this.send({
      type: "heartbeat",
      in_flight: [...this.running.keys()],
      busy_slots: this.running.size,
      available: h.ok,
      backend: h.ok ? { ok: true } : { ok: false, code: h.code, reason: h.reason.slice(0, 512) },
    });
  }

  private async run(spec: JobSpec) {
    const info = this.info!;
    const m = this.options.metrics;
    const abort = new AbortController();
    this.running.set(spec.attempt_id, { abort });
    m?.slotsBusy.set(this.running.size);
    const job = {
      job: spec.job_id,
      attempt: spec.attempt_id,
      model: spec.model,
      request_id: spec.request_id ?? undefined,
    };
    this.log.debug(job, "job received");
    const started = performance.now();
    let firstTextAt: number | undefined;
    let index = 0;
    let buffered = "";
    let flushScheduled = false;
    let progressTimer: NodeJS.Timeout | undefined;
    // Pieces generated in the same turn travel in one frame.
    const flush = () => {
      flushScheduled = false;
      if (buffered.length === 0) return;
      this.send({ type: "token", job_id: spec.job_id, attempt_id: spec.attempt_id, index, text: buffered });
      index++;
      buffered = "";
    };
    try {
      const result = await this.options.backend.generate({
        model: spec.model,
        input: spec.input,
        params: spec.params,
        signal: abort.signal,
        onText: spec.stream
          ? (text) => {
              firstTextAt ??= performance.now();
              buffered += text;
              if (!flushScheduled) {
                flushScheduled = true;
                setImmediate(flush);
              }
            }
          : () => {
              // The coordinator holds an attempt to a first-token deadline (10 s at the least): a
              // job not streamed says once that it has started generating — if it is still at it
              // a second later. A short job's result says it all, with no message (and no database
              // write at the coordinator) more.
              if (firstTextAt !== undefined) return;
              firstTextAt = performance.now();
              progressTimer = setTimeout(
                () =>
                  this.send({
                    type: "progress",
                    job_id: spec.job_id,
                    attempt_id: spec.attempt_id,
                    stage: "generating",
                    progress: 0,
                  }),
                progressAfterMs,
              );
              progressTimer.unref?.();
            },
      });
      clearTimeout(progressTimer);
      flush();
      if (abort.signal.aborted || result.finishReason === "cancelled") {
        m?.jobs.inc({ model: spec.model, outcome: "cancelled" });
        this.log.info({ ...job, duration_ms: Math.round(performance.now() - started) }, "job cancelled");
        return;
      }
      const latencyMs = Math.round(performance.now() - started);
      const model = info.models.find((x) => x.name === spec.model);
      const receipt: Receipt = {
        v: 2,
        job_id: spec.job_id,
        attempt_id: spec.attempt_id,
        signer: { kind: "node", key: this.keys.publicKey },
        node_id: this.keys.publicKey,
        workflow:
          spec.workflow_id === null ? null : { id: spec.workflow_id, version: spec.workflow_version ?? "unknown" },
        model: spec.model,
        model_hash: model?.modelHash ?? hashCanonical({ model: spec.model }),
        model_source: model?.source ?? { kind: "server", ref: spec.model },
        backend: info.backend,
        runtime_hash: this.runtimeHash,
        sampling: spec.params,
        input_commitment: inputCommitment(spec.input, spec.input_salt),
        outputs_cid: contentId(result.text),
        output_token_ids_hash: result.tokenIds === undefined ? null : tokenIdsHash(result.tokenIds),
        finish_reason: result.finishReason,
        tokens: { prompt: result.promptTokens, completion: result.completionTokens },
        latency_ms: latencyMs,
        energy_estimate: Number(((assumedPowerW(this.hardware!, info.runtime.threads) * latencyMs) / 1000).toFixed(3)),
        finished_at: Date.now(),
      };
      this.send({
        type: "result",
        job_id: spec.job_id,
        attempt_id: spec.attempt_id,
        output: jobOutputOf(result),
        receipt,
        node_signature: signReceipt(receipt, this.keys.secretKey),
      });
      this.completed++;
      const seconds = latencyMs / 1000;
      const tokensPerSecond = seconds > 0 ? result.completionTokens / seconds : 0;
      if (m) {
        m.jobs.inc({ model: spec.model, outcome: "completed" });
        m.jobDuration.observe({ model: spec.model }, seconds);
        m.tokens.inc({ model: spec.model }, result.completionTokens);
        if (seconds > 0) m.tokensPerSecond.observe({ model: spec.model }, tokensPerSecond);
        if (firstTextAt !== undefined)
          m.timeToFirstToken.observe({ model: spec.model }, (firstTextAt - started) / 1000);
      }
      this.log.info(
        {
          ...job,
          duration_ms: latencyMs,
          ttft_ms: firstTextAt === undefined ? undefined : Math.round(firstTextAt - started),
          tokens: result.completionTokens,
          tokens_per_s: Math.round(tokensPerSecond * 10) / 10,
        },
        "job completed",
      );
    } catch (err) {
      clearTimeout(progressTimer);
      const e =
        err instanceof HavnError ? err : new HavnError("BACKEND_UNAVAILABLE", "The backend failed.", { cause: err });
      m?.jobs.inc({ model: spec.model, outcome: "failed" });
      // A failure that is not a HavnError is a bug or a backend crash: its message goes to the log.
      const cause = err instanceof HavnError ? {} : { cause: err instanceof Error ? err.message : String(err) };
      this.log.warn({ ...job, code: e.code, err: e.shortMessage, ...cause }, "job failed");
      this.send({
        type: "error",
        job_id: spec.job_id,
        attempt_id: spec.attempt_id,
        code: e.code,
        message: e.shortMessage,
        retryable: e.retryable,
      });
      // A backend that just failed a job may be down: find out now, not at the next check.
      if (e.code === "BACKEND_UNAVAILABLE") void this.checkHealth();
    } finally {
      this.running.delete(spec.attempt_id);
      m?.slotsBusy.set(this.running.size);
    }
  }

  private onClose(code: number, reason: string) {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    this.options.metrics?.connected.set(0);
    // The coordinator re-queues our jobs when the socket closes; finishing them would be wasted.
    for (const r of this.running.values()) r.abort.abort();
    if (this.stopped) return;
    const refusal = refusals[code];
    if (refusal && fatalNodeCloseCodes.has(code)) {
      this.fatal(
        new HavnError(refusal.code, `The coordinator refused this node: ${this.lastRefusal ?? reason}`, {
          context: { Node: this.name, Key: this.keys.publicKey, Fix: refusal.fix },
        }),
      );
      return;
    }
    const base = this.options.reconnectMs ?? 500;
    const delay = Math.min(this.options.maxReconnectMs ?? 30_000, base * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.options.metrics?.reconnects.inc();
    const retry = { coordinator: this.options.coordinatorUrl, retry_in_ms: Math.round(delay), attempt: this.attempt };
    if (this.problem !== undefined)
      this.log.warn(
        { ...retry, problem: this.problem },
        `cannot reach the coordinator at ${this.options.coordinatorUrl} (${this.problem}); retrying in ${(delay / 1000).toFixed(1)} s`,
      );
    else this.log.warn({ ...retry, code, reason }, "disconnected from the coordinator; reconnecting");
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private fatal(err: HavnError) {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.healthTimer);
    this.log.error({ code: err.code, fix: err.context.Fix }, err.shortMessage);
    if (!this.welcomed) this.readyReject?.(err);
    else this.options.onFatal?.(err);
  }

  /** Whoever still waits for the first welcome learns that it will not come. */
  private abandonReady() {
    if (!this.welcomed)
      this.readyReject?.(
        new HavnError("COORDINATOR_UNREACHABLE", "The node stopped before a coordinator welcomed it."),
      );
  }

  /** Disconnects for good; running jobs are abandoned (the coordinator re-queues them). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abandonReady();
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    clearInterval(this.healthTimer);
    const socket = this.socket;
    if (socket && socket.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        socket.once("close", () => resolve());
        socket.close(1000, "node stopping");
        setTimeout(() => {
          socket.terminate();
          resolve();
        }, 2_000).unref();
      });
    }
    for (const r of this.running.values()) r.abort.abort();
  }

  /** Drops the connection abruptly, as a crash or a network cut would (fault injection). */
  kill(): void {
    this.stopped = true;
    this.abandonReady();
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    clearInterval(this.healthTimer);
    this.socket?.terminate();
    for (const r of this.running.values()) r.abort.abort();
  }
}
