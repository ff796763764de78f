import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, inject, it } from "vitest";
import { contentId } from "@havn/protocol";
import { SqliteStore, type Store } from "../src/index.ts";
import { openTestStore, storeKinds } from "../src/testing.ts";
import { claimOf, completion, newJob, seal } from "./fixtures.ts";

const caps = { backend: "x", engine_version: "1", models: [], slots: 1 };
const hw = { cpu: { model: "x", cores: 1 }, memory_mb: 1, gpus: [], compute_class: "S" as const };

describe.each(storeKinds)("identity on %s", (kind) => {
  let store: Store;
  const open = async () => (store = await openTestStore(kind, inject("pgAdminUrl")));
  afterEach(async () => {
    await store?.close();
  });

  const account = async (id: string, email: string | null = `${id}@example.com`, role: "user" | "admin" = "user") => {
    const r = await store.accounts.create({ id, email, role, passwordHash: "argon", now: 1 });
    if (!r.ok) throw new Error(r.reason);
    return r.account;
  };

  it("accounts: unique emails and wallets, found by either, counted by role", async () => {
    await open();
    const alice = await account("acc-alice");
    expect(await store.accounts.get("acc-alice")).toEqual(alice);
    expect(await store.accounts.byEmail("acc-alice@example.com")).toEqual(alice);
    expect(await store.accounts.create({ id: "acc-x", email: "acc-alice@example.com", role: "user", now: 2 })).toEqual({
      ok: false,
      reason: "email_taken",
    });
    const wallet = "0x" + "ab".repeat(20);
    expect(await store.accounts.bindWallet("acc-alice", wallet, 3)).toEqual({ ok: true });
    expect((await store.accounts.byWallet(wallet))?.id).toBe("acc-alice");
    await account("acc-bob", null);
    expect(await store.accounts.bindWallet("acc-bob", wallet, 4)).toEqual({ ok: false, reason: "wallet_taken" });
    // One wallet per account: binding it again is fine, another is refused, never replaced.
    expect(await store.accounts.bindWallet("acc-alice", wallet, 4)).toEqual({ ok: true });
    expect(await store.accounts.bindWallet("acc-alice", "0x" + "cd".repeat(20), 4)).toEqual({
      ok: false,
      reason: "has_wallet",
    });
    expect((await store.accounts.get("acc-alice"))?.wallet).toBe(wallet);
    expect(await store.accounts.create({ id: "acc-w", wallet, role: "user", now: 5 })).toEqual({
      ok: false,
      reason: "wallet_taken",
    });
    await account("acc-root", "root@example.com", "admin");
    expect(await store.accounts.count()).toBe(3);
    expect(await store.accounts.count("admin")).toBe(1);
  });

  it("API keys: found by prefix, listed, revoked once, their use recorded", async () => {
    await open();
    await account("acc-k");
    const key = await store.accounts.createKey({
      id: "key-1",
      accountId: "acc-k",
      name: "laptop",
      prefix: "abcdefghijkl",
      keyHash: "f".repeat(64),
      scopes: ["jobs"],
      now: 10,
    });
    expect(key).toMatchObject({ id: "key-1", scopes: ["jobs"], lastUsedAt: null, revokedAt: null });
    expect(await store.accounts.keyByPrefix("abcdefghijkl")).toEqual(key);
    expect(await store.accounts.deadKeys(["key-1", "key-never"])).toEqual(["key-never"]);
    await store.accounts.touchKey("key-1", 20);
    expect((await store.accounts.listKeys("acc-k"))[0]?.lastUsedAt).toBe(20);
    expect(await store.accounts.revokeKey("acc-other", "key-1", 30)).toBe(false);
    expect(await store.accounts.revokeKey("acc-k", "key-1", 30)).toBe(true);
    expect(await store.accounts.revokeKey("acc-k", "key-1", 31)).toBe(false);
    expect((await store.accounts.keyByPrefix("abcdefghijkl"))?.revokedAt).toBe(30);
    expect(await store.accounts.deadKeys(["key-1"])).toEqual(["key-1"]);
    expect(await store.accounts.deadKeys([])).toEqual([]);
  });

  it("refresh tokens: each spent once; a second spend revokes the whole login", async () => {
    await open();
    await account("acc-s");
    const s = { accountId: "acc-s", familyId: "fam-1", now: 1, expiresAt: 1_000 };
    await store.accounts.createSession({ ...s, id: "ses-1", tokenHash: "h1" });
    const first = await store.accounts.useSession("h1", 10);
    expect(first).toMatchObject({ ok: true, session: { id: "ses-1", familyId: "fam-1", usedAt: 10 } });
    await store.accounts.createSession({ ...s, id: "ses-2", tokenHash: "h2" });
    // A thief replays the first token: the family dies, the owner's fresh token with it.
    expect(await store.accounts.useSession("h1", 20)).toEqual({ ok: false, reason: "reused" });
    expect(await store.accounts.useSession("h2", 21)).toEqual({ ok: false, reason: "revoked" });
    expect(await store.accounts.useSession("nope", 21)).toEqual({ ok: false, reason: "unknown" });
    await store.accounts.createSession({ ...s, familyId: "fam-2", id: "ses-3", tokenHash: "h3" });
    expect(await store.accounts.useSession("h3", 2_000)).toEqual({ ok: false, reason: "expired" });
    await store.accounts.createSession({ ...s, familyId: "fam-3", id: "ses-4", tokenHash: "h4" });
    await store.accounts.revokeAccountSessions("acc-s", 30);
    expect(await store.accounts.useSession("h4", 31)).toEqual({ ok: false, reason: "revoked" });
  });

  it("refresh tokens: a second spend by the same client within the grace is refused without revoking the login", async () => {
    await open();
    await account("acc-g");
    const s = { accountId: "acc-g", familyId: "fam-g", now: 1, expiresAt: 10_000 };
    await store.accounts.createSession({ ...s, id: "ses-g1", tokenHash: "g1" });
    expect(await store.accounts.useSession("g1", 100, 30, "laptop")).toMatchObject({ ok: true });
    await store.accounts.createSession({ ...s, id: "ses-g2", tokenHash: "g2" });
    expect(await store.accounts.useSession("g1", 130, 30, "laptop")).toEqual({ ok: false, reason: "raced" });
    expect(await store.accounts.useSession("g2", 131, 30, "laptop")).toMatchObject({ ok: true });
    // Past the grace, a spent token is a stolen one.
    expect(await store.accounts.useSession("g1", 200, 30, "laptop")).toEqual({ ok: false, reason: "reused" });
  });

  it("refresh tokens: a thief who spent one first is ended by the owner's spend, grace or not", async () => {
    await open();
    await account("acc-t");
    const s = { accountId: "acc-t", familyId: "fam-t", now: 1, expiresAt: 10_000 };
    await store.accounts.createSession({ ...s, id: "ses-t1", tokenHash: "t1" });
    expect(await store.accounts.useSession("t1", 100, 30, "thief")).toMatchObject({ ok: true });
    await store.accounts.createSession({ ...s, id: "ses-t2", tokenHash: "t2" });
    expect(await store.accounts.useSession("t1", 105, 30, "owner")).toEqual({ ok: false, reason: "reused" });
    expect(await store.accounts.useSession("t2", 106, 30, "thief")).toEqual({ ok: false, reason: "revoked" });
  });

  it("expired nonces, sessions and unused invitations are purged; live and used ones stay", async () => {
    await open();
    await account("acc-p", "p@example.com", "admin");
    await store.accounts.createNonce("old", 1, 100);
    await store.accounts.createNonce("live", 1, 1_000);
    const s = { accountId: "acc-p", now: 1 };
    await store.accounts.createSession({ ...s, id: "ses-old", familyId: "f1", tokenHash: "old", expiresAt: 100 });
    await store.accounts.createSession({ ...s, id: "ses-live", familyId: "f2", tokenHash: "live", expiresAt: 1_000 });
    await store.accounts.createInvite("inv-old", "acc-p", 1, 100);
    await store.accounts.createInvite("inv-used", "acc-p", 1, 100);
    expect(await store.accounts.consumeInvite("inv-used", "acc-q", 50)).toBe(true);
    await store.accounts.createInvite("inv-live", "acc-p", 1, 1_000);
    expect(await store.accounts.purgeExpired(500)).toBe(3);
    expect(await store.accounts.purgeExpired(500)).toBe(0);
    expect(await store.accounts.consumeNonce("live", 600)).toBe(true);
    expect(await store.accounts.useSession("live", 600)).toMatchObject({ ok: true });
    expect(await store.accounts.consumeInvite("inv-live", "acc-r", 600)).toBe(true);
  });

  it("a coordinator secret is made once: the first candidate stored is what every caller gets", async () => {
    await open();
    expect(await store.accounts.secret("jwt", "first", 1)).toBe("first");
    expect(await store.accounts.secret("jwt", "second", 2)).toBe("first");
  });

  it("wallet-login nonces and invitations are spent once, before they expire", async () => {
    await open();
    await store.accounts.createNonce("n1", 1, 100);
    expect(await store.accounts.consumeNonce("n1", 50)).toBe(true);
    expect(await store.accounts.consumeNonce("n1", 51)).toBe(false);
    await store.accounts.createNonce("n2", 1, 100);
    expect(await store.accounts.consumeNonce("n2", 100)).toBe(false);
    expect(await store.accounts.consumeNonce("never-issued", 1)).toBe(false);
    await account("acc-admin", "a@example.com", "admin");
    await store.accounts.createInvite("code-hash", "acc-admin", 1, 100);
    expect(await store.accounts.consumeInvite("code-hash", "acc-new", 10)).toBe(true);
    expect(await store.accounts.consumeInvite("code-hash", "acc-new2", 11)).toBe(false);
    // The account could not be made after all: the invitation is given back, to that account's spend only.
    await store.accounts.releaseInvite("code-hash", "acc-new2");
    expect(await store.accounts.consumeInvite("code-hash", "acc-new3", 12)).toBe(false);
    await store.accounts.releaseInvite("code-hash", "acc-new");
    expect(await store.accounts.consumeInvite("code-hash", "acc-new3", 12)).toBe(true);
  });

  it("a job's idempotency key admits it once per account, without rolling back the others of its batch", async () => {
    await open();
    const first = newJob(1_000, { accountId: "acc-a", idempotencyKey: "k-1" });
    expect(await store.jobs.admit([first])).toEqual(["inserted"]);
    const again = newJob(1_001, { accountId: "acc-a", idempotencyKey: "k-1" });
    const otherAccount = newJob(1_001, { accountId: "acc-b", idempotencyKey: "k-1" });
    const plain = newJob(1_001, { accountId: "acc-a" });
    const { jobId: _, ...lease } = claimOf("", "att-dup", 50_000);
    const placedDuplicate = { ...newJob(1_001, { accountId: "acc-a", idempotencyKey: "k-1" }), lease };
    expect(await store.jobs.admit([again, otherAccount, plain, placedDuplicate])).toEqual([
      "duplicate",
      "inserted",
      "inserted",
      "duplicate",
    ]);
    expect(await store.jobs.get(again.id)).toBeUndefined();
    expect(await store.jobs.get(placedDuplicate.id)).toBeUndefined();
    expect((await store.jobs.byIdempotencyKey("acc-a", "k-1"))?.id).toBe(first.id);
    expect((await store.jobs.byIdempotencyKey("acc-b", "k-1"))?.id).toBe(otherAccount.id);
    // The duplicate's attempt was not written either: the id is free for a real one.
    expect(await store.jobs.admit([{ ...newJob(), lease }])).toEqual(["inserted"]);
    // After the window, the key may be used again.
    expect(await store.jobs.clearIdempotencyKeys(1_001)).toBe(1);
    expect(await store.jobs.byIdempotencyKey("acc-a", "k-1")).toBeUndefined();
    expect(await store.jobs.admit([again])).toEqual(["inserted"]);
  });

  it("outputs are readable by their job's owner, or anyone once made public; deleted data leaves the receipt", async () => {
    await open();
    const mine = newJob(1_000, { accountId: "acc-a" });
    const theirs = newJob(1_000, { accountId: "acc-b" });
    await store.jobs.admit([mine, theirs]);
    await store.jobs.claim([claimOf(mine.id, "att-m"), claimOf(theirs.id, "att-t")], 1_500);
    // Both produce the same text: one stored output, two owners.
    await store.jobs.complete([completion(mine.id, "att-m", "same"), completion(theirs.id, "att-t", "same")], seal);
    const cid = contentId("same");
    expect(await store.jobs.outputReadableBy(cid, "acc-a")).toBe(true);
    expect(await store.jobs.outputReadableBy(cid, "acc-c")).toBe(false);
    expect(await store.jobs.outputReadableBy(cid, null)).toBe(false);
    expect((await store.jobs.setOutputPublic(mine.id, true, 3_000))?.outputPublic).toBe(true);
    expect(await store.jobs.outputReadableBy(cid, null)).toBe(true);
    await store.jobs.setOutputPublic(mine.id, false, 3_001);

    const deleted = await store.jobs.deleteData(mine.id, 4_000);
    expect(deleted).toMatchObject({ dataDeletedAt: 4_000, output: null, outputCid: cid, status: "completed" });
    expect(deleted?.receipt?.receipt.outputs_cid).toBe(cid);
    expect(JSON.stringify(deleted?.input)).not.toContain("hello");
    expect(await store.jobs.outputReadableBy(cid, "acc-a")).toBe(false);
    // The other owner's job still holds the bytes.
    expect(await store.jobs.output(cid)).toBeDefined();
    expect(await store.jobs.deleteData(mine.id, 4_001)).toBeUndefined();
    // Retention: what ended before the cut is deleted, the bytes with the last job that held them.
    expect(await store.jobs.expireData(10_000, 5_000, 100)).toBe(1);
    expect(await store.jobs.output(cid)).toBeUndefined();
    expect((await store.jobs.get(theirs.id))?.dataDeletedAt).toBe(5_000);
    expect((await store.log.entry(1))?.jobId).toBeDefined();
    // A job that has not ended keeps its data.
    const running = newJob(1_000, { accountId: "acc-a" });
    await store.jobs.admit([running]);
    expect(await store.jobs.deleteData(running.id, 6_000)).toBeUndefined();
    expect(await store.jobs.expireData(10_000, 6_000, 100)).toBe(0);
  });

  it("a node key belongs to the account it first joined with; a name to its key's account, which may move it", async () => {
    await open();
    const join = (key: string, name: string, accountId: string | null) =>
      store.nodes.upsert({ key, name, accountId, capabilities: caps, hardware: hw, now: 1 });
    expect(await join("key-a1", "gpu-box", "acc-a")).toEqual({ ok: true });
    // Another account may not take the key, nor the name.
    expect(await join("key-a1", "gpu-box", "acc-b")).toEqual({ ok: false, reason: "key_owned" });
    expect(await join("key-b1", "gpu-box", "acc-b")).toEqual({ ok: false, reason: "name_taken" });
    // The owner moves the name to a new key; the old key keeps a retired name.
    expect(await join("key-a2", "gpu-box", "acc-a")).toEqual({ ok: true });
    expect((await store.nodes.get("key-a2"))?.name).toBe("gpu-box");
    expect((await store.nodes.get("key-a1"))?.name).toBe("gpu-box~key-a1");
    // A key joins again with the join token (no account): it stays its account's.
    expect(await join("key-a2", "gpu-box", null)).toEqual({ ok: true });
    expect((await store.nodes.get("key-a2"))?.accountId).toBe("acc-a");
    // Keys no account holds: names are first come, first served, as before.
    expect(await join("key-n1", "shared-name", null)).toEqual({ ok: true });
    expect(await join("key-n2", "shared-name", null)).toEqual({ ok: false, reason: "name_taken" });
    // An unowned key is bound to the first account it joins with.
    expect(await join("key-n1", "shared-name", "acc-c")).toEqual({ ok: true });
    expect((await store.nodes.get("key-n1"))?.accountId).toBe("acc-c");
  });
});

describe("the SQLite file", () => {
  it("and its WAL and SHM are readable by their owner only, in a directory only the owner may enter", async () => {
    const root = mkdtempSync(join(tmpdir(), "havn-perm-"));
    try {
      const dir = join(root, "state");
      const store = new SqliteStore({ path: join(dir, "havn.db") });
      await store.migrate();
      await store.jobs.admit([newJob()]);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      for (const file of ["havn.db", "havn.db-wal", "havn.db-shm"])
        expect([file, statSync(join(dir, file)).mode & 0o777]).toEqual([file, 0o600]);
      await store.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
