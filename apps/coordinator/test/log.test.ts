import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, inject, it } from "vitest";
import { certifyKey, keyId, verifyInclusionProof, verifyLogRange, type LogEntryView } from "@havn/protocol";
import { HavnClient, type LogRange } from "@havn/sdk";
import type { Store } from "@havn/store";
import { reopenableTestStore } from "@havn/store/testing";
import { startNetwork, type Network } from "@havn/testkit";
import { keyCertificatePath, loadOrCreateKeyFile } from "@havn/protocol/local";
import { call, until } from "./http.ts";

let net: Network | undefined;
const dirs: string[] = [];
const removals: (() => void)[] = [];
afterEach(async () => {
  await net?.close();
  net = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  for (const remove of removals.splice(0)) remove();
});

describe.each(["sqlite", "postgres"] as const)("the execution log anyone can check, on %s", (kind) => {
  /** One database the test opens twice: a coordinator, then its restart with a rotated key. */
  async function database(): Promise<() => Promise<Store>> {
    const db = await reopenableTestStore(kind, inject("pgAdminUrl"));
    removals.push(db.remove);
    return db.open;
  }

  function keyFile(): string {
    const dir = mkdtempSync(join(tmpdir(), "havn-key-"));
    dirs.push(dir);
    const path = join(dir, "coordinator.key");
    loadOrCreateKeyFile(path);
    return path;
  }

  async function run(n: Network, count: number): Promise<string[]> {
    const client = new HavnClient({ baseUrl: n.url });
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push((await client.chat(`entry ${i}`, { maxTokens: 4 })).jobId);
    return ids;
  }

  async function bundle(n: Network) {
    const client = new HavnClient({ baseUrl: n.url });
    const range: LogRange = await client.logRange();
    return {
      from: range.from,
      to: range.to,
      entries: range.entries,
      periods: range.periods,
      head: range.head,
      keys: await client.coordinatorKeys(),
    };
  }

  it("seals periods, proves jobs in them, and checks a whole range across a key rotation and a restart", async () => {
    const open = await database();
    const first = keyFile();
    n1: {
      const n = (net = await startNetwork({
        store: await open(),
        nodes: [{ backend: "scripted", name: "a" }],
        coordinator: {
          keyPath: first,
          replica: "r1",
          sweepIntervalMs: 50,
          log: { periodEntries: 3, periodMs: 60_000 },
          ledger: { enabled: false },
        },
      }));
      const ids = await run(n, 4);
      const client = new HavnClient({ baseUrl: n.url });
      await until(async () => (await client.logRange()).periods.length === 1);
      expect((await client.logRange()).periods[0]).toMatchObject({ from: 1, to: 3 });

      // Job 4 waits for its period: 409, retryable, with Retry-After.
      const pending = await call(n, "GET", `/v1/log/proof/${ids[3]}`);
      expect(pending.status).toBe(409);
      expect(pending.body.error).toMatchObject({ code: "LOG_PROOF_PENDING", retryable: true });
      expect(pending.headers.get("retry-after")).toBe("60");
      expect((await call(n, "GET", "/v1/log/proof/job-000000000000000000000000")).body.error.code).toBe(
        "LOG_ENTRY_NOT_FOUND",
      );
      expect((await call(n, "GET", "/v1/log/proof/not-a-job")).status).toBe(404);

      const proof = await client.logProof(ids[1]!);
      expect(proof).toMatchObject({ job_id: ids[1], seq: 2, period: { from: 1, to: 3 } });
      expect(verifyInclusionProof(proof, await client.coordinatorKeys())).toEqual([]);
      const receipt = await client.verifyReceipt(ids[1]!);
      expect(receipt).toMatchObject({ node: true, coordinator: true, chain: true, logged: true, output: true });
      expect(receipt.inclusion).toBe(true);
      expect(receipt.problems).toEqual([]);
      expect((await client.verifyReceipt(ids[3]!)).inclusion).toBe("pending");
      break n1;
    }
    await net.close();

    // The restart, with a new key for the same replica: a rotation, certified by the old key (as
    // `havn admin rotate-key` does; the CLI test runs that command).
    const second = keyFile();
    const secondKeys = loadOrCreateKeyFile(second);
    writeFileSync(
      keyCertificatePath(second),
      JSON.stringify({
        public_key: secondKeys.publicKey,
        certificate: certifyKey(secondKeys.publicKey, loadOrCreateKeyFile(first), Date.now()),
      }),
    );
    const n = (net = await startNetwork({
      store: await open(),
      nodes: [{ backend: "scripted", name: "b" }],
      coordinator: {
        keyPath: second,
        replica: "r1",
        sweepIntervalMs: 50,
        log: { periodEntries: 3, periodMs: 0 },
        ledger: { enabled: false },
      },
    }));
    const later = await run(n, 2);
    const client = new HavnClient({ baseUrl: n.url });
    await until(async () => (await client.logRange()).periods.at(-1)?.to === 6);
    const keys = await client.coordinatorKeys();
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatchObject({ replica: "r1", valid_until: expect.any(Number) });
    expect(keys[1]).toMatchObject({ replica: "r1", valid_until: null, key_id: keyId(n.coordinator.publicKey) });

    const b = await bundle(n);
    expect(b.entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    // Consecutive periods from 1 to 6: the first by count, the rest as each sweep found them (periodMs 0).
    expect(b.periods[0]).toMatchObject({ from: 1, to: 3 });
    b.periods.forEach((p, i) => i > 0 && expect(p.from).toBe(b.periods[i - 1]!.to + 1));
    expect(b.periods.at(-1)!.to).toBe(6);
    expect(verifyLogRange(b)).toEqual({ ok: true, entries: 6, periods: b.periods.length, problems: [] });
    // Pinned to the first key, the whole range still checks: the second key chains to it.
    expect(verifyLogRange(b, [loadOrCreateKeyFile(first).publicKey]).ok).toBe(true);
    // Without its certificate, the rotated-in key is not trusted, and what it signed fails.
    const uncertified = { ...b, keys: b.keys.map((k, i) => (i === 1 ? { ...k, certificate: null } : k)) };
    expect(verifyLogRange(uncertified).problems).toContain(
      `Key ${keyId(n.coordinator.publicKey)} (replica r1) follows ${b.keys[0]!.key_id} without a certificate from it.`,
    );
    // A receipt from before the rotation still verifies, against the retired key.
    const old = (await client.logEntry(1)).job_id;
    expect((await client.verifyReceipt(old)).problems).toEqual([]);
    expect((await client.verifyReceipt(later[1]!)).inclusion).toBe(true);

    // A tampered entry, a reordered range, a proof outside the range: each fails, saying why.
    const tampered = b.entries.map((e): LogEntryView =>
      e.seq === 5 && e.kind !== "settlement"
        ? { ...e, receipt: { ...e.receipt, receipt: { ...e.receipt.receipt, latency_ms: 999_999 } } }
        : e,
    );
    expect(verifyLogRange({ ...b, entries: tampered }).problems).toContain(
      "Entry #5: its hash does not match its receipt (the entry was altered).",
    );
    const swapped = [b.entries[0]!, b.entries[2]!, b.entries[1]!, ...b.entries.slice(3)];
    expect(verifyLogRange({ ...b, entries: swapped }).problems).toContain(
      "Entry #3 is where #2 belongs: the range is out of order or has a gap.",
    );
    const outside = await client.logProof(later[1]!);
    expect(verifyInclusionProof(outside, keys, { from: 1, to: 3 })).toEqual([
      `${later[1]} is at #6, outside the range #1–#3.`,
    ]);
  });

  it("records each settled run — workflow, caller, node, fee, split — signed, in the same chain", async () => {
    const n = (net = await startNetwork({
      store: kind,
      pgAdminUrl: inject("pgAdminUrl"),
      nodes: [{ backend: "scripted", name: "a" }],
      coordinator: { sweepIntervalMs: 50 },
    }));
    const ids = await run(n, 3);
    for (const id of ids) await until(async () => (await n.coordinator.store.jobs.get(id))?.money?.state === "settled");
    const b = await bundle(n);
    const settled = b.entries.filter((e) => e.kind === "settlement");
    expect(settled.map((e) => e.job_id).sort()).toEqual([...ids].sort());
    for (const e of settled) {
      if (e.kind !== "settlement") continue;
      const s = e.settlement.settlement;
      const job = (await n.coordinator.store.jobs.get(e.job_id))!;
      expect(s).toMatchObject({
        caller: "custodial:acc-dev",
        workflow_id: null,
        fee_uhai: job.money!.charge!.toString(),
      });
      expect(s.split.reduce((x, p) => x + BigInt(p.amount_uhai), 0n)).toBe(job.money!.charge);
      // A receipt entry for the job comes before its settlement.
      const receipt = b.entries.find((r) => r.kind !== "settlement" && r.job_id === e.job_id)!;
      expect(receipt.seq).toBeLessThan(e.seq);
    }
    expect(verifyLogRange(b)).toMatchObject({ ok: true, problems: [] });
    // An altered split is caught: the entry's hash, and the coordinator's signature, no longer hold.
    const forged = b.entries.map((e): LogEntryView =>
      e.kind === "settlement" && e.seq === settled[0]!.seq
        ? {
            ...e,
            settlement: {
              ...e.settlement,
              settlement: {
                ...e.settlement.settlement,
                split: [{ account: "custodial:acc-thief", amount_uhai: e.settlement.settlement.fee_uhai }],
              },
            },
          }
        : e,
    );
    expect(verifyLogRange({ ...b, entries: forged }).problems).toEqual([
      `Entry #${settled[0]!.seq}: its hash does not match its settlement (the entry was altered).`,
      `Entry #${settled[0]!.seq}: the coordinator's signature on the settlement does not verify.`,
    ]);
    // The receipt's proof still names the receipt entry.
    expect((await call(n, "GET", `/v1/log/proof/${ids[0]}`)).body.seq).toBe(
      b.entries.find((e) => e.kind !== "settlement" && e.job_id === ids[0])!.seq,
    );
  });

  it("serves ranges in pages with the signed head, and refuses nonsense positions", async () => {
    // A free network: no settled runs join the log, so three jobs make three entries.
    const n = (net = await startNetwork({
      nodes: [{ backend: "scripted", name: "a" }],
      coordinator: { ledger: { enabled: false } },
    }));
    await run(n, 3);
    const page = await call(n, "GET", "/v1/log?from=2&to=2");
    expect(page.body).toMatchObject({ object: "log_range", from: 2, to: 2, next_from: null, head: { seq: 3 } });
    expect(page.body.entries.map((e: { seq: number }) => e.seq)).toEqual([2]);
    // Nothing of a prompt or an output in the public log.
    expect(JSON.stringify(page.body)).not.toContain("entry 1");
    expect((await call(n, "GET", "/v1/log?from=x")).body.error.code).toBe("REQUEST_INVALID");
    expect((await call(n, "GET", "/v1/log?from=3&to=1")).body.error.code).toBe("REQUEST_INVALID");
    expect((await call(n, "GET", "/v1/log?from=9")).body).toMatchObject({ from: 9, to: 3, entries: [] });
    const head = await call(n, "GET", "/v1/log/head");
    expect(head.body).toMatchObject({ seq: 3, key_id: keyId(n.coordinator.publicKey) });
    const keys = await call(n, "GET", "/v1/keys");
    expect(keys.body.data).toEqual([expect.objectContaining({ public_key: n.coordinator.publicKey })]);
  });
});
