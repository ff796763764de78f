import { listenError } from "@havn/protocol/local";
import { buildApp, type BuildAppOptions, type CoordinatorApp } from "./app.js";

export interface StartOptions extends BuildAppOptions {
  /** Port to listen on; 0 picks a free one. Default 8787. */
  readonly port?: number;
  /** Address to listen on. Default 127.0.0.1 (this machine only); 0.0.0.0 for other machines. */
  readonly host?: string;
}

/** Builds the coordinator and listens; `url` is where clients and nodes reach it. */
export async function startCoordinator(
  options: StartOptions = {},
): Promise<{ coordinator: CoordinatorApp; url: string }> {
  const { port = 8787, host = "127.0.0.1", ...rest } = options;
  const coordinator = await buildApp(rest);
  let address: string;
  try {
    address = await coordinator.app.listen({ port, host });
  } catch (err) {
    // Closed first: its database, workers and timers would keep a process that cannot serve alive.
    await coordinator.close().catch(() => {});
    throw listenError(err, host, port);
  }
  return { coordinator, url: address.replace("://[::1]", "://localhost") };
}
