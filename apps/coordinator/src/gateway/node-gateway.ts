import type { FastifyBaseLogger } from "fastify";
import type { WebSocket } from "ws";
import {
  HavnError,
  isErrorCode,
  nodeCloseCodes,
  utf8,
  nodeToCoordinatorSchema,
  protocolVersion,
  randomHex,
  verify,
  type BackendHealthReport,
  type CoordinatorMessageBody,
  type ErrorBody,
  type KeyPair,
  type NodeToCoordinator,
} from "@havn/protocol";
import type { CompleteJobInput, CompleteJobResult, Store } from "@havn/store";
import type { CoordinatorConfig } from "../config.js";
import type { AuthService } from "../auth/auth-service.js";
import type { JobEvents } from "../jobs/job-events.js";
import { attemptErrors } from "../queue/attempt-errors.js";
import type { Batcher } from "../queue/batcher.js";
import type { Dispatcher } from "../queue/dispatcher.js";
import type { ModelCatalog } from "../router/model-catalog.js";
import type { JobTelemetry } from "../telemetry/job-telemetry.js";
import type { CoordinatorMetrics } from "../telemetry/metrics.js";
import type { SignaturePool } from "../verification/signature-pool.js";
import { verifyResult } from "../verification/verify-result.js";
import type { NodeRegistry, NodeSession } from "./node-registry.js";

type Msg<T extends NodeToCoordinator["type"]> = Extract<NodeToCoordinator, { type: T }>;

export interface NodeGatewayDeps {
  readonly store: Store;
  readonly registry: NodeRegistry;
  readonly dispatcher: Dispatcher;
  readonly batcher: Batcher<CompleteJobInput, CompleteJobResult>;
  readonly events: JobEvents;
  readonly catalog: ModelCatalog;
  readonly config: CoordinatorConfig;
  readonly keys: KeyPair;
  readonly signatures: SignaturePool;
  readonly telemetry: JobTelemetry;
  readonly metrics: CoordinatorMetrics;
  readonly auth: AuthService;
  readonly log: FastifyBaseLogger;
}

/** WebSocket close codes (4000–4999 are the application's); the node protocol defines them. */
export const closeCodes = nodeCloseCodes;

/** Weight of the newest sample in a node's latency average. */
const latencyEwmaAlpha = 0.2;

/** A WebSocket ping answered within `timeoutMs`: the connection is alive at the other end. */
function pingSocket(socket: WebSocket, timeoutMs: number): Promise<boolean> {
  if (socket.readyState !== socket.OPEN) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (alive: boolean) => {
      clearTimeout(timer);
      socket.off("pong", onPong);
      resolve(alive);
    };
    const onPong = () => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on("pong", onPong);
    try {
      socket.ping();
    } catch {
      done(false);
    }
  });
}

/**
 * The native node protocol on `/nodes/connect`: a challenge, a signed hello that proves the
 * node holds its key, then heartbeats, tokens and results. A malformed frame is answered with
 * a NODE_PROTOCOL_VIOLATION error and never crashes the coordinator; too many close the socket.
 */
export class NodeGateway {
  constructor(private readonly deps: NodeGatewayDeps) {}

  /**
   * An operator revoked the API key these nodes joined with: they are closed (4012, for good),
   * their attempts re-queued as for any lost node. Returns how many were closed.
   */
  closeJoinedWith(keyId: string): number {
    const closing = this.deps.registry.all().filter((s) => s.joinedWithKey === keyId);
    const err = new HavnError(
      "NODE_CREDENTIAL_REQUIRED",
      "The API key this node joined with was revoked: start it with another node-scoped key.",
    );
    for (const s of closing) {
      s.send({ type: "error", code: err.code, message: err.shortMessage, retryable: false });
      s.close(closeCodes.credentialRequired, "credential revoked");
      this.deps.log.warn({ node: s.name, key: s.key, api_key: keyId }, "closed a node whose API key was revoked");
    }
    return closing.length;
  }

