import { randomUUID } from "node:crypto";
import cors from "@fastify/cors";
import helmet from "@fastify/helmet";
import websocket from "@fastify/websocket";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import {
  cosignedReceipt,
  cosignMessage,
  logEntryHash,
  requestIdPattern,
  settlementEntryHash,
  signSettlement,
} from "@havn/protocol";
import { loadOrCreateKeyFile } from "@havn/protocol/local";
import {
  isTerminal,
  openStore,
  type AdmissionOutcome,
  type CompleteJobInput,
  type CompleteJobResult,
  type NewJob,
  type ReceiptSealer,
  type Store,
} from "@havn/store";
import { registerAuthRoutes } from "./api/auth/routes.js";
import { frameworkErrorOptions, installErrorHandling } from "./api/errors.js";
import { installAuthAndLimits } from "./api/guards.js";
import { registerJobRoutes } from "./api/jobs/routes.js";
import { registerLedgerRoutes } from "./api/ledger/routes.js";
import { registerStakeRoutes } from "./api/stake/routes.js";
import { registerLogRoutes } from "./api/log/routes.js";
import { registerWorkflowRoutes } from "./api/workflows/routes.js";
import { WorkflowService } from "./workflows/workflow-service.js";
import { GovernanceService } from "./governance/governance-service.js";
import { Params } from "./governance/params.js";
import { PoolService } from "./ledger/pool.js";
import { EconomyLoop } from "./staking/economy-loop.js";
import { EpochKeeper } from "./staking/epochs.js";
import { StakeService } from "./staking/stake-service.js";
import { LogSealer } from "./log/log-sealer.js";
import { LedgerService } from "./ledger/ledger-service.js";
import { Pricing } from "./ledger/pricing.js";
import { Settlement } from "./ledger/settlement.js";
import { Wallets } from "./ledger/wallets.js";
import { registerOpenAIRoutes } from "./api/openai/routes.js";
import { registerOperatorRoutes } from "./api/operators/routes.js";
import { AuthService, devAccount } from "./auth/auth-service.js";
import { compileConfig, type CoordinatorConfig, type CoordinatorOptions } from "./config.js";
import { closeCodes, NodeGateway, releaseUpgrade } from "./gateway/node-gateway.js";
import { nodeState, NodeRegistry } from "./nodes/node-registry.js";
import { NodeService } from "./nodes/node-service.js";
import { Deadlines } from "./nodes/deadlines.js";
import { ReputationBook } from "./nodes/reputation.js";
import { JobEvents } from "./jobs/job-events.js";
import { JobService } from "./jobs/job-service.js";
import { Batcher } from "./queue/batcher.js";
import { Dispatcher } from "./queue/dispatcher.js";
import { Sweeper } from "./queue/sweeper.js";
import { ModelCatalog } from "./router/model-catalog.js";
import { Router } from "./router/router.js";
import { JobTelemetry } from "./telemetry/job-telemetry.js";
import { CoordinatorMetrics, instrumentStore } from "./telemetry/metrics.js";
import { createSignaturePool } from "./verification/signature-pool.js";

export const coordinatorVersion = "0.1.0";

/** How long a job-ended notification waits for this replica's own answer before reading back, in ms. */
const replicaReadBackDelayMs = 100;

export interface BuildAppOptions extends CoordinatorOptions {
  /** Use this store instead of opening one from `databaseUrl` / `dataDir` (it is not closed). */
  readonly store?: Store;
  /**
   * Log through this pino logger (its lines get `name: "coordinator"`). Default: JSON lines on
   * stderr at `logLevel`.
   */
  readonly logger?: Logger;
  /** An admin account to create if the coordinator has none yet (`HAVN_ADMIN_EMAIL` and its password). */
  readonly bootstrapAdmin?: { readonly email: string; readonly password: string };
  /**
   * Where HavnAI's parameter names (`REWARD_BASE_HAI`, …) are read at the first start. Default
   * `process.env`.
   */
  readonly env?: NodeJS.ProcessEnv;
}

