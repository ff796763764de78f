import { startCoordinator } from "@havn/coordinator";
import { resolveDataDir } from "../data-dir.js";
import { createLogger } from "../logging.js";
import { onShutdown, type LogOptions } from "../options.js";
import { envSecret } from "../secrets.js";

export interface CoordinatorCommandOptions extends LogOptions {
  readonly port: number;
  readonly host: string;
  readonly dataDir?: string | undefined;
  readonly databaseUrl?: string | undefined;
  readonly mode: "production" | "dev";
  readonly registration: "open" | "invite";
  readonly corsOrigin?: string[] | undefined;
  readonly publicUrl?: string | undefined;
  readonly nodeAdmission: "open" | "token";
  readonly trustProxy?: string | undefined;
  readonly rateLimit: number;
  readonly retentionDays: number;
  readonly insecure: boolean;
  readonly free: boolean;
  readonly catalog?: "open" | "curated" | undefined;
}

/**
 * The secrets a coordinator takes from its environment (never from argv, which `ps` shows): the
 * key that signs access tokens, the network's join token, the first admin, the database URL.
 */
export function coordinatorSecrets() {
  const adminEmail = process.env.HAVN_ADMIN_EMAIL;
  const adminPassword = envSecret("HAVN_ADMIN_PASSWORD");
  return {
    jwtSecret: envSecret("HAVN_JWT_SECRET"),
    joinToken: envSecret("HAVN_JOIN_TOKEN"),
    databaseUrl: envSecret("DATABASE_URL"),
    bootstrapAdmin: adminEmail && adminPassword ? { email: adminEmail, password: adminPassword } : undefined,
  };
}

/** `havn coordinator`: a coordinator alone, in production mode unless told otherwise. */
export async function coordinator(o: CoordinatorCommandOptions): Promise<void> {
  const logger = await createLogger(o);
  const secrets = coordinatorSecrets();
  const { coordinator: app, url } = await startCoordinator({
    port: o.port,
    host: o.host,
    insecure: o.insecure,
    dataDir: resolveDataDir("coordinator", o.dataDir, logger),
    databaseUrl: o.databaseUrl ?? secrets.databaseUrl,
    mode: o.mode,
    registration: o.registration,
    rateLimitPerMinute: o.rateLimit,
    retentionMs: Math.round(o.retentionDays * 24 * 3600 * 1000),
    nodeAdmission: o.nodeAdmission,
    ...(o.free ? { ledger: { enabled: false } } : {}),
    ...(o.catalog ? { catalog: { mode: o.catalog } } : {}),
    ...(o.corsOrigin ? { corsOrigins: o.corsOrigin } : {}),
    ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
    ...(o.trustProxy ? { trustProxy: o.trustProxy } : {}),
    ...(secrets.jwtSecret ? { jwtSecret: secrets.jwtSecret } : {}),
    ...(secrets.joinToken ? { joinToken: secrets.joinToken } : {}),
    ...(secrets.bootstrapAdmin ? { bootstrapAdmin: secrets.bootstrapAdmin } : {}),
    logger,
  });
  process.stdout.write(`coordinator listening at ${url} (${o.mode} mode)\n`);
  onShutdown(() => app.close());
}