  accept(socket: WebSocket): void {
    const { config, keys, metrics, log } = this.deps;
    metrics.nodeConnections.inc();
    const nonce = randomHex(16);
    let session: NodeSession | undefined;
    let violations = 0;
    const send = (message: CoordinatorMessageBody) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify({ v: protocolVersion, ...message }));
    };
    const sendError = (err: HavnError, jobId?: string) =>
      send({
        type: "error",
        ...(jobId ? { job_id: jobId } : {}),
        code: err.code,
        message: err.shortMessage,
        retryable: err.retryable,
      });
    const violation = (message: string, details?: unknown) => {
      violations++;
      sendError(new HavnError("NODE_PROTOCOL_VIOLATION", message, { details }));
      if (violations >= config.maxProtocolViolations)
        socket.close(closeCodes.protocolViolation, "too many protocol violations");
    };

    const helloTimer = setTimeout(() => {
      if (!session) socket.close(closeCodes.helloTimeout, "no hello within the timeout");
    }, config.helloTimeoutMs);
    send({ type: "challenge", nonce, coordinator_key: keys.publicKey });

    socket.on("message", (data, isBinary) => {
      if (isBinary) return violation("Binary frames are not part of the node protocol.");
      let raw: unknown;
      try {
        raw = JSON.parse(data.toString());
      } catch {
        return violation("The frame is not valid JSON.");
      }
      const parsed = nodeToCoordinatorSchema.safeParse(raw);
      if (!parsed.success) {
        return violation(
          "The frame does not match the node protocol.",
          parsed.error.issues.slice(0, 5).map((i) => ({ path: i.path.join("."), message: i.message })),
        );
      }
      const msg = parsed.data;
      if (session === undefined) {
        if (msg.type !== "hello") return violation("The first message must be hello.");
        void this.hello(msg, nonce, socket, send, sendError)
          .then((s) => {
            session = s;
            if (s) clearTimeout(helloTimer);
          })
          .catch((err: unknown) => {
            log.error({ err }, "hello failed");
            socket.close(1011, "internal error");
          });
        return;
      }
      if (msg.type === "hello") return violation("hello was already received on this connection.");
      this.handle(session, msg, sendError).catch((err: unknown) => {
        log.error({ err, node: session?.name }, "node message handling failed");
      });
    });

    socket.on("close", () => {
      metrics.nodeConnections.dec();
      clearTimeout(helloTimer);
      if (session) {
        this.lost(session).catch((err: unknown) =>
          log.error({ err, node: session?.name }, "node loss handling failed"),
        );
      }
    });
    socket.on("error", (err) => log.warn({ err }, "node socket error"));
  }

  private async hello(
    msg: Msg<"hello">,
    nonce: string,
    socket: WebSocket,
    send: (m: CoordinatorMessageBody) => void,
    sendError: (e: HavnError) => void,
  ): Promise<NodeSession | undefined> {
    const { store, registry, catalog, dispatcher, config, log } = this.deps;
    const { payload } = msg;
    if (
      payload.nonce !== nonce ||
      payload.node_key.length !== 43 ||
      !verify("hello", payload, msg.signature, payload.node_key)
    ) {
      sendError(new HavnError("NODE_AUTH_FAILED", "The hello signature does not verify for this challenge and key."));
      socket.close(closeCodes.authFailed, "authentication failed");
      return undefined;
    }
    // The key proves who the node is; a credential proves it may join: its operator's node key,
    // or the network's join token (neither is logged).
    const joining = await this.deps.auth.nodeAccount(msg.credential);
    if (!joining) {
      sendError(
        new HavnError(
          "NODE_CREDENTIAL_REQUIRED",
          "This coordinator admits nodes with an operator's node-scoped API key (--api-key or HAVN_API_KEY) or the network's join token (--join-token or HAVN_JOIN_TOKEN).",
        ),
      );
      socket.close(closeCodes.credentialRequired, "credential required");
      log.warn({ node: payload.name, key: payload.node_key }, "refused a node without a valid credential");
      return undefined;
    }
    // One key, one live connection. A node that crashed and reconnects finds its old socket
    // still registered (half-open): that one cannot answer a ping and is replaced. Two live
    // processes sharing one key file would knock each other off forever, so the newcomer is
    // refused instead, with the fix.
    const existing = registry.get(payload.node_key);
    if (existing && (await existing.ping(config.duplicateKeyProbeMs)) && registry.get(payload.node_key) === existing) {
      sendError(
        new HavnError(
          "NODE_KEY_IN_USE",
          `Node key ${payload.node_key} is already connected as ${existing.name}: each node needs its own key — start this one with its own --data-dir.`,
        ),
      );
      socket.close(closeCodes.keyInUse, "key in use");
      log.warn(
        { node: payload.name, key: payload.node_key, connected_as: existing.name },
        "refused a second connection with a live node's key",
      );
      return undefined;
    }
    const now = Date.now();
    const upsert = await store.nodes.upsert({
      key: payload.node_key,
      name: payload.name,
      accountId: joining.accountId,
      capabilities: payload.capabilities,
      hardware: payload.hardware,
      now,
    });
    if (!upsert.ok) {
      if (upsert.reason === "key_owned") {
        sendError(new HavnError("NODE_KEY_OWNED", "This node key belongs to another account."));
        socket.close(closeCodes.keyOwned, "key owned by another account");
      } else {
        sendError(
          new HavnError(
            "NODE_NAME_TAKEN",
            "Another account's node (or another key without an account) holds this name; choose another --name.",
          ),
        );
        socket.close(closeCodes.nameTaken, "name taken");
      }
      return undefined;
    }
    if (socket.readyState !== socket.OPEN) return undefined;
    const session: NodeSession = {
      key: payload.node_key,
      name: payload.name,
      joinedWithKey: joining.keyId,
      capabilities: payload.capabilities,
      hardware: payload.hardware,
      models: new Set(payload.capabilities.models.map((m) => m.name)),
      tasks: new Map(payload.capabilities.models.map((m) => [m.name, new Set(m.tasks)])),
      slots: payload.capabilities.slots,
      inFlight: new Map(),
      connectedAt: now,
      lastSeenAt: now,
      lastHeartbeatAt: now,
      available: payload.available ?? true,
      backend: { ok: payload.available ?? true },
      latencyEwmaMs: null,
      send,
      close: (code, reason) => socket.close(code, reason),
      terminate: () => socket.terminate(),
      ping: (timeoutMs) => pingSocket(socket, timeoutMs),
    };
    const previous = registry.add(session);
    // It did not answer a ping: a close handshake would wait ws's 30 s close timeout before its
    // attempts are re-queued. Drop it at once.
    previous?.terminate();
    catalog.noteAdvertised([...session.models]);
    send({ type: "welcome", node_key: session.key, heartbeat_interval_ms: config.heartbeatIntervalMs });
    log.info(
      {
        node: session.name,
        key: session.key,
        models: [...session.models],
        slots: session.slots,
        compute_class: session.hardware.compute_class,
        available: session.available,
      },
      "node online",
    );
    dispatcher.notify();
    return session;
  }

  private async handle(
    session: NodeSession,
    msg: NodeToCoordinator,
    sendError: (e: HavnError, jobId?: string) => void,
  ) {
    const { store, events, dispatcher, batcher, config, telemetry, log } = this.deps;
    session.lastSeenAt = Date.now();
    // A job placed at admission reaches its node before its row is written: what the node says
    // about it waits for the row (in arrival order, as awaits on one promise resume in order).
    const admission =
      "attempt_id" in msg && msg.attempt_id ? session.inFlight.get(msg.attempt_id)?.admission : undefined;
    if (admission) await admission;
    const now = Date.now();
    switch (msg.type) {
      case "heartbeat": {
        session.lastHeartbeatAt = now;
        if (msg.available !== undefined) this.setAvailability(session, msg.available, msg.backend);
        const mine = msg.in_flight.filter((a) => session.inFlight.has(a));
        if (mine.length > 0) await store.jobs.renewLeases(session.key, mine, now + config.leaseMs, now);
        return;
      }
      case "token":
      case "progress": {
        const attempt = session.inFlight.get(msg.attempt_id);
        if (!attempt || attempt.spec.job_id !== msg.job_id) return; // stale: the job moved on
        // Emit before any await: the next token of this job may be handled while we wait on the
        // database, and tokens must reach streams in the order the node sent them.
        if (msg.type === "token") events.emit(msg.job_id, { type: "token", attemptId: msg.attempt_id, text: msg.text });
        if (!attempt.running) {
          attempt.running = true;
          telemetry.started(attempt.spec, session.name, attempt.admittedAt, now);
          await store.jobs.markRunning(msg.job_id, msg.attempt_id, now);
        }
        return;
      }
      case "error": {
        if (!msg.attempt_id || !msg.job_id) {
          log.warn({ node: session.name, code: msg.code, message: msg.message }, "node reported an error");
          return;
        }
        const attempt = session.inFlight.get(msg.attempt_id);
        if (!attempt || attempt.spec.job_id !== msg.job_id) return;
        session.inFlight.delete(msg.attempt_id);
        const code = catalogCode(msg.code);
        telemetry.attemptEnded(attempt.spec.model, code, now - attempt.dispatchedAt);
        await dispatcher.endAttempt(
          {
            jobId: msg.job_id,
            attemptId: msg.attempt_id,
            error: { code, message: msg.message, retryable: msg.retryable },
            retry: msg.retryable,
            now,
          },
          session.name,
        );
        return;
      }
      case "result": {
        const attempt = session.inFlight.get(msg.attempt_id);
        if (!attempt || attempt.spec.job_id !== msg.job_id) {
          sendError(new HavnError("NODE_LEASE_CONFLICT", "This attempt is no longer leased to this node."), msg.job_id);
          return;
        }
        session.inFlight.delete(msg.attempt_id);
        const observedMs = now - attempt.dispatchedAt;
        session.latencyEwmaMs =
          session.latencyEwmaMs === null
            ? observedMs
            : session.latencyEwmaMs + latencyEwmaAlpha * (observedMs - session.latencyEwmaMs);
        dispatcher.capacityFreed(session);
        const problem = await verifyResult(
          msg,
          {
            spec: attempt.spec,
            nodeKey: session.key,
            advertisedModelHash: session.capabilities.models.find((m) => m.name === attempt.spec.model)?.model_hash,
            observedMs,
            now,
          },
          this.deps.signatures,
        );
        if (problem) {
          log.warn(
            { node: session.name, job: msg.job_id, code: problem.code, err: problem.message },
            "result rejected",
          );
          telemetry.attemptEnded(attempt.spec.model, problem.code, observedMs);
          sendError(problem, msg.job_id);
          await dispatcher.endAttempt(
            {
              jobId: msg.job_id,
              attemptId: msg.attempt_id,
              error: problem.toBody(),
              retry: true,
              now,
            },
            session.name,
          );
          return;
        }
        telemetry.attemptEnded(attempt.spec.model, "completed", observedMs, msg.output.usage.completion_tokens);
        const text = utf8(msg.output.text);
        const result = await batcher.add({
          jobId: msg.job_id,
          attemptId: msg.attempt_id,
          nodeKey: session.key,
          output: msg.output,
          outputCid: msg.receipt.outputs_cid,
          outputBytes: text,
          receipt: msg.receipt,
          nodeSignature: msg.node_signature,
          computeClass: session.hardware.compute_class,
          now,
        });
        if (result.ok) events.emitTransition(result.job, msg.attempt_id, session.name);
        else
          sendError(
            new HavnError("NODE_LEASE_CONFLICT", "The job was finished or re-leased before this result."),
            msg.job_id,
          );
        return;
      }
    }
  }

  /** The node's connection ended: its attempts go back to the queue. */
  async lost(session: NodeSession): Promise<void> {
    const { registry, store, dispatcher, log } = this.deps;
    const current = registry.remove(session);
    const now = Date.now();
    if (current) await store.nodes.setOnline(session.key, false, now);
    const attempts = [...session.inFlight.entries()];
    session.inFlight.clear();
    for (const [attemptId, attempt] of attempts) {
      // An attempt whose admission row was never written has nothing to end.
      if (attempt.admission && !(await attempt.admission)) continue;
      await dispatcher.endAttempt(
        { jobId: attempt.spec.job_id, attemptId, error: attemptErrors.nodeLost, retry: true, now },
        session.name,
      );
    }
    log.info({ node: session.name, requeued: attempts.length }, "node offline");
    dispatcher.notify();
  }

  /**
   * A node says whether it takes jobs (its backend passes its health checks or not). An
   * unavailable node gets no jobs and serves no model until it says it is available again.
   */
  private setAvailability(session: NodeSession, available: boolean, backend: BackendHealthReport | undefined) {
    const before = session.available;
    session.available = available;
    session.backend = backend ?? { ok: available };
    if (before === available) return;
    if (available) this.deps.log.info({ node: session.name }, "node available again");
    else
      this.deps.log.warn(
        { node: session.name, code: session.backend.code, reason: session.backend.reason },
        "node unavailable: its backend fails its health checks; no jobs go to it",
      );
    // Either way routing changes: a node back takes queued work; a node gone may leave a job only
    // the node that failed it can now run (see Router.eligible).
    this.deps.dispatcher.notify();
  }
}

/** A node's error code as a catalog code; unknown codes from a node count as backend failures. */
function catalogCode(code: string): ErrorBody["code"] {
  return isErrorCode(code) ? code : "BACKEND_UNAVAILABLE";
}