export interface CoordinatorApp {
  readonly app: FastifyInstance;
  readonly config: CoordinatorConfig;
  readonly store: Store;
  /** The coordinator's public key: it co-signs every receipt. */
  readonly publicKey: string;
  readonly registry: NodeRegistry;
  readonly jobs: JobService;
  readonly metrics: CoordinatorMetrics;
  readonly auth: AuthService;
  /** Every route the coordinator registered, with who may call it: the access-rule test walks them. */
  readonly routes: readonly { readonly method: string; readonly url: string; readonly auth: string | undefined }[];
  /** Runs retention now (it also runs each minute): see `Sweeper.retain`. */
  retain(): Promise<{ deleted: number; forgotten: number; purged: number }>;
  close(): Promise<void>;
}

function makeLogger(config: CoordinatorConfig, given: Logger | undefined): Logger {
  if (given) return given.child({ name: "coordinator" });
  if (config.logLevel === "silent") return pino({ level: "silent" });
  return pino({ level: config.logLevel, name: "coordinator" }, pino.destination({ dest: 2, sync: false }));
}

/** Wires the coordinator without listening; `main.ts` (or the CLI) listens. */
export async function buildApp(options: BuildAppOptions = {}): Promise<CoordinatorApp> {
  const { store: givenStore, logger: givenLogger, bootstrapAdmin, env: _env, ...rest } = options;
  const config = compileConfig(rest);
  const logger = makeLogger(config, givenLogger);
  const keys = loadOrCreateKeyFile(config.keyPath);
  const rawStore = givenStore ?? (await openStore({ databaseUrl: config.databaseUrl, sqlitePath: config.sqlitePath }));

  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    // One line per job (with its id) instead of two per request: request lines drown the
    // correlation that matters and cost ~10% of throughput.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "request_id" }),
    return503OnClosing: true,
    ...frameworkErrorOptions,
    // Behind a reverse proxy, the client's address comes from X-Forwarded-For (rate limits).
    trustProxy: config.trustProxy,
    // A request must arrive (headers and body) within this time: slow senders hold sockets.
    requestTimeout: config.requestReceiveTimeoutMs,
    // A client's x-request-id is kept (and echoed, and logged with its job) when it looks like a
    // request id; otherwise the request gets an id of our own.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && requestIdPattern.test(given) ? given : randomUUID();
    },
  });
  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  const registered: { method: string; url: string; auth: string | undefined }[] = [];
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat())
      if (method !== "HEAD") registered.push({ method, url: route.url, auth: route.config?.auth });
  });
  installErrorHandling(app);
  await app.register(websocket, { options: { maxPayload: config.maxFrameBytes } });
  // Security headers; the docs page runs only scripts served from here (Swagger UI's bundle).
  await app.register(helmet, { global: true, hsts: false });
  if (config.corsOrigins.length > 0)
    await app.register(cors, {
      origin: [...config.corsOrigins],
      allowedHeaders: ["authorization", "content-type", "idempotency-key", "x-request-id"],
      exposedHeaders: ["x-request-id", "x-havn-job-id", "idempotent-replayed", "retry-after"],
      methods: ["GET", "POST", "DELETE"],
      maxAge: 600,
    });
  const auth = new AuthService(rawStore, config);
  await auth.init(bootstrapAdmin);
  await installAuthAndLimits(app, auth, config);

  const registry = new NodeRegistry();
  let quarantined = () => 0;
  const metrics = new CoordinatorMetrics({
    store: rawStore,
    nodes: () =>
      registry.all().map((s) => ({ state: nodeState(s), computeClass: s.hardware.compute_class, held: s.held })),
    quarantined: () => quarantined(),
  });
  const store = instrumentStore(rawStore, metrics.storeOperation);
  const telemetry = new JobTelemetry(app.log, metrics);
  const events = new JobEvents(
    (err, jobId) => app.log.error({ err, job: jobId }, "job event listener failed"),
    telemetry,
  );
  const catalog = new ModelCatalog(config.registryPath, config.catalog);
  // Reputation is a constant until the ledger keeps it: every node starts equal.
  const router = new Router({ exploration: config.routerExploration });
  const dispatcher = new Dispatcher(store, registry, router, events, telemetry, app.log, {
    leaseMs: config.leaseMs,
    batchSize: config.dispatchBatchSize,
  });
  const signatures = createSignaturePool(config.signatureWorkers);
  // Receipts are linked into the log on the event loop (a hash each) and co-signed on the
  // signature workers, beside the verification of the node's signature.
  const sealer: ReceiptSealer = {
    link: (prevHash, input) => logEntryHash(prevHash, input.receipt, input.nodeSignature),
    seal: (requests) =>
      Promise.all(
        requests.map(async ({ log, input }) =>
          cosignedReceipt(
            input.receipt,
            input.nodeSignature,
            log,
            keys.publicKey,
            await signatures.sign({
              message: cosignMessage(input.receipt, input.nodeSignature, log),
              secretKey: keys.secretKey,
            }),
          ),
        ),
      ),
  };
  // One transaction — and one lock of the execution log's head — per batch of results.
  const batcher = new Batcher<CompleteJobInput, CompleteJobResult>((items) => {
    metrics.completionBatch.observe(items.length);
    return store.jobs.complete(items, sealer);
  }, config.completionBatchSize);
  const admissions = new Batcher<NewJob, AdmissionOutcome>((items) => {
    metrics.admissionBatch.observe(items.length);
    return store.jobs.admit(items);
  }, config.dispatchBatchSize);
  // Governance's parameter table: configuration's values at the first start, proposals' after.
  const params = new Params(store, app.log);
  await params.init(config, options.env ?? process.env);
  const wallets = new Wallets(store);
  // Stake decides which nodes routing may use, and with how many slots.
  const stake = new StakeService({
    store,
    params,
    registry,
    wallets,
    config,
    log: app.log,
    notify: () => dispatcher.notify(),
    onSlash: (offence, amount) => {
      metrics.slashes.inc({ offence });
      metrics.slashed.inc({ offence }, Number(amount));
    },
  });
  quarantined = () => stake.quarantined.size;
  // Everything done with a node, whatever carries it; the gateway only speaks the WebSocket wire.
  const reputation = new ReputationBook(store, app.log, (cause) => metrics.reputationEvents.inc({ cause }));
  const deadlines = new Deadlines(config);
  const nodes = new NodeService({
    stake,
    params,
    reputation,
    deadlines,
    metrics,
    auth,
    store,
    registry,
    dispatcher,
    batcher,
    events,
    catalog,
    config,
    signatures,
    telemetry,
    log: app.log,
  });
  const gateway = new NodeGateway({ nodes, config, keys, metrics, log: app.log });
  // The money (absent on a free network): prices and payers for admission, money in and out.
  const pricing = config.ledger.enabled
    ? new Pricing(store, catalog, registry, config, () => params.terms())
    : undefined;
  const ledger = new LedgerService(store, wallets, config, app.log);
  if (config.ledger.enabled) {
    await ledger.start(config.mode === "dev" ? devAccount.id : undefined);
    auth.onWalletBound((accountId, wallet) => ledger.claim(accountId, wallet));
  }
  const workflows = new WorkflowService(store, wallets, config, app.log, () => params.terms());
  const jobs = new JobService(
    store,
    admissions,
    dispatcher,
    events,
    catalog,
    registry,
    telemetry,
    config,
    pricing && { pricing, wallets },
    workflows,
  );
  // The execution log, checkable: this replica's key joins the key set; periods get sealed.
  const logSealer = new LogSealer(store, keys, config, app.log);
  await logSealer.register();
  const settlement = config.ledger.enabled
    ? new Settlement(
        store,
        catalog,
        config,
        app.log,
        (what, amount) => telemetry.settlement(what, amount),
        workflows,
        {
          link: settlementEntryHash,
          seal: (record, log) => signSettlement(record, log, keys),
        },
        () => params.terms(),
        (nodeKey, operator) => stake.payee(nodeKey, operator),
      )
    : undefined;
  const governance = new GovernanceService({
    store,
    params,
    stake,
    registry,
    catalog,
    workflows,
    config,
    log: app.log,
  });
  await governance.applyHolds();
  for (const row of await store.nodes.list()) if (row.quarantinedAt !== null) stake.quarantined.add(row.key);
  const epochs = new EpochKeeper({
    store,
    registry,
    params,
    stake,
    reputation,
    log: app.log,
    onQuarantine: (change) => metrics.quarantineEvents.inc({ change }),
  });
  const pool = config.ledger.enabled ? new PoolService({ store, params, registry, stake, log: app.log }) : undefined;
  const economy = new EconomyLoop({ stake, governance, epochs, pool, log: app.log, tickMs: config.sweepIntervalMs });
  const sweeper = new Sweeper(
    store,
    registry,
    dispatcher,
    events,
    config,
    app.log,
    (keyId) => nodes.closeJoinedWith(keyId),
    settlement,
    logSealer,
    (session, jobId, now) => nodes.timedOut(session, jobId, now),
    (attempt, now) => deadlines.overdue(attempt, now),
  );

  // Names nodes advertised before, as the catalog admits them now (a junk name of an earlier
  // version, or one a curated catalog no longer admits, does not come back).
  for (const node of await store.nodes.list())
    catalog.noteAdvertised(catalog.servable(node.capabilities.models).kept.map((m) => m.name));

  // Nodes prove their key in the hello and their right to join with its credential.
  // Nodes behind one address (a NAT) reconnect together after a restart: only the per-address
  // ceiling applies here; each hello is signed and carries its credential.
  // No security headers on the upgrade: a WebSocket is no page, and the headers a response
  // carries stay with each of thousands of idle connections (~2 KB a node).
  app.get(
    "/nodes/connect",
    { websocket: true, helmet: false, config: { auth: "public", rateLimit: false } },
    (socket, request) => {
      releaseUpgrade(socket, request.raw);
      gateway.accept(socket);
    },
  );
  auth.onKeyRevoked((keyId) => nodes.closeJoinedWith(keyId));
  // Wallet sign-in on a loopback coordinator names the address it listens on (see `publicUrl`).
  app.addHook("onListen", async () => {
    const address = app.server.address();
    if (address && typeof address === "object") auth.listeningOn({ host: address.address, port: address.port });
  });
  registerOpenAIRoutes(app, { jobs, events, catalog, registry, config });
  registerJobRoutes(app, { jobs, store, auth });
  registerLogRoutes(app, { store, logSealer });
  registerWorkflowRoutes(app, { workflows, store, auth });
  registerAuthRoutes(app, { auth, config });
  registerLedgerRoutes(app, { ledger, settlement, store, auth });
  registerStakeRoutes(app, { stake, governance, params, pool, registry, store, auth, config });
  registerOperatorRoutes(app, {
    store,
    registry,
    metrics,
    coordinatorKey: keys.publicKey,
    version: coordinatorVersion,
  });

  // Replicas on one PostgreSQL hear each other at once: queued work wakes the dispatcher, and a
  // job that ended on another replica's node answers whoever waits for it here.
  const stopWatching = await store.watch(
    (change) => {
      if (change.kind === "queued") return dispatcher.notify();
      // Most jobs end on this replica and their waiters are answered by our own event; read
      // back only jobs still waited on a moment later — those ended on another replica. Jobs no
      // one here waits on (another replica's, or ours already answered) need no timer at all.
      if (!events.hasListeners(change.jobId)) return;
      setTimeout(() => {
        if (!events.hasListeners(change.jobId)) return;
        store.jobs.get(change.jobId).then(
          (job) => {
            if (job && isTerminal(job.status)) events.announceEnded(job);
          },
          (err: unknown) => app.log.warn({ err, job: change.jobId }, "reading back an ended job failed"),
        );
      }, replicaReadBackDelayMs).unref();
    },
    (err) => app.log.warn({ err }, "database notifications interrupted; reconnecting"),
  );

  app.addHook("onReady", async () => {
    sweeper.start();
    economy.start();
  });
  app.addHook("preClose", async () => {
    sweeper.stop();
    economy.stop();
    events.shutdown();
    for (const node of registry.all()) node.close(closeCodes.shuttingDown, "coordinator shutting down");
  });
  app.addHook("onClose", async () => {
    await stopWatching();
    await admissions.drain();
    await batcher.drain();
    await reputation.flush();
    await signatures.close();
    if (!givenStore) await rawStore.close();
  });

  return {
    app,
    config,
    store: rawStore,
    publicKey: keys.publicKey,
    registry,
    jobs,
    metrics,
    auth,
    routes: registered,
    retain: () => sweeper.retain(),
    close: () => app.close(),
  };
}
