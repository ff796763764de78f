import { HavnError } from "@havn/protocol";
import { listenError } from "@havn/protocol/local";
import { openStore } from "@havn/store";
import { buildApp, type BuildAppOptions, type CoordinatorApp } from "./app.js";
import { AuthService } from "./auth/auth-service.js";
import { compileConfig, type CoordinatorOptions } from "./config.js";

export interface StartOptions extends BuildAppOptions {
  /** Port to listen on; 0 picks a free one. Default 8787. */
  readonly port?: number;
  /** Address to listen on. Default 127.0.0.1 (this machine only); 0.0.0.0 for other machines. */
  readonly host?: string;
  /** Let a dev-mode coordinator listen beyond this machine (anyone who reaches it acts as the dev account). */
  readonly insecure?: boolean;
}

const isLoopback = (host: string) => host === "localhost" || host === "::1" || /^127\./.test(host);

/**
 * Whether a coordinator may face the network: a dev-mode one may not (every request is the dev
 * account) unless told it is on purpose; a production one needs someone who can administer it.
 */
async function refuseInsecure(coordinator: CoordinatorApp, host: string, insecure: boolean): Promise<void> {
  if (isLoopback(host)) return;
  if (coordinator.config.mode === "dev" && !insecure)
    throw new HavnError(
      "CONFIG_INSECURE",
      `Refusing to listen on ${host} in dev mode, where every request acts as the dev account: listen on 127.0.0.1, run \`havn coordinator\` (production), or pass --insecure.`,
    );
  if (coordinator.config.mode === "production" && !(await coordinator.auth.hasAdmin()))
    throw new HavnError(
      "CONFIG_INSECURE",
      `Refusing to listen on ${host} with no admin account: create one with \`havn admin create\` (or set HAVN_ADMIN_EMAIL and HAVN_ADMIN_PASSWORD_FILE).`,
    );
}

/** Builds the coordinator and listens; `url` is where clients and nodes reach it. */
export async function startCoordinator(
  options: StartOptions = {},
): Promise<{ coordinator: CoordinatorApp; url: string }> {
  const { port = 8787, host = "127.0.0.1", insecure = false, ...rest } = options;
  const coordinator = await buildApp(rest);
  let address: string;
  try {
    await refuseInsecure(coordinator, host, insecure);
    address = await coordinator.app.listen({ port, host });
  } catch (err) {
    // Closed first: its database, workers and timers would keep a process that cannot serve alive.
    await coordinator.close().catch(() => {});
    throw err instanceof HavnError ? err : listenError(err, host, port);
  }
  return { coordinator, url: address.replace("://[::1]", "://localhost") };
}

/** `havn admin create`: an admin account, written straight to the coordinator's database on its host. */
export async function createAdmin(
  options: Pick<CoordinatorOptions, "dataDir" | "databaseUrl"> & { email: string; password: string },
): Promise<{ id: string; email: string | null }> {
  const config = compileConfig({ dataDir: options.dataDir, databaseUrl: options.databaseUrl });
  const store = await openStore({ databaseUrl: config.databaseUrl, sqlitePath: config.sqlitePath });
  try {
    const account = await new AuthService(store, config).createAdmin(options.email, options.password);
    return { id: account.id, email: account.email };
  } finally {
    await store.close();
  }
}
