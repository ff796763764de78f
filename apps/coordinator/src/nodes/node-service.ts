import type { FastifyBaseLogger } from "fastify";
import {
  HavnError,
  isErrorCode,
  nodeCloseCodes,
  utf8,
  type BackendHealthReport,
  type Capabilities,
  type CoordinatorMessageBody,
  type ErrorBody,
  type Hardware,
  type JobOutput,
  type NodeCredential,
  type Receipt,
  type TaskKind,
  receiptMessage,
} from "@havn/protocol";
import type { CompleteJobInput, CompleteJobResult, Store } from "@havn/store";
import type { AuthService } from "../auth/auth-service.js";
import type { CoordinatorConfig } from "../config.js";
import type { JobEvents } from "../jobs/job-events.js";
import type { Params } from "../governance/params.js";
import { attemptErrors } from "../queue/attempt-errors.js";
import type { Batcher } from "../queue/batcher.js";
import type { Dispatcher } from "../queue/dispatcher.js";
import type { ModelCatalog } from "../router/model-catalog.js";
import type { JobTelemetry } from "../telemetry/job-telemetry.js";
import type { CoordinatorMetrics } from "../telemetry/metrics.js";
import type { SignaturePool } from "../verification/signature-pool.js";
import { verifyResult } from "../verification/verify-result.js";
import { InFlightAttempts, routable, type NodeRegistry, type NodeSession } from "./node-registry.js";
import type { Deadlines } from "./deadlines.js";
import { breakerRules, type ReputationBook } from "./reputation.js";
import { reconnectGrace } from "../staking/epochs.js";
import type { StakeService } from "../staking/stake-service.js";

export interface NodeServiceDeps {
  readonly store: Store;
  readonly registry: NodeRegistry;
  readonly dispatcher: Dispatcher;
  readonly batcher: Batcher<CompleteJobInput, CompleteJobResult>;
  readonly events: JobEvents;
  readonly catalog: ModelCatalog;
  readonly config: CoordinatorConfig;
  readonly signatures: SignaturePool;
  readonly telemetry: JobTelemetry;
  readonly auth: AuthService;
  readonly reputation: ReputationBook;
  readonly deadlines: Deadlines;
  /** Stake, quarantine and governance's pauses: whether routing may use a node, and with how many slots. */
  readonly stake: StakeService;
  /** The parameter table (how long a reconnect may take and still continue a node's presence). */
  readonly params: Params;
  readonly metrics?: CoordinatorMetrics;
  readonly log: FastifyBaseLogger;
}

/** How the coordinator reaches one node, whatever carries it (a WebSocket today, HTTP polling next). */
export interface NodeTransport {
  // Functions, not methods: a session holds them as they are (no `this`).
  readonly send: (message: CoordinatorMessageBody) => void;
  readonly close: (code: number, reason: string) => void;
  /** Drops the connection without a close handshake: for a peer that no longer answers. */
  readonly terminate: () => void;
  /** Whether the node answers a liveness probe within `timeoutMs`. */
  readonly ping: (timeoutMs: number) => Promise<boolean>;
  /** Whether the connection is still open (a join may finish after the node left). */
  readonly isOpen: () => boolean;
}

/** A node that proved it holds `key` and asks to join with what it advertises. */
export interface JoinRequest {
  readonly key: string;
  readonly name: string;
  readonly credential: NodeCredential | undefined;
  readonly capabilities: Capabilities;
  readonly hardware: Hardware;
  readonly available: boolean | undefined;
}

/** What a node says about one attempt, as `NodeService` takes it from any transport. */
export interface AttemptRef {
  readonly jobId: string;
  readonly attemptId: string;
}

/**
 * Receipt fields whose contradiction with the attempt, under the node's own signature, proves a
 * lie anyone can check: who ran what, on which input, with which output. A clock that drifts
 * (`finished_at`) or a latency above what the coordinator saw reject the result but are no proof.
 */
const provableFields: ReadonlySet<string> = new Set([
  "job_id",
  "attempt_id",
  "workflow.id",
  "workflow.version",
  "signer.key",
  "node_id",
  "model",
  "model_hash",
  "input_commitment",
  "sampling",
  "outputs_cid",
  "finish_reason",
  "tokens.prompt",
  "tokens.completion",
]);

