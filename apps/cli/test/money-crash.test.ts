import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, inject, it } from "vitest";
import { ledgerAccounts, openStore, type Store } from "@havn/store";
import { createTestDatabase } from "@havn/store/testing";
import { watch } from "./watched.ts";

/**
 * `kill -9` of a paid coordinator in the middle of a load, on each store: every client retries
 * with its Idempotency-Key until it has its answer. Afterwards every accepted job is there once,
 * escrowed once, charged at most once, settled once; the ledger sums to zero.
 */
const bin = fileURLToPath(new URL("../bin/havn.js", import.meta.url));
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "havn-crash-"));
  dirs.push(d);
  return d;
};

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const clients = 24;

describe.each(["sqlite", "postgres"] as const)("kill -9 of a paid coordinator under load, on %s", (kind) => {
  it("no accepted job lost, none charged twice, no posting doubled, the ledger sums to zero", async () => {
    const dataDir = tempDir();
    const databaseUrl = kind === "postgres" ? await createTestDatabase(inject("pgAdminUrl")) : undefined;
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env = { ...process.env, HAVN_HOME: tempDir(), HAVN_COORDINATOR: "", HAVN_API_KEY: "" };
    const up = () => {
      const c = watch(
        children,
        process.execPath,
        [
          bin,
          "up",
          "--no-node",
          "--port",
          String(port),
          "--data-dir",
          dataDir,
          ...(databaseUrl ? ["--database-url", databaseUrl] : []),
        ],
        { env },
      );
      return c;
    };
    let coordinator = up();
    await coordinator.printed(/havn is up at/);
    const node = watch(children, process.execPath, [bin, "node", "--coordinator", url, "--data-dir", tempDir()], {
      env,
    });
    await node.printed(/connected to/);

    // Each client: one job, one key, retried on any failure to reach the coordinator.
    const answers = new Map<number, string>();
    let retried = 0;
    const ask = async (i: number) => {
      const deadline = Date.now() + 90_000;
      for (;;) {
        try {
          const r = await fetch(`${url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": `client-${i}` },
            body: JSON.stringify({
              model: "havn-tiny",
              messages: [{ role: "user", content: `job ${i}` }],
              max_tokens: 16,
              seed: i,
            }),
          });
          if (r.status === 200) {
            answers.set(i, ((await r.json()) as { id: string }).id);
            return;
          }
          await r.text();
        } catch {
          // ECONNREFUSED / ECONNRESET while the coordinator is down: retry with the same key.
          retried++;
        }
        if (Date.now() > deadline) throw new Error(`client ${i} never got its answer`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const load = Promise.all(Array.from({ length: clients }, (_, i) => ask(i)));
    // Mid-load: some answered, some in flight.
    const deadline = Date.now() + 30_000;
    while (answers.size < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    coordinator.child.kill("SIGKILL");
    await coordinator.exited;
    coordinator = up();
    await coordinator.printed(/havn is up at/);
    await load;
    expect(answers.size).toBe(clients);
    // The kill landed mid-load: clients in flight lost their connection and came back.
    expect(retried).toBeGreaterThan(0);

    // Let settlement (no challenge window in dev mode) finish, then look at the database.
    await new Promise((r) => setTimeout(r, 2_500));
    coordinator.child.kill("SIGTERM");
    await coordinator.exited;
    node.child.kill("SIGTERM");
    const store: Store = await openStore(databaseUrl ? { databaseUrl } : { sqlitePath: join(dataDir, "havn.db") });
    try {
      const ids = new Set(answers.values());
      expect(ids.size).toBe(clients);
      for (const id of ids) {
        const job = (await store.jobs.get(id))!;
        expect([id, job.status]).toEqual([id, "completed"]);
        const txs = await store.ledger.transactions({ jobId: id, limit: 20 });
        const kinds = txs.map((t) => t.kind).sort();
        // Once each: escrow, charge (unless it cost its whole escrow), settle (unless it cost nothing).
        expect(kinds.filter((k) => k === "escrow")).toHaveLength(1);
        expect(kinds.filter((k) => k === "charge").length).toBeLessThanOrEqual(1);
        expect(kinds.filter((k) => k === "settle").length).toBeLessThanOrEqual(1);
        expect(job.money?.state).toBe("settled");
        expect(await store.ledger.balance(ledgerAccounts.escrow(id))).toBe(0n);
      }
      // No job made twice for one key, none lost: one job per client, plus none beside them.
      const counts = await store.jobs.countByStatus();
      expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(clients);
      expect(await store.ledger.total()).toBe(0n);
    } finally {
      await store.close();
    }
  });
});
