import { hostname } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import {
  contentId,
  coordinatorToNodeSchema,
  hashCanonical,
  HavnError,
  protocolVersion,
  sign,
  signReceipt,
  type CoordinatorToNode,
  type Hardware,
  type HelloPayload,
  type JobSpec,
  type KeyPair,
  type NodeMessageBody,
  type Receipt,
} from "@havn/protocol";
import { loadOrCreateKeyFile } from "@havn/protocol/keyfile";
import { jobOutputOf, type Backend, type BackendInfo } from "@havn/engine";
import { assumedPowerW, detectHardware } from "./hardware.js";

export const agentVersion = "0.1.0";

export interface NodeAgentOptions {
  /** The coordinator's base URL (`http://…` or `ws://…`); the agent connects to `/nodes/connect`. */
  readonly coordinatorUrl: string;
  readonly backend: Backend;
  /** Key file (created mode 0600 on first start). Default `./data/node.key`. Ignored if `keys` is given. */
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
  readonly log?:
    ((level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void) | undefined;
}

interface Running {
  readonly abort: AbortController;
}

/**
 * A node: holds one outbound WebSocket to a coordinator (NAT never matters), proves its key,
 * advertises its backend's models and hardware, runs jobs, streams tokens and signs a receipt
 * for every result. Reconnects with exponential backoff and jitter until stopped.
 */
export class NodeAgent {
  readonly keys: KeyPair;
  readonly name: string;
  private socket: WebSocket | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;
  private info: BackendInfo | undefined;
  /** Hash of the backend's runtime identity, the same for every receipt. */
  private runtimeHash = "";
  private hardware: Hardware | undefined;
  private readonly running = new Map<string, Running>();
  private readyResolve: (() => void) | undefined;
  /** Resolves the first time the coordinator welcomes this node. */
  readonly ready: Promise<void>;
  /** Jobs completed since start. */
  completed = 0;

  constructor(private readonly options: NodeAgentOptions) {
    this.keys = options.keys ?? loadOrCreateKeyFile(options.keyPath ?? join("data", "node.key"));
    this.name = options.name ?? `${hostname().slice(0, 48)}-${this.keys.publicKey.slice(0, 6)}`;
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
  }

  private log(level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) {
    this.options.log?.(level, message, fields);
  }

  async start(): Promise<void> {
    this.info = await this.options.backend.info();
    this.runtimeHash = hashCanonical(this.info.runtime);
    this.hardware = this.options.hardware ?? (await detectHardware());
    this.connect();
  }

  /** Whether the agent holds an open, welcomed connection. */
  get connected(): boolean {
    return this.socket?.readyState === WebSocket.OPEN && this.heartbeat !== undefined;
  }

  private url(): string {
    const base = this.options.coordinatorUrl.replace(/\/+$/, "").replace(/^http/, "ws");
    return `${base}/nodes/connect`;
  }

  private connect() {
    if (this.stopped) return;
    const socket = new WebSocket(this.url(), { maxPayload: 64 * 1024 * 1024 });
    this.socket = socket;
    socket.on("message", (data) => {
      let msg: CoordinatorToNode;
      try {
        const parsed = coordinatorToNodeSchema.safeParse(JSON.parse(data.toString()));
        if (!parsed.success) return this.log("warn", "ignoring a malformed coordinator message");
        msg = parsed.data;
      } catch {
        return this.log("warn", "ignoring a non-JSON coordinator message");
      }
      this.onMessage(msg);
    });
    socket.on("close", (code, reason) => {
      this.onClose(code, reason.toString());
    });
    socket.on("error", (err) => this.log("warn", "connection error", { err: err.message }));
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
        clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => this.sendHeartbeat(), msg.heartbeat_interval_ms);
        this.heartbeat.unref();
        this.log("info", "connected", { node: this.name });
        this.readyResolve?.();
        return;
      }
      case "job":
        void this.run(msg.spec);
        return;
      case "cancel":
        this.running.get(msg.attempt_id)?.abort.abort();
        return;
      case "error":
        this.log("warn", "coordinator reported an error", { code: msg.code, message: msg.message, job: msg.job_id });
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
    };
    this.send({ type: "hello", payload, signature: sign("hello", payload, this.keys.secretKey) });
  }

  private sendHeartbeat() {
    this.send({ type: "heartbeat", in_flight: [...this.running.keys()], busy_slots: this.running.size });
  }

  private async run(spec: JobSpec) {
    const info = this.info!;
    const abort = new AbortController();
    this.running.set(spec.attempt_id, { abort });
    const started = performance.now();
    let index = 0;
    let buffered = "";
    let flushScheduled = false;
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
              buffered += text;
              if (!flushScheduled) {
                flushScheduled = true;
                setImmediate(flush);
              }
            }
          : undefined,
      });
      flush();
      if (abort.signal.aborted || result.finishReason === "cancelled") return;
      const latencyMs = Math.round(performance.now() - started);
      const model = info.models.find((m) => m.name === spec.model);
      const receipt: Receipt = {
        v: 1,
        job_id: spec.job_id,
        attempt_id: spec.attempt_id,
        workflow_id: spec.workflow_id,
        node_key: this.keys.publicKey,
        model: spec.model,
        model_hash: model?.modelHash ?? hashCanonical({ model: spec.model }),
        backend: info.backend,
        params_hash: hashCanonical(spec.params),
        input_hash: hashCanonical(spec.input),
        outputs_cid: contentId(result.text),
        latency_ms: latencyMs,
        tokens: { prompt: result.promptTokens, completion: result.completionTokens },
        energy_estimate: Number(((assumedPowerW(this.hardware!, info.runtime.threads) * latencyMs) / 1000).toFixed(3)),
        runtime_hash: this.runtimeHash,
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
    } catch (err) {
      const e =
        err instanceof HavnError ? err : new HavnError("BACKEND_UNAVAILABLE", "The backend failed.", { cause: err });
      this.log("warn", "job failed", { job: spec.job_id, code: e.code, err: (err as Error).message });
      this.send({
        type: "error",
        job_id: spec.job_id,
        attempt_id: spec.attempt_id,
        code: e.code,
        message: e.shortMessage,
        retryable: e.retryable,
      });
    } finally {
      this.running.delete(spec.attempt_id);
    }
  }

  private onClose(code: number, reason: string) {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    // The coordinator re-queues our jobs when the socket closes; finishing them would be wasted.
    for (const r of this.running.values()) r.abort.abort();
    if (this.stopped) return;
    const base = this.options.reconnectMs ?? 500;
    const delay = Math.min(this.options.maxReconnectMs ?? 30_000, base * 2 ** this.attempt) * (0.5 + Math.random() / 2);
    this.attempt++;
    this.log("warn", "disconnected; reconnecting", { code, reason, delayMs: Math.round(delay) });
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** Disconnects for good; running jobs are abandoned (the coordinator re-queues them). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
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
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeat);
    this.socket?.terminate();
    for (const r of this.running.values()) r.abort.abort();
  }
}
