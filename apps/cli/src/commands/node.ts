import { basename, join } from "node:path";
import { BuiltinBackend, OpenAIBackend, type Backend } from "@havn/engine";
import { NodeAgent, NodeMetrics, serveMetrics } from "@havn/node-agent";
import { HavnError } from "@havn/protocol";
import { listenError } from "@havn/protocol/local";
import type { Logger } from "pino";
import { nodeKeyFromLogin } from "../credentials-file.js";
import { resolveDataDir } from "../data-dir.js";
import { createLogger } from "../logging.js";
import { onShutdown, reportError, type LogOptions } from "../options.js";
import { Progress } from "../progress.js";
import { envSecret } from "../secrets.js";

export interface NodeCommandOptions extends LogOptions {
  readonly coordinator: string;
  readonly backend: "builtin" | "openai";
  readonly backendUrl?: string | undefined;
  readonly backendApiKey?: string | undefined;
  /** The operator's node-scoped API key for the coordinator. */
  readonly apiKey?: string | undefined;
  /** The network's join token. */
  readonly joinToken?: string | undefined;
  readonly model?: string | undefined;
  readonly modelFile?: string | undefined;
  readonly name?: string | undefined;
  readonly dataDir?: string | undefined;
  readonly slots?: number | undefined;
  readonly threads?: number | undefined;
  readonly metricsPort?: number | undefined;
  readonly metricsHost?: string | undefined;
}

/** The backend a node runs jobs on; files it writes (generated models, hash caches) go in `dataDir`. */
export function makeBackend(
  o: Omit<NodeCommandOptions, keyof LogOptions | "coordinator" | "dataDir">,
  dataDir: string,
  log: Logger,
): Backend {
  if (o.backend === "openai") {
    if (!o.backendUrl)
      throw new HavnError(
        "CONFIG_INVALID",
        "--backend openai needs --backend-url: the server's API base, e.g. http://127.0.0.1:11434/v1 (Ollama).",
      );
    return new OpenAIBackend({
      baseUrl: o.backendUrl,
      apiKey: o.backendApiKey,
      models: o.model ? [o.model] : undefined,
      slots: o.slots,
    });
  }
  if (o.backendUrl)
    throw new HavnError(
      "CONFIG_INVALID",
      "--backend-url is for --backend openai; the builtin backend runs in-process.",
    );
  const progress = o.modelFile ? new Progress(log, basename(o.modelFile)) : undefined;
  return new BuiltinBackend({
    modelFile: o.modelFile,
    modelName: o.model,
    modelDir: join(dataDir, "models"),
    cacheDir: dataDir,
    slots: o.slots,
    threads: o.threads,
    onProgress: progress && ((stage, fraction) => progress.update(stage === "hash" ? "hashing" : "loading", fraction)),
  });
}

/**
 * Starts a node agent: checks its backend (a wrong URL or model file fails here, with the fix),
 * then connects. Resolves once the coordinator has welcomed it; rejects if it refuses the node
 * for good. `onFatal` runs if it is refused later.
 */
export async function startNode(
  o: Omit<NodeCommandOptions, keyof LogOptions | "dataDir"> & { dataDir: string },
  log: Logger,
  onFatal: (err: HavnError) => void,
  metrics?: NodeMetrics,
): Promise<{ agent: NodeAgent; backend: Backend }> {
  const backend = makeBackend(o, o.dataDir, log);
  // The operator's key (flag, HAVN_API_KEY, or one made with what `havn login` saved) or the join token.
  const joinToken = o.joinToken || envSecret("HAVN_JOIN_TOKEN");
  let apiKey = o.apiKey;
  if (!apiKey && !joinToken) {
    const fromLogin = await nodeKeyFromLogin(o.coordinator, o.dataDir).catch((err: unknown) => {
      log.warn({ err }, "could not make a node key with the saved login; run `havn login` again");
      return undefined;
    });
    if (fromLogin?.made)
      log.info({ key: fromLogin.made }, "made a node-scoped API key with the saved login, kept in the data dir");
    apiKey = fromLogin?.key;
  }
  const agent = new NodeAgent({
    coordinatorUrl: o.coordinator,
    backend,
    keyPath: join(o.dataDir, "node.key"),
    name: o.name,
    credential:
      apiKey || joinToken
        ? { ...(apiKey ? { api_key: apiKey } : {}), ...(joinToken ? { join_token: joinToken } : {}) }
        : undefined,
    logger: log,
    metrics,
    onFatal,
  });
  try {
    await agent.start();
    await agent.ready;
  } catch (err) {
    await agent.stop();
    await backend.close();
    throw err;
  }
  return { agent, backend };
}

/** `havn node`: a node for a coordinator, until Ctrl-C. */
export async function node(o: NodeCommandOptions): Promise<void> {
  const log = await createLogger(o);
  const dataDir = resolveDataDir("node", o.dataDir, log);
  const metrics = o.metricsPort === undefined ? undefined : new NodeMetrics();
  let stopMetrics: (() => Promise<void>) | undefined;
  if (metrics) {
    const host = o.metricsHost ?? "127.0.0.1";
    try {
      const served = await serveMetrics(metrics.registry, { port: o.metricsPort!, host });
      stopMetrics = served.close;
      log.info({ url: served.url }, "serving node metrics");
    } catch (err) {
      throw listenError(err, host, o.metricsPort!, "--metrics-port");
    }
  }
  const { agent, backend } = await startNode(
    { ...o, dataDir },
    log,
    (err) => {
      reportError(err);
      process.exit(1);
    },
    metrics,
  ).catch(async (err: unknown) => {
    await stopMetrics?.();
    throw err;
  });
  process.stdout.write(`node ${agent.name} connected to ${o.coordinator}\n`);
  onShutdown(async () => {
    await agent.stop();
    await backend.close();
    await stopMetrics?.();
  });
}