/** Indexes of what nodes serve, shared by the nodes that serve the same (read-only; see `servedIndex`). */
const servedIndexes = new Map<string, Pick<NodeSession, "models" | "tasks">>();

/**
 * A node's models and each one's tasks, as routing reads them. A fleet's nodes mostly serve the
 * same few models: nodes that advertise the same share one index (three hash tables less each of
 * thousands of sessions holds). Bounded: at 4,096 different offers the cache starts again.
 */
function servedIndex(models: readonly { readonly name: string; readonly tasks: readonly TaskKind[] }[]) {
  // Each model's tasks de-duplicated and sorted: the key is bounded by the catalog's caps on names
  // per node and their length, whatever a node repeats in its advertisement.
  const key = JSON.stringify(models.map((m) => [m.name, [...new Set(m.tasks)].sort()]));
  let index = servedIndexes.get(key);
  if (!index) {
    if (servedIndexes.size >= 4_096) servedIndexes.clear();
    index = {
      models: new Set(models.map((m) => m.name)),
      tasks: new Map(models.map((m) => [m.name, new Set(m.tasks)])),
    };
    servedIndexes.set(key, index);
  }
  return index;
}

/** Weight of the newest sample in a node's latency average. */
const latencyEwmaAlpha = 0.2;

/**
 * Everything the coordinator does with a node, whatever transport carries it: admitting it to the
 * registry, its heartbeats (lease renewal, availability), its attempts' tokens, errors and results
 * (each result checked before it is recorded), and its loss. Transports (`gateway/`) speak the
 * wire and call this; nothing here knows a socket.
 */
export class NodeService {
  /** Jobs already given a second opinion (bounded: cleared at 10 000). */
  private readonly secondOpinions = new Map<string, NodeSession | null>();

  constructor(private readonly deps: NodeServiceDeps) {}

