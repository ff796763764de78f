import type { FastifyInstance } from "fastify";
import type { NodeRow, Store } from "@havn/store";
import { HavnError } from "@havn/protocol";
import { nodeState, trusted, type NodeRegistry, type NodeSession } from "../../nodes/node-registry.js";
import { reputationRules, storedScore } from "../../nodes/reputation.js";
import type { CoordinatorMetrics } from "../../telemetry/metrics.js";
import { openApiDocument } from "../openapi.js";
import { registerRoute, routes } from "../route-table.js";
import { registerDocsPage } from "./docs-page.js";

/** How long `/health` waits for the database before calling it failing, in ms. */
const storeCheckTimeoutMs = 2_000;

export interface OperatorRouteDeps {
  readonly store: Store;
  readonly registry: NodeRegistry;
  readonly metrics: CoordinatorMetrics;
  readonly coordinatorKey: string;
  readonly version: string;
}

class StoreTimeout extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new StoreTimeout(`no answer within ${ms} ms`)), ms);
    }),
  ]);
}

/** A node as its operator sees it: connected (with live state) or known from the database. */
function nodeView(row: NodeRow | undefined, session: NodeSession | undefined) {
  const s = session;
  const capabilities = s?.capabilities ?? row!.capabilities;
  const hardware = s?.hardware ?? row!.hardware;
  return {
    key: s?.key ?? row!.key,
    name: s?.name ?? row!.name,
    state: s ? nodeState(s) : ("offline" as const),
    backend: s ? s.backend : null,
    models: capabilities.models.map((m) => m.name),
    capabilities,
    hardware,
    compute_class: hardware.compute_class,
    // What routing uses: the advertised slots, capped (`maxNodeSlots`).
    slots: s?.slots ?? capabilities.slots,
    slots_in_use: s?.inFlight.size ?? 0,
    latency_ewma_ms: s?.latencyEwmaMs === null || s === undefined ? null : Math.round(s.latencyEwmaMs),
    connected_at: s?.connectedAt ?? null,
    last_heartbeat_at: s?.lastHeartbeatAt ?? null,
    first_seen_at: row?.firstSeenAt ?? s!.connectedAt,
    last_seen_at: s?.lastSeenAt ?? row!.lastSeenAt,
    stake_uhai: s ? s.stake.toString() : null,
    held: s?.held ?? null,
  };
}

/**
 * What an operator reads: `/health` (for load balancers and people), `/v1/nodes`, `/metrics`
 * (Prometheus), `/openapi.json` and `/docs`.
 */
