import { join } from "node:path";
import { startCoordinator, type CoordinatorOptions } from "@havn/coordinator";
import { onShutdown } from "../options.js";
import { startNode } from "./node.js";

export interface UpOptions {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly databaseUrl?: string | undefined;
  readonly node: boolean;
  readonly logLevel: NonNullable<CoordinatorOptions["logLevel"]>;
}

/** `havn up`: coordinator and one built-in node in one process — the whole network on a laptop. */
export async function up(o: UpOptions): Promise<void> {
  const { coordinator, url } = await startCoordinator({
    port: o.port,
    host: o.host,
    dataDir: o.dataDir,
    databaseUrl: o.databaseUrl,
    logLevel: o.logLevel,
  });
  let stopNode: (() => Promise<void>) | undefined;
  if (o.node) {
    const { agent, backend } = await startNode(
      { coordinator: url, backend: "builtin", dataDir: o.dataDir, name: "local-builtin" },
      o.logLevel !== "silent",
    );
    await agent.ready;
    stopNode = async () => {
      await agent.stop();
      await backend.close();
    };
  }
  const store = coordinator.store.kind === "sqlite" ? join(o.dataDir, "havn.db") : "PostgreSQL";
  process.stdout.write(
    [
      `havn is up at ${url}`,
      `  OpenAI API   ${url}/v1   (any API key works in dev mode)`,
      `  store        ${store}`,
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