  /**
   * Admits a node whose key the transport has verified: its credential (an operator's node key or
   * the join token), one live connection per key, its row. Undefined — with the reason sent and the
   * transport closed — when it may not join.
   */
  async join(request: JoinRequest, transport: NodeTransport): Promise<NodeSession | undefined> {
    const { store, registry, catalog, dispatcher, config, log } = this.deps;
    const refuse = (err: HavnError, code: number, reason: string) => {
      transport.send({ type: "error", code: err.code, message: err.shortMessage, retryable: err.retryable });
      transport.close(code, reason);
      return undefined;
    };
    // The key proves who the node is; a credential proves it may join: its operator's node key,
    // or the network's join token (neither is logged).
    const joining = await this.deps.auth.nodeAccount(request.credential);
    if (!joining) {
      log.warn({ node: request.name, key: request.key }, "refused a node without a valid credential");
      return refuse(
        new HavnError(
          "NODE_CREDENTIAL_REQUIRED",
          "This coordinator admits nodes with an operator's node-scoped API key (--api-key or HAVN_API_KEY) or the network's join token (--join-token or HAVN_JOIN_TOKEN).",
        ),
        nodeCloseCodes.credentialRequired,
        "credential required",
      );
    }
    // One key, one live connection. A node that crashed and reconnects finds its old connection
    // still registered (half-open): that one cannot answer a ping and is replaced. Two live
    // processes sharing one key file would knock each other off forever, so the newcomer is
    // refused instead, with the fix.
    const existing = registry.get(request.key);
    if (existing && (await existing.ping(config.duplicateKeyProbeMs)) && registry.get(request.key) === existing) {
      log.warn(
        { node: request.name, key: request.key, connected_as: existing.name },
        "refused a second connection with a live node's key",
      );
      return refuse(
        new HavnError(
          "NODE_KEY_IN_USE",
          `Node key ${request.key} is already connected as ${existing.name}: each node needs its own key — start this one with its own --data-dir.`,
        ),
        nodeCloseCodes.keyInUse,
        "key in use",
      );
    }
    // Only the model names the catalog admits count (and are kept): a node cannot fill the
    // catalog with junk.
    const { kept, refused } = catalog.servable(request.capabilities.models);
    const capabilities = { ...request.capabilities, models: kept };
    const now = Date.now();
    const upsert = await store.nodes.upsert({
      key: request.key,
      name: request.name,
      accountId: joining.accountId,
      capabilities,
      hardware: request.hardware,
      now,
    });
    if (!upsert.ok) {
      return upsert.reason === "key_owned"
        ? refuse(
            new HavnError("NODE_KEY_OWNED", "This node key belongs to another account."),
            nodeCloseCodes.keyOwned,
            "key owned by another account",
          )
        : refuse(
            new HavnError(
              "NODE_NAME_TAKEN",
              "Another account's node (or another key without an account) holds this name; choose another --name.",
            ),
            nodeCloseCodes.nameTaken,
            "name taken",
          );
    }
    const standing = await this.deps.reputation.standingOf(request.key, now);
    // Back while its old connection still looks open (half-open: it answered no ping), it continues
    // from that connection; otherwise from when it left here.
    const presence = this.deps.reputation.presence(
      request.key,
      now,
      reconnectGrace(this.deps.params),
      registry.get(request.key),
    );
    if (!transport.isOpen()) return undefined;
    const session: NodeSession = {
      key: request.key,
      name: request.name,
      joinedWithKey: joining.keyId,
      capabilities,
      hardware: request.hardware,
      ...servedIndex(kept),
      // Slots are capped: a node advertising hundreds would hoard jobs it cannot run. Its stake
      // decides how many of them routing fills (`StakeService.assess`).
      advertisedSlots: Math.min(request.capabilities.slots, config.maxNodeSlots),
      slots: Math.min(request.capabilities.slots, config.maxNodeSlots),
      stake: 0n,
      routingTerms: { stake: 1, price: 1 },
      held: null,
      inFlight: new InFlightAttempts(),
      connectedAt: now,
      ...presence,
      lastSeenAt: now,
      lastHeartbeatAt: now,
      available: request.available ?? true,
      backend: { ok: request.available ?? true },
      latencyEwmaMs: null,
      ...standing,
      // The transport's own functions (they close over their socket, not over `this`): no
      // wrappers for each of thousands of idle sessions to hold.
      send: transport.send,
      close: transport.close,
      terminate: transport.terminate,
      ping: transport.ping,
    };
    await this.deps.stake.admit(session);
    if (!transport.isOpen()) return undefined;
    const previous = registry.add(session);
    // It did not answer a ping: a close handshake would wait for a timeout before its attempts
    // are re-queued. Drop it at once.
    previous?.terminate();
    catalog.noteAdvertised([...session.models], function* () {
      for (const s of registry.all()) yield* s.models;
    });
    session.send({ type: "welcome", node_key: session.key, heartbeat_interval_ms: config.heartbeatIntervalMs });
    if (refused.length > 0) {
      const shown = refused.slice(0, 8).join(", ") + (refused.length > 8 ? `, and ${refused.length - 8} more` : "");
      session.send({
        type: "error",
        code: "MODEL_NOT_FOUND",
        message:
          `This coordinator does not list these model names (${config.catalog.mode} catalog, at most ${config.catalog.maxModelsPerNode} a node): ${shown}.`.slice(
            0,
            1000,
          ),
        retryable: false,
      });
      log.warn(
        { node: request.name, key: request.key, refused: refused.length },
        "ignored model names the catalog does not admit",
      );
    }
    log.info(
      {
        node: session.name,
        key: session.key,
        models: [...session.models],
        slots: session.slots,
        compute_class: session.hardware.compute_class,
        available: session.available,
        stake_uhai: session.stake.toString(),
        held: session.held,
      },
      "node online",
    );
    dispatcher.notify();
    return session;
  }

  /**
   * Called for every message from a joined node, before it is handled. A job placed at admission
   * reaches its node before its row is written: what the node says about it waits for the row (in
   * arrival order, as awaits on one promise resume in order).
   */
  async heard(session: NodeSession, attemptId?: string): Promise<void> {
    session.lastSeenAt = Date.now();
    const admission = attemptId ? session.inFlight.get(attemptId)?.admission : undefined;
    if (admission) await admission;
  }