export function registerOperatorRoutes(app: FastifyInstance, deps: OperatorRouteDeps): void {
  const { store, registry, metrics } = deps;

  /** A node's reputation as the leaderboard shows it: live for a connected node, stored otherwise. */
  const reputationView = (row: NodeRow | undefined, session: NodeSession | undefined, now: number) => {
    const score = session ? session.reputation : storedScore(row, now);
    return {
      node_key: session?.key ?? row!.key,
      name: session?.name ?? row!.name,
      score: Math.round(score * 10) / 10,
      online: session !== undefined,
      routed: session !== undefined && trusted(session, reputationRules.routingFloor, now),
      breaker_open_until: session && session.breakerUntil > now ? session.breakerUntil : null,
    };
  };

  registerRoute(app, routes.reputation, async () => {
    const now = Date.now();
    const rows = await store.nodes.list();
    const data = rows.map((row) => reputationView(row, registry.get(row.key), now));
    data.sort((a, b) => b.score - a.score || a.name.localeCompare(b.name));
    return { object: "list" as const, routing_floor: reputationRules.routingFloor, data };
  });

  const noNode = (ref: string) =>
    new HavnError("NODE_NOT_FOUND", "No node with this key or name.", { context: { Node: ref.slice(0, 80) } });
  registerRoute<{ node: string }>(
    app,
    routes.nodeReputation,
    async (_request, _reply, { node: ref }) => {
      const row = (await store.nodes.get(ref)) ?? (await store.nodes.list()).find((n) => n.name === ref);
      if (!row) throw noNode(ref);
      const events = await store.nodes.reputationEvents(row.key, 100);
      return {
        object: "reputation" as const,
        node: reputationView(row, registry.get(row.key), Date.now()),
        events: events.map((e) => ({
          delta: e.delta,
          score: e.score,
          cause: e.cause,
          job_id: e.jobId,
          count: e.count,
          at: e.at,
        })),
      };
    },
    (raw) => noNode(String(raw.node)),
  );

  /**
   * `ok`, `degraded` or `failing`, with a sentence for each reason. Degraded: the coordinator
   * works, but some jobs cannot run now (no node, queued models nobody serves, nodes whose backend
   * is down). Failing: it cannot work at all (its database does not answer) — 503, so a load
   * balancer takes it out.
   */
  registerRoute(app, routes.health, async (_request, reply) => {
    const reasons: string[] = [];
    const t0 = performance.now();
    let storeCheck: { ok: boolean; latency_ms?: number; error?: string } = { ok: false };
    // A database that errors is failing; one that is only slow (a busy pool) is degraded: a load
    // balancer should not take out a replica for being busy.
    let slow = false;
    const trouble = (err: unknown) => {
      slow = err instanceof StoreTimeout;
      storeCheck = { ok: slow, error: (err as Error).message };
      reasons.push(
        slow
          ? `the ${store.kind} database took over ${storeCheckTimeoutMs} ms to answer`
          : `the ${store.kind} database does not answer (${(err as Error).message})`,
      );
    };
    try {
      await withTimeout(store.ping(), storeCheckTimeoutMs);
      storeCheck = { ok: true, latency_ms: Math.round((performance.now() - t0) * 100) / 100 };
    } catch (err) {
      trouble(err);
    }
    const sessions = registry.all();
    const unavailable = sessions.filter((s) => !s.available);
    if (sessions.length === 0) reasons.push("no node is connected: new jobs wait in the queue until one connects");
    // The node's own reason (it may name its backend's address) is for operators: GET /v1/nodes.
    for (const s of unavailable)
      reasons.push(
        `node ${s.name} is unavailable: its backend fails its health checks (${s.backend.code ?? "BACKEND_UNAVAILABLE"})`,
      );
    let queued = 0;
    const unserved: string[] = [];
    let jobs: Record<string, number> | null = null;
    let log: { seq: number; entry_hash: string | null } | null = null;
    if (storeCheck.ok && !slow) {
      try {
        const [byModel, counts, head] = await withTimeout(
          Promise.all([store.jobs.queuedByModel(), store.jobs.countByStatus(), store.log.head()]),
          storeCheckTimeoutMs,
        );
        for (const [model, n] of Object.entries(byModel)) {
          queued += n;
          if (!registry.serves(model)) {
            unserved.push(model);
            reasons.push(`${n} job${n === 1 ? "" : "s"} queued for ${model}, which no available node serves`);
          }
        }
        jobs = counts;
        log = head ? { seq: head.seq, entry_hash: head.entryHash } : { seq: 0, entry_hash: null };
      } catch (err) {
        trouble(err);
      }
    }
    const status = !storeCheck.ok ? "failing" : reasons.length > 0 ? "degraded" : "ok";
    return reply.code(status === "failing" ? 503 : 200).send({
      status,
      reasons,
      version: deps.version,
      coordinator_key: deps.coordinatorKey,
      store: store.kind,
      checks: {
        store: storeCheck,
        nodes: {
          online: sessions.length,
          available: sessions.length - unavailable.length,
          unavailable: unavailable.length,
        },
        queue: { queued, unserved_models: unserved },
      },
      nodes_online: sessions.length,
      free_slots: registry.freeSlots(),
      jobs,
      log,
    });
  });

  registerRoute(app, routes.nodes, async () => {
    const rows = await store.nodes.list();
    const byKey = new Map(rows.map((r) => [r.key, r]));
    const connected = registry.all();
    const online = new Set(connected.map((s) => s.key));
    return {
      object: "list" as const,
      data: [
        ...connected.map((s) => nodeView(byKey.get(s.key), s)),
        ...rows.filter((r) => !online.has(r.key)).map((r) => nodeView(r, undefined)),
      ],
    };
  });

  registerRoute(app, routes.metrics, async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );

  const document = JSON.stringify(openApiDocument(deps.version));
  registerRoute(app, routes.openapi, async (_request, reply) => reply.type("application/json").send(document));
  registerDocsPage(app);
}
