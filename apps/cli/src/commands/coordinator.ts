import { startCoordinator } from "@havn/coordinator";
import { resolveDataDir } from "../data-dir.js";
import { createLogger } from "../logging.js";
import { onShutdown, type LogOptions } from "../options.js";

export interface CoordinatorCommandOptions extends LogOptions {
  readonly port: number;
  readonly host: string;
  readonly dataDir?: string | undefined;
  readonly databaseUrl?: string | undefined;
}

/** `havn coordinator`: a coordinator alone. */
export async function coordinator(o: CoordinatorCommandOptions): Promise<void> {
  const logger = await createLogger(o);
  const { coordinator: app, url } = await startCoordinator({
    port: o.port,
    host: o.host,
    dataDir: resolveDataDir("coordinator", o.dataDir, logger),
    databaseUrl: o.databaseUrl,
    logger,
  });
  process.stdout.write(`coordinator listening at ${url}\n`);
  onShutdown(() => app.close());
}