  /** A heartbeat: the leases of the attempts it still runs are renewed; it may change availability. */
  async heartbeat(
    session: NodeSession,
    beat: {
      readonly inFlight: readonly string[];
      readonly available?: boolean;
      readonly backend?: BackendHealthReport;
    },
  ): Promise<void> {
    const now = Date.now();
    session.lastHeartbeatAt = now;
    if (beat.available !== undefined) this.setAvailability(session, beat.available, beat.backend);
    const mine = beat.inFlight.filter((a) => session.inFlight.has(a));
    if (mine.length > 0) await this.deps.store.jobs.renewLeases(session.key, mine, now + this.deps.config.leaseMs, now);
  }

  /** Text (`text`) or a sign of life from a running attempt: its job is running. */
  async progress(session: NodeSession, ref: AttemptRef, text?: string): Promise<void> {
    const { events, telemetry, store } = this.deps;
    const attempt = session.inFlight.get(ref.attemptId);
    if (!attempt || attempt.spec.job_id !== ref.jobId) return; // stale: the job moved on
    // Emit before any await: the next token of this job may be handled while we wait on the
    // database, and tokens must reach streams in the order the node sent them.
    if (text !== undefined) events.emit(ref.jobId, { type: "token", attemptId: ref.attemptId, text });
    if (!attempt.running) {
      attempt.running = true;
      const now = Date.now();
      attempt.startedAt = now;
      telemetry.started(attempt.spec, session.name, attempt.admittedAt, now);
      await store.jobs.markRunning(ref.jobId, ref.attemptId, now);
    }
  }

  /** The node could not finish an attempt: it ends, and the job is retried if the error allows. */
  async failed(
    session: NodeSession,
    ref: AttemptRef,
    error: { readonly code: string; readonly message: string; readonly retryable: boolean },
  ): Promise<void> {
    const attempt = session.inFlight.get(ref.attemptId);
    if (!attempt || attempt.spec.job_id !== ref.jobId) return;
    session.inFlight.delete(ref.attemptId);
    const now = Date.now();
    const code = catalogCode(error.code);
    this.deps.telemetry.attemptEnded(attempt.spec.model, code, now - attempt.dispatchedAt);
    // An error the request caused (`REQUEST_*`: a prompt too long for this node, say) costs the
    // node nothing — unless another node then runs the job, which shows the refusal was false.
    const clientCaused = code.startsWith("REQUEST_");
    if (!clientCaused) this.attemptFailed(session, "failed", ref.jobId, now);
    // A node's word that a job cannot succeed is checked once against another node's before the
    // client hears it: a hostile node would otherwise fail every job it is given.
    const secondOpinion =
      !error.retryable &&
      this.secondOpinion(session, attempt.spec.job_id, attempt.spec.model, clientCaused ? session : null);
    await this.deps.dispatcher.endAttempt(
      {
        jobId: ref.jobId,
        attemptId: ref.attemptId,
        error: { code, message: error.message, retryable: error.retryable },
        retry: error.retryable || secondOpinion,
        now,
      },
      session.name,
    );
  }

