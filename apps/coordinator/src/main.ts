import { buildApp } from "./app.js";

/** Reads the environment, listens, and shuts down cleanly on SIGINT/SIGTERM. */
export async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8787);
  const host = process.env.HOST ?? "127.0.0.1";
  const { app } = await buildApp({
    dataDir: process.env.HAVN_DATA_DIR ?? "./data",
    databaseUrl: process.env.DATABASE_URL || undefined,
  });
  await app.listen({ port, host });
  const stop = () => void app.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
