import { join } from "node:path";
import { startCoordinator } from "@havn/coordinator";
import { resolveDataDir } from "../data-dir.js";
import { createLogger } from "../logging.js";
import { onShutdown, reportError, type LogOptions } from "../options.js";
import { envSecret } from "../secrets.js";
import { startNode } from "./node.js";

export interface UpOptions extends LogOptions {
  readonly port: number;
  readonly host: string;
  readonly dataDir?: string | undefined;
  readonly databaseUrl?: string | undefined;
  readonly node: boolean;
  readonly insecure: boolean;
  readonly free: boolean;
}

/**
 * `havn up`: coordinator and one built-in node in one process — the whole network on a laptop,
 * in dev mode: one dev account, which every request acts as, with any API key or none. It listens
 * on this machine only unless `--insecure`. The coordinator's state is in the data dir; the
 * built-in node's key and model are in its own `builtin-node/` inside it, so a `havn node` started
 * beside it never shares its key.
 */
export async function up(o: UpOptions): Promise<void> {
  const log = await createLogger(o);
  const dataDir = resolveDataDir("up", o.dataDir, log);
  const { coordinator, url } = await startCoordinator({
    port: o.port,
    host: o.host,
    insecure: o.insecure,
    mode: "dev",
    dataDir,
    databaseUrl: o.databaseUrl ?? envSecret("DATABASE_URL"),
    ...(o.free ? { ledger: { enabled: false } } : {}),
    logger: log,
  });
  let stopNode: (() => Promise<void>) | undefined;
  if (o.node) {
    try {
      const { agent, backend } = await startNode(
        { coordinator: url, backend: "builtin", dataDir: join(dataDir, "builtin-node"), name: "local-builtin" },
        log,
        (err) => {
          reportError(err);
          void coordinator.close().finally(() => process.exit(1));
        },
      );
      stopNode = async () => {
        await agent.stop();
        await backend.close();
      };
    } catch (err) {
      await coordinator.close();
      throw err;
    }
  }
  const store = coordinator.store.kind === "sqlite" ? join(dataDir, "havn.db") : "PostgreSQL";
  process.stdout.write(
    [
      `havn is up at ${url} — dev mode: every request acts as the dev account, with any API key or none`,
      `  OpenAI API   ${url}/v1`,
      `  API docs     ${url}/docs`,
      `  store        ${store}`,
      `  money        ${o.free ? "none: a free network" : "the dev account holds $HAI to spend (havn balance; more: havn faucet)"}`,
      `  nodes        ${o.node ? "1 built-in (model havn-tiny)" : "none yet — start one with `havn node`"}`,
      `  try          npx havn ask "Hello" --coordinator ${url}`,
      "",
    ].join("\n"),
  );
  onShutdown(async () => {
    await stopNode?.();
    await coordinator.close();
  });
}