  /**
   * A result: checked against the attempt (every receipt field, the output's CID, the signature),
   * then recorded — output, receipt, log entry, charge — in the next completion batch. A result
   * that fails the check ends the attempt (the job is retried); the reason goes to the node.
   */
  async result(
    session: NodeSession,
    ref: AttemptRef,
    result: { readonly output: JobOutput; readonly receipt: Receipt; readonly node_signature: string },
  ): Promise<void> {
    const { dispatcher, batcher, events, telemetry, log } = this.deps;
    const sendError = (err: HavnError) =>
      session.send({
        type: "error",
        job_id: ref.jobId,
        code: err.code,
        message: err.shortMessage,
        retryable: err.retryable,
      });
    const attempt = session.inFlight.get(ref.attemptId);
    if (!attempt || attempt.spec.job_id !== ref.jobId) {
      sendError(new HavnError("NODE_LEASE_CONFLICT", "This attempt is no longer leased to this node."));
      return;
    }
    session.inFlight.delete(ref.attemptId);
    const now = Date.now();
    const observedMs = now - attempt.dispatchedAt;
    dispatcher.capacityFreed(session);
    const problem = await verifyResult(
      result,
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
      log.warn({ node: session.name, job: ref.jobId, code: problem.code, err: problem.message }, "result rejected");
      telemetry.attemptEnded(attempt.spec.model, problem.code, observedMs);
      this.attemptFailed(session, "invalid", ref.jobId, now);
      sendError(problem);
      // A receipt its own key signed that contradicts the attempt is proof anyone can check: the
      // node is slashed. (A receipt whose signature fails proves nothing about who sent it.)
      if (problem.code === "RECEIPT_INVALID" && provableFields.has(String(problem.context.Field)))
        void this.slashSignedLie(session, ref.jobId, result, problem);
      await dispatcher.endAttempt(
        { jobId: ref.jobId, attemptId: ref.attemptId, error: problem.toBody(), retry: true, now },
        session.name,
      );
      return;
    }
    telemetry.attemptEnded(attempt.spec.model, "completed", observedMs, result.output.usage.completion_tokens);
    // Measured performance counts only results that passed the check: a refused result's
    // (tiny) latency must not make its node look fast.
    session.latencyEwmaMs =
      session.latencyEwmaMs === null
        ? observedMs
        : session.latencyEwmaMs + latencyEwmaAlpha * (observedMs - session.latencyEwmaMs);
    session.failures = 0;
    session.trips = 0;
    session.breakerUntil = 0;
    this.deps.deadlines.observe(attempt.spec.model, attempt, now, result.output.usage.completion_tokens);
    const outputBytes = utf8(result.output.text);
    this.deps.reputation.completed(session, attempt.spec.model, ref.jobId, observedMs, outputBytes.length);
    const recorded = await batcher.add({
      jobId: ref.jobId,
      attemptId: ref.attemptId,
      nodeKey: session.key,
      output: result.output,
      outputCid: result.receipt.outputs_cid,
      outputBytes,
      receipt: result.receipt,
      nodeSignature: result.node_signature,
      computeClass: session.hardware.compute_class,
      now,
    });
    if (recorded.ok) {
      events.emitTransition(recorded.job, ref.attemptId, session.name);
      this.refutedRefusal(ref.jobId, now);
    } else sendError(new HavnError("NODE_LEASE_CONFLICT", "The job was finished or re-leased before this result."));
  }

  /** The node is gone (its connection ended): its attempts go back to the queue. */
  async lost(session: NodeSession): Promise<void> {
    const { registry, store, dispatcher, log } = this.deps;
    const current = registry.remove(session);
    const now = Date.now();
    // A connection already replaced by the node's next one did not end its presence.
    if (current) this.deps.reputation.departed(session, now);
    else this.deps.reputation.remember(session, now);
    if (current) await store.nodes.setOnline(session.key, false, now);
    const attempts = [...session.inFlight.entries()];
    session.inFlight.clear();
    for (const [attemptId, attempt] of attempts) {
      // An attempt whose admission row was never written has nothing to end.
      if (attempt.admission && !(await attempt.admission)) continue;
      this.deps.reputation.record(session, "failed", attempt.spec.job_id, now);
      await dispatcher.endAttempt(
        { jobId: attempt.spec.job_id, attemptId, error: attemptErrors.nodeLost, retry: true, now },
        session.name,
      );
    }
    log.info({ node: session.name, requeued: attempts.length }, "node offline");
    dispatcher.notify();
  }

  /**
   * Whether a job a node called hopeless gets one more attempt elsewhere: once per job, when
   * another available node serves its model.
   */
  private secondOpinion(session: NodeSession, jobId: string, model: string, refuser: NodeSession | null): boolean {
    if (this.secondOpinions.has(jobId)) return false;
    if (![...this.deps.registry.serving(model)].some((s) => s !== session && routable(s))) return false;
    // Oldest first: at 10 000 the oldest half goes (a job is long settled by then).
    if (this.secondOpinions.size >= 10_000)
      for (const key of [...this.secondOpinions.keys()].slice(0, 5_000)) this.secondOpinions.delete(key);
    this.secondOpinions.set(jobId, refuser);
    return true;
  }

