import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as browser from "../src/browser.ts";
import {
  activateKey,
  certifyKey,
  checkKeySet,
  contentId,
  cosignReceipt,
  generateKeyPair,
  genesisHash,
  inclusionPath,
  keyId,
  logEntryHash,
  merkleRoot,
  sha256Hex,
  signLogHead,
  signLogPeriod,
  signReceipt,
  verifyInclusion,
  verifyInclusionProof,
  verifyLogRange,
  type CoordinatorKeyView,
  type LogEntryView,
  type Receipt,
} from "../src/index.ts";

const hashes = (n: number) => Array.from({ length: n }, (_, i) => sha256Hex(`entry ${i}`));

describe("Merkle proofs (RFC 6962 trees, RFC 9162 verification)", () => {
  it("known roots: one leaf is its leaf hash; two leaves hash under the node prefix", () => {
    const [a, b] = hashes(2) as [string, string];
    const leaf = (h: string) => sha256Hex(Uint8Array.from([0, ...Buffer.from(h, "hex")]));
    expect(merkleRoot([a])).toBe(leaf(a));
    expect(merkleRoot([a, b])).toBe(
      sha256Hex(Uint8Array.from([1, ...Buffer.from(leaf(a), "hex"), ...Buffer.from(leaf(b), "hex")])),
    );
    expect(merkleRoot([])).toBe(sha256Hex(new Uint8Array()));
  });

  it("every leaf of every tree up to 70 leaves proves its inclusion, and only at its own index", () => {
    for (let n = 1; n <= 70; n++) {
      const leaves = hashes(n);
      const root = merkleRoot(leaves);
      for (let i = 0; i < n; i++) {
        const path = inclusionPath(leaves, i);
        expect(verifyInclusion(leaves[i]!, i, n, path, root)).toBe(true);
        if (n > 1) expect(verifyInclusion(leaves[i]!, (i + 1) % n, n, path, root)).toBe(false);
      }
    }
  });

  it("a changed leaf or sibling never verifies (fast-check; the size is the signed period's)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 300 }), fc.nat(), fc.nat(), (n, i0, j0) => {
        const leaves = hashes(n);
        const i = i0 % n;
        const root = merkleRoot(leaves);
        const path = inclusionPath(leaves, i);
        expect(verifyInclusion(sha256Hex("not a leaf"), i, n, path, root)).toBe(false);
        const j = j0 % path.length;
        const bent = path.map((p, k) => (k === j ? sha256Hex(p) : p));
        expect(verifyInclusion(leaves[i]!, i, n, bent, root)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it("the browser build computes the same roots and proofs", () => {
    const leaves = hashes(13);
    expect(browser.merkleRoot(leaves)).toBe(merkleRoot(leaves));
    expect(browser.inclusionPath(leaves, 7)).toEqual(inclusionPath(leaves, 7));
  });
});

describe("checking a log range offline", () => {
  const node = generateKeyPair();
  const first = generateKeyPair();
  const second = generateKeyPair();
  const keys: CoordinatorKeyView[] = [
    { key_id: keyId(first.publicKey), public_key: first.publicKey, replica: "a", valid_from: 0, valid_until: 4_000 },
    {
      key_id: keyId(second.publicKey),
      public_key: second.publicKey,
      replica: "a",
      valid_from: 4_000,
      valid_until: null,
      certificate: certifyKey(second.publicKey, first, 3_900),
    },
  ];

  /** Entries 1..n: the first key co-signs up to t = 3 000, the second after (a rotation). */
  function log(n: number): LogEntryView[] {
    const out: LogEntryView[] = [];
    let prev = genesisHash;
    for (let seq = 1; seq <= n; seq++) {
      const at = seq * 1_000;
      const receipt: Receipt = {
        v: 1,
        job_id: `job-${seq.toString(16).padStart(12, "0")}`,
        attempt_id: `att-${seq}`,
        workflow_id: null,
        node_key: node.publicKey,
        model: "havn-tiny",
        model_hash: "a".repeat(64),
        backend: "builtin",
        params_hash: "b".repeat(64),
        input_hash: "c".repeat(64),
        outputs_cid: contentId(`out ${seq}`),
        latency_ms: 12,
        tokens: { prompt: 3, completion: 4 },
        energy_estimate: 0.5,
        runtime_hash: "d".repeat(64),
        finished_at: at,
      };
      const sig = signReceipt(receipt, node.secretKey);
      const entry = logEntryHash(prev, receipt, sig);
      const key = at < 4_000 ? first : second;
      out.push({
        seq,
        job_id: receipt.job_id,
        prev_hash: prev,
        entry_hash: entry,
        receipt: cosignReceipt(receipt, sig, { seq, prev_hash: prev, entry_hash: entry }, key),
        created_at: at,
      });
      prev = entry;
    }
    return out;
  }

  const period = (entries: LogEntryView[], from: number, to: number, key = second) =>
    signLogPeriod(
      {
        from,
        to,
        root: merkleRoot(entries.slice(from - 1, to).map((e) => e.entry_hash)),
        last_hash: entries[to - 1]!.entry_hash,
        signed_at: 9_000,
        key_id: keyId(key.publicKey),
      },
      key.secretKey,
    );

  it("a range across a key rotation, with its periods and signed head, checks", () => {
    const entries = log(8);
    const periods = [period(entries, 1, 5), period(entries, 6, 8)];
    const head = signLogHead(
      { seq: 8, entry_hash: entries[7]!.entry_hash, signed_at: 9_500, key_id: keyId(second.publicKey) },
      second.secretKey,
    );
    expect(verifyLogRange({ from: 1, to: 8, entries, periods, keys, head })).toEqual({
      ok: true,
      entries: 8,
      periods: 2,
      problems: [],
    });
  });

  it("a tampered entry, a reordered range, a key outside its validity and a false head each fail, saying where", () => {
    const entries = log(6);
    const periods = [period(entries, 1, 6)];
    const tampered = entries.map((e): LogEntryView =>
      e.seq === 3 && e.kind !== "settlement"
        ? { ...e, receipt: { ...e.receipt, receipt: { ...e.receipt.receipt, latency_ms: 1 } } }
        : e,
    );
    expect(verifyLogRange({ from: 1, to: 6, entries: tampered, periods, keys }).problems).toEqual([
      "Entry #3: its hash does not match its receipt (the entry was altered).",
      "Entry #3: the node's signature does not verify.",
      "Entry #3: the coordinator's co-signature does not verify.",
    ]);

    const reordered = [entries[0]!, entries[2]!, entries[1]!, ...entries.slice(3)];
    const r = verifyLogRange({ from: 1, to: 6, entries: reordered, periods, keys });
    expect(r.ok).toBe(false);
    expect(r.problems).toContain("Entry #3 is where #2 belongs: the range is out of order or has a gap.");
    expect(r.problems).toContain("Entry #3 does not link to entry #1 (prev_hash differs).");

    // The first key was retired at 4 000: an entry it signs at 9 000 (past the skew) is refused.
    const lateKeys = keys.map((k) => (k.replica === "a" && k.valid_until === 4_000 ? { ...k, valid_until: 1_000 } : k));
    expect(verifyLogRange({ from: 1, to: 6, entries, periods, keys: lateKeys }).ok).toBe(true); // within 5 min skew
    const gone = keys.slice(1);
    expect(verifyLogRange({ from: 1, to: 6, entries, periods, keys: gone }).problems[0]).toBe(
      "Entry #1: co-signed by a key the key set does not vouch for at that time.",
    );

    const head = signLogHead(
      { seq: 6, entry_hash: sha256Hex("another chain"), signed_at: 9_500, key_id: keyId(second.publicKey) },
      second.secretKey,
    );
    expect(verifyLogRange({ from: 1, to: 6, entries, periods, keys, head }).problems).toEqual([
      "Entry #6 differs from the signed head.",
    ]);
    const badPeriod = { ...periods[0]!, root: sha256Hex("x") };
    expect(verifyLogRange({ from: 1, to: 6, entries, periods: [badPeriod], keys }).problems).toEqual([
      "Period #1–#6: its signature does not verify with the key set.",
    ]);
  });

  it("a rotated-in key is trusted only with its predecessor's certificate, and pinned keys bound the trust", () => {
    const entries = log(6);
    const periods = [period(entries, 1, 6)];
    expect(checkKeySet(keys)).toEqual({ trusted: keys, problems: [] });
    // A key slipped into the set for replica a (or a lost key file replaced) has no certificate.
    const intruder = generateKeyPair();
    const slipped = [
      keys[0]!,
      { ...keys[1]!, certificate: null },
      { ...keys[1]!, key_id: keyId(intruder.publicKey), public_key: intruder.publicKey, valid_from: 5_000 },
    ];
    const found = checkKeySet(slipped);
    expect(found.trusted.map((k) => k.key_id)).toEqual([keys[0]!.key_id]);
    expect(found.problems).toContain(
      `Key ${keys[1]!.key_id} (replica a) follows ${keys[0]!.key_id} without a certificate from it.`,
    );
    const r = verifyLogRange({ from: 1, to: 6, entries, periods, keys: slipped });
    expect(r.ok).toBe(false);
    expect(r.problems).toContain("Entry #4: co-signed by a key the key set does not vouch for at that time.");
    // A certificate signed by another key than the one before does not pass either.
    const forged = [keys[0]!, { ...keys[1]!, certificate: certifyKey(second.publicKey, intruder, 3_900) }];
    expect(checkKeySet(forged).trusted).toHaveLength(1);

    // Pinned: the first key pins the chain; a pin the set lacks, or a replica that chains to no
    // pin, is not trusted.
    expect(verifyLogRange({ from: 1, to: 6, entries, periods, keys }, [first.publicKey]).ok).toBe(true);
    expect(verifyLogRange({ from: 1, to: 6, entries, periods, keys }, [second.publicKey]).problems).toContain(
      "Entry #1: co-signed by a key the key set does not vouch for at that time.",
    );
    expect(verifyLogRange({ from: 1, to: 6, entries, periods, keys }, [intruder.publicKey]).problems[0]).toBe(
      `The key set does not hold the pinned key ${intruder.publicKey}.`,
    );
  });

  it("signed activations bound each key's window; forks, copies and misdated certificates are refused", () => {
    const entries = log(6);
    const periods = [period(entries, 1, 6)];
    // The rotation as a coordinator registers it: each key signs its own start.
    const signed: CoordinatorKeyView[] = [
      { ...keys[0]!, activation: activateKey(first, "a", 0) },
      { ...keys[1]!, activation: activateKey(second, "a", 4_000) },
    ];
    expect(verifyLogRange({ from: 1, to: 6, entries, periods, keys: signed }, [first.publicKey]).ok).toBe(true);
    // A stolen retired key cannot stretch its window by editing the unsigned valid_until: it ends
    // where its successor's own signed activation says (here 4 000, + 5 min skew).
    const stretched = [{ ...signed[0]!, valid_until: null }, signed[1]!];
    const trusted = checkKeySet(stretched, [first.publicKey]).trusted;
    expect(trusted.map((k) => [k.valid_from, k.valid_until])).toEqual([
      [0, 4_000],
      [4_000, null],
    ]);
    // Nor make a second successor: a fork trusts neither, nor what follows.
    const thief = generateKeyPair();
    const forked = [
      ...signed,
      {
        key_id: keyId(thief.publicKey),
        public_key: thief.publicKey,
        replica: "a",
        valid_from: 3_000,
        valid_until: null,
        certificate: certifyKey(thief.publicKey, first, 2_900),
        activation: activateKey(thief, "a", 3_000),
      },
    ];
    const fork = checkKeySet(forked, [first.publicKey]);
    expect(fork.problems).toContain(`Key ${keys[0]!.key_id} (replica a) certified more than one successor: a fork.`);
    expect(fork.trusted.map((k) => k.key_id)).toEqual([keys[0]!.key_id]);
    // A key listed twice (a copy under a made-up replica) is trusted under neither.
    const copied = [...signed, { ...signed[0]!, replica: "zz", valid_until: null }];
    expect(checkKeySet(copied).trusted.map((k) => k.key_id)).toEqual([keys[1]!.key_id]);
    // A certificate dated long after its successor began is not a rotation.
    const late = [signed[0]!, { ...signed[1]!, certificate: certifyKey(second.publicKey, first, 4_000 + 3_600_000) }];
    expect(checkKeySet(late).problems[0]).toMatch(/its certificate is dated outside/);
    // An activation another key signed does not count.
    const borrowed = [signed[0]!, { ...signed[1]!, activation: activateKey(first, "a", 4_000) }];
    expect(checkKeySet(borrowed).problems).toContain(`Key ${keys[1]!.key_id}: its activation is not signed by itself.`);
  });

  it("an inclusion proof holds inside its range and fails outside it", () => {
    const entries = log(9);
    const p = period(entries, 1, 9);
    const leaves = entries.map((e) => e.entry_hash);
    const proof = {
      job_id: entries[6]!.job_id,
      seq: 7,
      entry_hash: leaves[6]!,
      period: p,
      path: inclusionPath(leaves, 6),
    };
    expect(verifyInclusionProof(proof, keys)).toEqual([]);
    expect(verifyInclusionProof(proof, keys, { from: 1, to: 9 })).toEqual([]);
    expect(verifyInclusionProof(proof, keys, { from: 1, to: 5 })).toEqual([
      `${proof.job_id} is at #7, outside the range #1–#5.`,
    ]);
    // Tied to the range: the entry it names must be the range's, its period the range's period.
    expect(verifyInclusionProof(proof, keys, { from: 1, to: 9, entries, periods: [p] })).toEqual([]);
    const other = entries.map((e) => (e.seq === 7 ? { ...e, entry_hash: leaves[0]! } : e));
    expect(verifyInclusionProof(proof, keys, { from: 1, to: 9, entries: other })).toEqual([
      `The proof of ${proof.job_id} names an entry #7 the range does not hold.`,
    ]);
    expect(verifyInclusionProof(proof, keys, { from: 1, to: 9, periods: [{ ...p, root: leaves[1]! }] })).toEqual([
      "The proof's period #1–#9 is not the one the range holds.",
    ]);
    // A range that comes short: what is missing is named, not skipped.
    expect(verifyLogRange({ from: 1, to: 9, entries: entries.slice(0, 7), periods: [], keys }).problems).toEqual([
      "The range #1–#9 holds 9 entries, but 7 came: entries are missing or extra.",
    ]);
    expect(verifyInclusionProof({ ...proof, entry_hash: leaves[5]! }, keys)).toEqual([
      `The inclusion proof of ${proof.job_id} (#7) does not lead to its period's root.`,
    ]);
  });
});
