import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const module = fileURLToPath(new URL("../src/embedded-postgres.ts", import.meta.url));

describe("embedded PostgreSQL", () => {
  it("leaves the exit code of the process that starts it alone (npm test must fail when a test fails)", () => {
    // The package's exit hook once turned the test runner's failing exit code into 0.
    const script = `
      const { startEmbeddedPostgres } = await import(${JSON.stringify(module)});
      const server = await startEmbeddedPostgres();
      const pg = (await import("pg")).default;
      const client = new pg.Client({ connectionString: server.url });
      await client.connect();
      const { rows } = await client.query("SELECT 1 + 1 AS two");
      await client.end();
      await server.stop();
      console.log(JSON.stringify(rows[0]));
      process.exitCode = 3;
    `;
    const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(run.stdout.trim()).toBe('{"two":2}');
    expect(run.status).toBe(3);
  });
});
