import { afterEach, describe, expect, inject, it } from "vitest";
import { contentId, genesisHash, verifyCosignedReceipt } from "@havn/protocol";
import {
  canTransition,
  jobStatuses,
  jobTransitions,
  statusesLeadingTo,
  terminalStatuses,
  type JobStatus,
  type ReceiptSealer,
  type Store,
} from "../src/index.ts";
import { openTestStore, storeKinds } from "../src/testing.ts";
import { claimOf, completion, coordinator, err, newJob, node, route, seal } from "./fixtures.ts";

describe("job state machine", () => {
  it("terminal states have no way out and every other state can end", () => {
    expect([...terminalStatuses].sort()).toEqual(["cancelled", "completed", "failed"]);
    for (const s of jobStatuses) {
      if (!terminalStatuses.includes(s)) expect(jobTransitions[s].some((t) => terminalStatuses.includes(t))).toBe(true);
    }
  });
  it("statusesLeadingTo is the inverse of the table", () => {
    for (const to of jobStatuses) {
      for (const from of jobStatuses) {
        expect(statusesLeadingTo(to).includes(from)).toBe(canTransition(from, to));
      }
    }
  });
});

describe.each(storeKinds)("store on %s", (kind) => {
  let store: Store;
  const open = async () => (store = await openTestStore(kind, inject("pgAdminUrl")));
  afterEach(async () => {
    await store?.close();
  });

  it("inserts a batch of jobs in one go", async () => {
    await open();
    const jobs = [newJob(), newJob(), newJob()];
    await store.jobs.admit(jobs);
    for (const j of jobs)
      expect(await store.jobs.get(j.id)).toMatchObject({ id: j.id, status: "queued", input: j.input });
  });

  it("inserts and reads back a job", async () => {
    await open();
    const j = newJob();
    const row = await store.jobs.insert(j);
    expect(row).toMatchObject({ id: j.id, status: "queued", attempts: 0, input: j.input, params: j.params });
    expect(await store.jobs.get(j.id)).toEqual(row);
    expect(await store.jobs.get("job-missing")).toBeUndefined();
  });

  it("admits a job already leased to a node, with its first attempt, beside queued ones", async () => {
    await open();
    const { jobId: _, ...lease } = claimOf("", "att-admitted", 50_000);
    const leased = { ...newJob(), lease };
    const queued = newJob();
    await store.jobs.admit([leased, queued]);
    const row = await store.jobs.get(leased.id);
    expect(row).toMatchObject({
      status: "leased",
      attempts: 1,
      attemptId: "att-admitted",
      nodeKey: node.publicKey,
      leaseExpiresAt: 50_000,
      route,
    });
    expect((await store.jobs.insert({ ...newJob(), lease: { ...lease, attemptId: "att-2" } })).status).toBe("leased");
    expect((await store.jobs.claimable(["havn-tiny"], 10)).map((j) => j.id)).toEqual([queued.id]);
    // A leased admission is an attempt like any claim: it completes, and a lost node re-queues it.
    expect((await store.jobs.complete([completion(leased.id, "att-admitted")], seal))[0]?.ok).toBe(true);
    const other = { ...newJob(), lease: { ...lease, attemptId: "att-lost" } };
    await store.jobs.admit([other]);
    expect((await store.jobs.releaseNode(node.publicKey, err, 3_000)).map((r) => r.job.id)).toContain(other.id);
    expect(await store.jobs.get(other.id)).toMatchObject({ status: "queued", attempts: 1, attemptId: null });
    // The attempt id is unique: a second admission under it rolls the whole batch back.
    const dup = { ...newJob(), lease: { ...lease, attemptId: "att-lost" } };
    const plain = newJob();
    await expect(store.jobs.admit([plain, dup])).rejects.toThrow();
    expect(await store.jobs.get(plain.id)).toBeUndefined();
  });
  it("tells which of many jobs have ended, in one query", async () => {
    await open();
    const [done, running, queued] = [newJob(), newJob(), newJob()];
    for (const j of [done, running, queued]) await store.jobs.insert(j);
    await store.jobs.claim([claimOf(done.id, "att-done"), claimOf(running.id, "att-running")], 1_500);
    await store.jobs.complete([completion(done.id, "att-done")], seal);
    const cancelled = newJob();
    await store.jobs.insert(cancelled);
    await store.jobs.cancel(cancelled.id, err, 1_600);
    const ended = await store.jobs.ended([done.id, running.id, queued.id, cancelled.id, "job-missing"]);
    expect(ended.map((j) => [j.id, j.status]).sort()).toEqual(
      [
        [done.id, "completed"],
        [cancelled.id, "cancelled"],
      ].sort(),
    );
    expect(await store.jobs.ended([])).toEqual([]);
  });

  it("claims a job exactly once even when claims race", async () => {
    await open();
    const j = newJob();
    await store.jobs.insert(j);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.jobs.claim([claimOf(j.id, `att-${i}`)], 1_500)),
    );
    const winners = results.flat();
    expect(winners).toHaveLength(1);
    expect(winners[0]).toMatchObject({ jobId: j.id, attempts: 1, nodeKey: node.publicKey });
    expect(await store.jobs.get(j.id)).toMatchObject({ status: "leased", attemptId: winners[0]!.attemptId });
  });

  it("lists claimable jobs oldest first, for the given models only", async () => {
    await open();
    const a = newJob(1_000);
    const b = newJob(2_000);
    await store.jobs.insert(b);
    await store.jobs.insert(a);
    await store.jobs.insert({ ...newJob(500), model: "other" });
    expect((await store.jobs.claimable(["havn-tiny"], 10)).map((r) => r.id)).toEqual([a.id, b.id]);
  });

  it("completes an attempt: output by CID, chained log, co-signed receipt", async () => {
    await open();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const j = newJob();
      ids.push(j.id);
      await store.jobs.insert(j);
      await store.jobs.claim([claimOf(j.id, `att-${j.id}`)], 1_500);
    }
    const results = await store.jobs.complete(
      ids.map((id, i) => completion(id, `att-${id}`, `text ${i}`)),
      seal,
    );
    expect(results.every((r) => r.ok)).toBe(true);
    const first = await store.log.entry(1);
    const third = await store.log.entry(3);
    expect(first?.prevHash).toBe(genesisHash);
    expect((await store.log.entry(2))?.prevHash).toBe(first?.entryHash);
    expect(await store.log.head()).toEqual({ seq: 3, entryHash: third?.entryHash });
    const job = await store.jobs.get(ids[0]!);
    expect(job).toMatchObject({ status: "completed", outputCid: contentId("text 0") });
    expect(job?.receipt?.log.seq).toBe(1);
    expect(new TextDecoder().decode(await store.jobs.output(contentId("text 1")))).toBe("text 1");
  });

  it("reads the log by range and by job, seals consecutive periods once, and keeps every key of a rotation", async () => {
    await open();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const j = newJob();
      ids.push(j.id);
      await store.jobs.insert(j);
      await store.jobs.claim([claimOf(j.id, `att-${j.id}`)], 1_500);
    }
    await store.jobs.complete(
      ids.map((id, i) => completion(id, `att-${id}`, `text ${i}`)),
      seal,
    );
    const range = await store.log.range(2, 4);
    expect(range.map((e) => e.seq)).toEqual([2, 3, 4]);
    expect(await store.log.hashes(2, 4)).toEqual(range.map((e) => e.entryHash));
    expect((await store.log.entryOfJob(ids[3]!))?.seq).toBe(4);
    expect(await store.log.entryOfJob("job-missing")).toBeUndefined();

    await store.log.registerKey({ keyId: "k1", publicKey: "pub-1", replica: "r", now: 10 });
    await store.log.registerKey({ keyId: "k1", publicKey: "pub-1", replica: "r", now: 15 }); // a restart
    // A rotation, with the certificate the old key signed for the new one (kept as given).
    const certificate = { by: "k1", issued_at: 19, signature: "sig" };
    const activation = { at: 20, signature: "self" };
    await store.log.registerKey({ keyId: "k2", publicKey: "pub-2", replica: "r", now: 20, certificate, activation });
    await store.log.registerKey({ keyId: "k3", publicKey: "pub-3", replica: "other", now: 30 });
    expect(await store.log.keys()).toEqual([
      {
        key_id: "k1",
        public_key: "pub-1",
        replica: "r",
        valid_from: 10,
        valid_until: 20,
        certificate: null,
        activation: null,
      },
      { key_id: "k2", public_key: "pub-2", replica: "r", valid_from: 20, valid_until: null, certificate, activation },
      {
        key_id: "k3",
        public_key: "pub-3",
        replica: "other",
        valid_from: 30,
        valid_until: null,
        certificate: null,
        activation: null,
      },
    ]);

    const period = (from: number, to: number) => ({
      from,
      to,
      root: `root ${from}`,
      last_hash: `hash ${to}`,
      signed_at: 40,
      key_id: "k2",
      signature: "sig",
    });
    expect(await store.log.sealPeriod(period(2, 3))).toBe(false); // must start at 1
    expect(await store.log.sealPeriod(period(1, 3))).toBe(true);
    expect(await store.log.sealPeriod(period(1, 2))).toBe(false); // sealed already
    expect(await store.log.sealPeriod(period(5, 5))).toBe(false); // a gap
    expect(await store.log.sealPeriod(period(4, 5))).toBe(true);
    expect(await store.log.periodOf(2)).toEqual(period(1, 3));
    expect(await store.log.periodOf(6)).toBeUndefined();
    expect(await store.log.lastPeriod()).toEqual(period(4, 5));
    expect((await store.log.periods(3, 4)).map((p) => p.from)).toEqual([1, 4]);
  });

  it("a cancel racing a batch being co-signed: one of them wins whole, and the log stays one chain", async () => {
    await open();
    const jobs = [newJob(), newJob(), newJob()];
    for (const j of jobs) {
      await store.jobs.insert(j);
      await store.jobs.claim([claimOf(j.id, `att-${j.id}`)], 1_500);
    }
    let cancel: Promise<unknown> | undefined;
    const racing: ReceiptSealer = {
      link: seal.link,
      async seal(requests) {
        // A client cancels the middle job while the signatures are being made.
        cancel ??= store.jobs.cancel(jobs[1]!.id, err, 1_800);
        await new Promise((r) => setTimeout(r, 20));
        return seal.seal(requests);
      },
    };
    const results = await store.jobs.complete(
      jobs.map((j) => completion(j.id, `att-${j.id}`)),
      racing,
    );
    const cancelled = await cancel;
    if (store.kind === "sqlite") {
      // One connection: the cancel lands at once; the batch is read again without that attempt.
      expect(results.map((r) => r.ok)).toEqual([true, false, true]);
      expect(results[1]).toMatchObject({ reason: "lease_conflict" });
      expect((await store.jobs.get(jobs[1]!.id))?.status).toBe("cancelled");
    } else {
      // The completion holds the rows it signs for: the cancel waits, then finds the job done.
      expect(results.map((r) => r.ok)).toEqual([true, true, true]);
      expect(cancelled).toBeUndefined();
    }
    const written = results.filter((r) => r.ok).map((r) => r.job!.id);
    const head = await store.log.head();
    expect(head?.seq).toBe(written.length);
    let prev = genesisHash;
    for (let seq = 1; seq <= written.length; seq++) {
      const entry = await store.log.entry(seq);
      expect(entry?.jobId).toBe(written[seq - 1]);
      expect(entry?.prevHash).toBe(prev);
      prev = entry!.entryHash;
    }
    expect(head?.entryHash).toBe(prev);
    for (const r of results.filter((r) => r.ok))
      expect(verifyCosignedReceipt(r.job!.receipt!)).toEqual({ node: true, coordinator: true, chain: true });
  });

  it("refuses a stale attempt and a second completion", async () => {
    await open();
    const j = newJob();
    await store.jobs.insert(j);
    await store.jobs.claim([claimOf(j.id, "att-1")], 1_500);
    expect((await store.jobs.complete([completion(j.id, "att-other")], seal))[0]).toMatchObject({
      ok: false,
      reason: "lease_conflict",
    });
    expect((await store.jobs.complete([completion(j.id, "att-1")], seal))[0]?.ok).toBe(true);
    expect((await store.jobs.complete([completion(j.id, "att-1")], seal))[0]?.ok).toBe(false);
    expect((await store.jobs.complete([completion("job-nope", "att-1")], seal))[0]).toMatchObject({
      reason: "not_found",
    });
    expect(await store.log.head()).toMatchObject({ seq: 1 });
  });

  it("requeues a failed attempt until attempts run out", async () => {
    await open();
    const j = newJob(1_000, { maxAttempts: 2 });
    await store.jobs.insert(j);
    await store.jobs.claim([claimOf(j.id, "att-1")], 1_100);
    expect(
      await store.jobs.failAttempt({ jobId: j.id, attemptId: "att-1", error: err, retry: true, now: 1_200 }),
    ).toMatchObject({
      status: "queued",
      attempts: 1,
      attemptId: null,
    });
    await store.jobs.claim([claimOf(j.id, "att-2")], 1_300);
    expect(
      await store.jobs.failAttempt({ jobId: j.id, attemptId: "att-2", error: err, retry: true, now: 1_400 }),
    ).toMatchObject({
      status: "failed",
      attempts: 2,
      error: err,
    });
  });

  it("releases a lost node's jobs and expired leases", async () => {
    await open();
    const a = newJob();
    const b = newJob();
    await store.jobs.insert(a);
    await store.jobs.insert(b);
    await store.jobs.claim([claimOf(a.id, "att-a", 5_000), claimOf(b.id, "att-b", 50_000)], 1_100);
    expect((await store.jobs.expireLeases(err, 6_000)).map((r) => [r.job.id, r.attemptId])).toEqual([[a.id, "att-a"]]);
    expect((await store.jobs.get(a.id))?.status).toBe("queued");
    expect(await store.jobs.renewLeases(node.publicKey, ["att-b"], 90_000, 6_000)).toBe(1);
    expect((await store.jobs.get(b.id))?.leaseExpiresAt).toBe(90_000);
    expect((await store.jobs.releaseNode(node.publicKey, err, 7_000)).map((r) => r.job.id)).toEqual([b.id]);
    expect((await store.jobs.get(b.id))?.status).toBe("queued");
  });

  it("fails queued jobs past their queue deadline", async () => {
    await open();
    const a = newJob(1_000, { queueDeadlineAt: 2_000 });
    const b = newJob(1_000, { queueDeadlineAt: 9_000 });
    await store.jobs.insert(a);
    await store.jobs.insert(b);
    const failed = await store.jobs.expireQueued({ code: "JOB_NO_CAPACITY", message: "x", retryable: true }, 3_000);
    expect(failed.map((r) => r.id)).toEqual([a.id]);
    expect(await store.jobs.countByStatus()).toMatchObject({ failed: 1, queued: 1 });
  });

  it("binds a node name to the first key that registers it", async () => {
    await open();
    const hw = { cpu: { model: "x", cores: 2 }, memory_mb: 1, gpus: [], compute_class: "S" as const };
    const caps = { backend: "builtin", engine_version: "1", models: [], slots: 1 };
    expect(
      await store.nodes.upsert({ key: node.publicKey, name: "n1", capabilities: caps, hardware: hw, now: 1 }),
    ).toEqual({ ok: true });
    expect(
      await store.nodes.upsert({ key: node.publicKey, name: "n1", capabilities: caps, hardware: hw, now: 2 }),
    ).toEqual({ ok: true });
    expect(
      await store.nodes.upsert({ key: coordinator.publicKey, name: "n1", capabilities: caps, hardware: hw, now: 3 }),
    ).toEqual({
      ok: false,
      reason: "name_taken",
    });
    await store.nodes.setOnline(node.publicKey, false, 4);
    expect(await store.nodes.get(node.publicKey)).toMatchObject({
      name: "n1",
      online: false,
      lastSeenAt: 4,
      computeClass: "S",
    });
    expect(await store.nodes.list()).toHaveLength(1);
    // A row a stopped replica left online is marked offline only if the node was not seen since.
    await store.nodes.upsert({ key: node.publicKey, name: "n1", capabilities: caps, hardware: hw, now: 5 });
    expect(await store.nodes.markAbandoned(node.publicKey, 4, null)).toBe(false);
    // Judged since it was read: a live replica holds it.
    await store.nodes.recordEpoch({ key: node.publicKey, epoch: 3_600_000, clean: true, threshold: 3, now: 6 });
    expect(await store.nodes.markAbandoned(node.publicKey, 5, null)).toBe(false);
    expect(await store.nodes.markAbandoned(node.publicKey, 5, 3_600_000)).toBe(true);
    expect(await store.nodes.get(node.publicKey)).toMatchObject({ online: false, lastSeenAt: 5, lastEpoch: 3_600_000 });
    expect(await store.nodes.markAbandoned(node.publicKey, 5, 3_600_000)).toBe(false);
  });

  it("tells watchers when work is queued and when a job ends (PostgreSQL LISTEN/NOTIFY; SQLite has no one else)", async () => {
    await open();
    if (kind === "sqlite") {
      expect(store.caps.notifications).toBe(false);
      const stop = await store.watch(
        () => expect.unreachable(),
        () => {},
      );
      await store.jobs.admit([newJob()]);
      await stop();
      return;
    }
    expect(store.caps.notifications).toBe(true);
    const seen: string[] = [];
    const stop = await store.watch(
      (change) => seen.push(change.kind === "queued" ? "queued" : `ended ${change.jobId}`),
      () => {},
    );
    const j = newJob();
    await store.jobs.admit([j]);
    await store.jobs.cancel(j.id, err, 2_000);
    for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    await stop();
    expect(seen).toEqual(["queued", `ended ${j.id}`]);
  });

  /** Drives a fresh job into `status` through the store's own operations. */
  async function jobIn(status: JobStatus): Promise<{ id: string; attemptId: string }> {
    const j = newJob(1_000, { queueDeadlineAt: status === "failed" ? 1_500 : 60_000 });
    const attemptId = `att-${j.id}`;
    await store.jobs.insert(j);
    if (status === "queued") return { id: j.id, attemptId };
    if (status === "failed") {
      await store.jobs.expireQueued(err, 2_000);
      return { id: j.id, attemptId };
    }
    await store.jobs.claim([claimOf(j.id, attemptId)], 1_100);
    if (status === "running") await store.jobs.markRunning(j.id, attemptId, 1_200);
    if (status === "completed") await store.jobs.complete([completion(j.id, attemptId)], seal);
    if (status === "cancelled") await store.jobs.cancel(j.id, err, 1_200);
    return { id: j.id, attemptId };
  }

  /** Attempts the transition to `to` through the operation that makes it. */
  async function attempt(job: { id: string; attemptId: string }, from: JobStatus, to: JobStatus) {
    switch (to) {
      case "queued":
        return store.jobs.failAttempt({ jobId: job.id, attemptId: job.attemptId, error: err, retry: true, now: 3_000 });
      case "leased":
        return store.jobs.claim([claimOf(job.id, from === "queued" ? job.attemptId : `${job.attemptId}-2`)], 3_000);
      case "running":
        return store.jobs.markRunning(job.id, job.attemptId, 3_000);
      case "completed":
        return store.jobs.complete([completion(job.id, job.attemptId, "x", 3_000)], seal);
      case "failed":
        return from === "queued"
          ? store.jobs.expireQueued(err, 70_000)
          : store.jobs.failAttempt({ jobId: job.id, attemptId: job.attemptId, error: err, retry: false, now: 3_000 });
      case "cancelled":
        return store.jobs.cancel(job.id, err, 3_000);
    }
  }

  it("allows exactly the transitions in the table (all 36 pairs)", async () => {
    await open();
    for (const from of jobStatuses) {
      for (const to of jobStatuses) {
        const job = await jobIn(from);
        expect((await store.jobs.get(job.id))?.status, `setup ${from}`).toBe(from);
        await attempt(job, from, to);
        const after = (await store.jobs.get(job.id))?.status;
        expect(after, `${from} → ${to}`).toBe(canTransition(from, to) ? to : from);
      }
    }
  });
});