  /** A job another node refused as the client's fault has run here: the refusal was false. */
  private refutedRefusal(jobId: string, now: number): void {
    const refuser = this.secondOpinions.get(jobId);
    if (!refuser) return;
    this.secondOpinions.set(jobId, null);
    this.attemptFailed(refuser, "failed", jobId, now);
  }

  /** An attempt ran past its time on this node (the sweeper ended it): a timeout, and a failure. */
  timedOut(session: NodeSession, jobId: string, now = Date.now()): void {
    this.attemptFailed(session, "timeout", jobId, now);
  }

  /**
   * An attempt failed on a node, or its result was refused: its reputation pays for it, and after
   * `breakerRules.failures` in a row its breaker opens — out of routing for a while, longer each
   * trip; then on probation until a result is accepted.
   */
  private async slashSignedLie(
    session: NodeSession,
    jobId: string,
    result: { readonly receipt: Receipt; readonly node_signature: string },
    problem: HavnError,
  ): Promise<void> {
    try {
      const signed = await this.deps.signatures.verify({
        publicKey: session.key,
        message: receiptMessage(result.receipt),
        signature: result.node_signature,
      });
      if (!signed) return;
      const job = await this.deps.store.jobs.get(jobId);
      await this.deps.stake.slash(
        `node:${session.key}`,
        "invalid_result",
        jobId,
        job?.money?.payer ?? null,
        Date.now(),
        {
          receipt: result.receipt,
          node_signature: result.node_signature,
          problem: problem.context,
        },
      );
    } catch (err) {
      this.deps.log.error({ err, node: session.name, job: jobId }, "slashing a signed lie failed");
    }
  }

  private attemptFailed(session: NodeSession, cause: "failed" | "invalid" | "timeout", jobId: string, now: number) {
    this.deps.reputation.record(session, cause, jobId, now);
    session.failures++;
    if (session.failures < breakerRules.failures) return;
    session.failures = 0;
    session.trips++;
    const openMs = Math.min(breakerRules.maxMs, breakerRules.openMs * 2 ** (session.trips - 1));
    session.breakerUntil = now + openMs;
    this.deps.metrics?.breakerTrips.inc();
    this.deps.log.warn(
      { node: session.name, key: session.key, open_ms: openMs, reputation: Math.round(session.reputation) },
      "node taken out of routing: its circuit breaker tripped",
    );
    // A job only this node could run may now go elsewhere, or wait.
    this.deps.dispatcher.notify();
  }

  /**
   * An operator revoked the API key these nodes joined with: they are closed (for good), their
   * attempts re-queued as for any lost node. Returns how many were closed.
   */
  closeJoinedWith(keyId: string): number {
    const closing = this.deps.registry.all().filter((s) => s.joinedWithKey === keyId);
    const err = new HavnError(
      "NODE_CREDENTIAL_REQUIRED",
      "The API key this node joined with was revoked: start it with another node-scoped key.",
    );
    for (const s of closing) {
      s.send({ type: "error", code: err.code, message: err.shortMessage, retryable: false });
      s.close(nodeCloseCodes.credentialRequired, "credential revoked");
      this.deps.log.warn({ node: s.name, key: s.key, api_key: keyId }, "closed a node whose API key was revoked");
    }
    return closing.length;
  }

  /**
   * A node says whether it takes jobs (its backend passes its health checks or not). An
   * unavailable node gets no jobs and serves no model until it says it is available again.
   */
  private setAvailability(session: NodeSession, available: boolean, backend: BackendHealthReport | undefined) {
    const before = session.available;
    session.available = available;
    const report = backend ?? { ok: available };
    // The same report every few seconds from each of thousands of nodes: kept, not replaced (a new
    // object held by a long-lived session outlives the young generation for nothing).
    const was = session.backend;
    if (was.ok !== report.ok || was.code !== report.code || was.reason !== report.reason) session.backend = report;
    if (before === available) return;
    this.deps.registry.update(session);
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
