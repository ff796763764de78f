import { canonicalJson } from "./canonical.js";
import type { CryptoSuite } from "./crypto/suite.js";
import { fromBase64Url, fromHex, toHex } from "./encoding.js";
import type { CosignedReceipt, LogPosition } from "./receipts.js";
import type { ReceiptVerification } from "./receipt-signing.js";

/** The genesis `prev_hash` of the execution log. */
const genesis = "0".repeat(64);

/**
 * A settled run, as the log records it (seed 001): who called, which workflow, which node, the
 * fee and where every µHAI of it went. Ids and amounts only.
 */
export interface SettlementRecord {
  readonly v: 1;
  readonly job_id: string;
  readonly workflow_id: string | null;
  /** The payer's ledger account (`wallet:0x…` or `custodial:acc-…`). */
  readonly caller: string;
  readonly node_key: string;
  readonly fee_uhai: string;
  /** The split: every credit of the fee, by ledger account. */
  readonly split: readonly { readonly account: string; readonly amount_uhai: string }[];
  readonly settled_at: number;
}

/** A settlement record at its log position, signed by the coordinator that settled it. */
export interface CosignedSettlement {
  readonly settlement: SettlementRecord;
  readonly log: LogPosition;
  readonly coordinator_key: string;
  readonly coordinator_signature: string;
}

/**
 * One entry of the execution log as `GET /v1/log` exports it: a completed attempt's co-signed
 * receipt, or a settled run's signed record. Hashes, ids and amounts only.
 */
export type LogEntryView = {
  readonly seq: number;
  readonly job_id: string;
  readonly prev_hash: string;
  readonly entry_hash: string;
  readonly created_at: number;
} & (
  | { readonly kind?: "receipt"; readonly receipt: CosignedReceipt }
  | { readonly kind: "settlement"; readonly settlement: CosignedSettlement }
);

/**
 * A replica's new key, vouched for by the key it replaces (`havn admin rotate-key` signs it with
 * the old key, which it holds): the chain from a replica's first key to its current one is signed.
 */
export interface KeyCertificate {
  /** The key id of the key that signed: the replica's previous key. */
  readonly by: string;
  readonly issued_at: number;
  /** Over canonical `{by, issued_at, key_id, public_key}` with the `key-certificate` tag. */
  readonly signature: string;
}

/** A coordinator key of the network's key set (`GET /v1/keys`), with when it signed. */
export interface CoordinatorKeyView {
  /** The first 16 hex digits of SHA-256 of the raw public key. */
  readonly key_id: string;
  readonly public_key: string;
  /** Which replica holds it. */
  readonly replica: string;
  readonly valid_from: number;
  /** When it was retired (rotated out); null while in use. */
  readonly valid_until: number | null;
  /** Signed by the replica's previous key; null for a replica's first key. */
  readonly certificate?: KeyCertificate | null;
  /**
   * When the key began to sign, signed by the key itself as its replica registered it (canonical
   * `{at, key_id, replica}`, tag `key-activation`): its window's start, and its predecessor's end.
   */
  readonly activation?: { readonly at: number; readonly signature: string } | null;
}

/** What `checkKeySet` found: the keys a verifier may trust, and why any others are not. */
export interface KeySetCheck {
  readonly trusted: readonly CoordinatorKeyView[];
  readonly problems: readonly string[];
}

/** The newest entry, signed by the coordinator that answered (`GET /v1/log/head`). */
export interface SignedLogHead {
  readonly seq: number;
  readonly entry_hash: string;
  readonly signed_at: number;
  readonly key_id: string;
  readonly signature: string;
}

/**
 * A period of the log, sealed: the Merkle root (RFC 6962) over the entry hashes of entries
 * `from`..`to`, signed. Periods are consecutive and never overlap.
 */
export interface SignedLogPeriod {
  readonly from: number;
  readonly to: number;
  readonly root: string;
  /** The entry hash of `to`: the period commits to the chain, not only to its leaves. */
  readonly last_hash: string;
  readonly signed_at: number;
  readonly key_id: string;
  readonly signature: string;
}

/** That an entry is in a sealed period: its leaf index and the audit path to the period's root. */
export interface LogInclusionProof {
  readonly job_id: string;
  readonly seq: number;
  readonly entry_hash: string;
  readonly period: SignedLogPeriod;
  /** Sibling hashes, leaf to root (RFC 9162 §2.1.3). */
  readonly path: readonly string[];
}

/** A log range and what it takes to check it offline. */
export interface LogBundle {
  readonly from: number;
  readonly to: number;
  readonly entries: readonly LogEntryView[];
  readonly periods: readonly SignedLogPeriod[];
  readonly keys: readonly CoordinatorKeyView[];
  readonly head?: SignedLogHead;
}

/** What a check found: `ok` only when `problems` is empty. Each problem is a sentence. */
export interface LogCheck {
  readonly ok: boolean;
  readonly entries: number;
  readonly periods: number;
  readonly problems: readonly string[];
}

/** Keys are trusted at their validity period, with this much clock skew either side. */
const skewMs = 5 * 60_000;

export function createLogProofs(
  suite: CryptoSuite,
  receipts: {
    logEntryHash(prevHash: string, receipt: CosignedReceipt["receipt"], nodeSignature: string): string;
    verifyCosignedReceipt(bundle: CosignedReceipt, expectedCoordinatorKey?: string): ReceiptVerification;
  },
) {
  const hash = (prefix: number, ...parts: Uint8Array[]): Uint8Array => {
    const length = parts.reduce((n, p) => n + p.length, 1);
    const buf = new Uint8Array(length);
    buf[0] = prefix;
    let at = 1;
    for (const p of parts) {
      buf.set(p, at);
      at += p.length;
    }
    return suite.sha256(buf);
  };
  const hex = toHex;
  const leafHash = (entryHash: string) => hash(0x00, fromHex(entryHash));
  const nodeHash = (left: Uint8Array, right: Uint8Array) => hash(0x01, left, right);
  /** The largest power of two smaller than n (n > 1). */
  const split = (n: number) => {
    let k = 1;
    while (k * 2 < n) k *= 2;
    return k;
  };
  const mth = (leaves: readonly Uint8Array[]): Uint8Array => {
    if (leaves.length === 0) return suite.sha256(new Uint8Array());
    if (leaves.length === 1) return leaves[0]!;
    const k = split(leaves.length);
    return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
  };
  const path = (m: number, leaves: readonly Uint8Array[]): Uint8Array[] => {
    if (leaves.length <= 1) return [];
    const k = split(leaves.length);
    return m < k
      ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))]
      : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
  };

  const headText = (h: Omit<SignedLogHead, "signature">) =>
    canonicalJson({ entry_hash: h.entry_hash, key_id: h.key_id, seq: h.seq, signed_at: h.signed_at });
  const periodText = (p: Omit<SignedLogPeriod, "signature">) =>
    canonicalJson({
      from: p.from,
      key_id: p.key_id,
      last_hash: p.last_hash,
      root: p.root,
      signed_at: p.signed_at,
      to: p.to,
    });

  const settlementText = (s: SettlementRecord, log: LogPosition) => canonicalJson({ log, settlement: s });
  const certificateText = (keyId: string, publicKey: string, by: string, issuedAt: number) =>
    canonicalJson({ by, issued_at: issuedAt, key_id: keyId, public_key: publicKey });

  const tools = {
    /** A settlement entry's hash: it follows `prevHash` as a receipt's does, over the record. */
    settlementEntryHash: (prevHash: string, s: SettlementRecord): string =>
      suite.sha256Hex(`${prevHash}\n${suite.sha256Hex(canonicalJson({ settlement: s }))}`),
    signSettlement(
      s: SettlementRecord,
      log: LogPosition,
      coordinator: { publicKey: string; secretKey: string },
    ): CosignedSettlement {
      return {
        settlement: s,
        log,
        coordinator_key: coordinator.publicKey,
        coordinator_signature: suite.signCanonical("log-settlement", settlementText(s, log), coordinator.secretKey),
      };
    },
    verifySettlement: (c: CosignedSettlement, publicKey: string): boolean =>
      suite.verifyCanonical("log-settlement", settlementText(c.settlement, c.log), c.coordinator_signature, publicKey),
    /** A key's id: the first 16 hex digits of SHA-256 of its raw 32 bytes (base64url in, as keys travel). */
    keyId: (publicKey: string): string => suite.sha256Hex(fromBase64Url(publicKey)).slice(0, 16),
    /** RFC 6962 Merkle tree hash over entry hashes (hex), as hex. */
    merkleRoot: (entryHashes: readonly string[]): string => hex(mth(entryHashes.map(leafHash))),
    /** The audit path of leaf `index` (RFC 6962 §2.1.1), as hex. */
    inclusionPath: (entryHashes: readonly string[], index: number): string[] =>
      path(index, entryHashes.map(leafHash)).map(hex),
    /** Whether `path` proves leaf `index` of a tree of `size` leaves has root `root` (RFC 9162 §2.1.3.2). */
    verifyInclusion(entryHash: string, index: number, size: number, proof: readonly string[], root: string): boolean {
      if (index < 0 || index >= size) return false;
      let fn = index;
      let sn = size - 1;
      let r = leafHash(entryHash);
      for (const p of proof) {
        if (sn === 0) return false;
        const sibling = fromHex(p);
        if (fn % 2 === 1 || fn === sn) {
          r = nodeHash(sibling, r);
          if (fn % 2 === 0) {
            do {
              fn >>= 1;
              sn >>= 1;
            } while (fn % 2 === 0 && fn !== 0);
          }
        } else r = nodeHash(r, sibling);
        fn >>= 1;
        sn >>= 1;
      }
      return sn === 0 && hex(r) === root;
    },
    signLogHead(h: Omit<SignedLogHead, "signature">, secretKey: string): SignedLogHead {
      return { ...h, signature: suite.signCanonical("log-head", headText(h), secretKey) };
    },
    verifyLogHead: (h: SignedLogHead, publicKey: string): boolean =>
      suite.verifyCanonical("log-head", headText(h), h.signature, publicKey),
    signLogPeriod(p: Omit<SignedLogPeriod, "signature">, secretKey: string): SignedLogPeriod {
      return { ...p, signature: suite.signCanonical("log-period", periodText(p), secretKey) };
    },
    verifyLogPeriod: (p: SignedLogPeriod, publicKey: string): boolean =>
      suite.verifyCanonical("log-period", periodText(p), p.signature, publicKey),

    /** Vouches for `publicKey` with the key it replaces (`previous`): the rotation's certificate. */
    certifyKey(
      publicKey: string,
      previous: { publicKey: string; secretKey: string },
      issuedAt: number,
    ): KeyCertificate {
      const by = tools.keyId(previous.publicKey);
      return {
        by,
        issued_at: issuedAt,
        signature: suite.signCanonical(
          "key-certificate",
          certificateText(tools.keyId(publicKey), publicKey, by, issuedAt),
          previous.secretKey,
        ),
      };
    },
    /** A key's activation: it declares, signing with itself, that it signs for `replica` from `at`. */
    activateKey(keys: { publicKey: string; secretKey: string }, replica: string, at: number) {
      return {
        at,
        signature: suite.signCanonical(
          "key-activation",
          canonicalJson({ at, key_id: tools.keyId(keys.publicKey), replica }),
          keys.secretKey,
        ),
      };
    },
    verifyKeyActivation: (k: CoordinatorKeyView): boolean =>
      !!k.activation &&
      suite.verifyCanonical(
        "key-activation",
        canonicalJson({ at: k.activation.at, key_id: k.key_id, replica: k.replica }),
        k.activation.signature,
        k.public_key,
      ),
    /** Whether `key`'s certificate is signed by `by` (and names it). */
    verifyKeyCertificate(key: CoordinatorKeyView, by: CoordinatorKeyView): boolean {
      const c = key.certificate;
      return (
        !!c &&
        c.by === by.key_id &&
        suite.verifyCanonical(
          "key-certificate",
          certificateText(key.key_id, key.public_key, c.by, c.issued_at),
          c.signature,
          by.public_key,
        )
      );
    },

    /**
     * Checks the key set itself. Each replica's keys form a chain: its first key, then each later
     * one certified by the one before (a rotation). A key that follows another without its
     * certificate — a lost key file replaced, or a key slipped into the set — is not trusted. With
     * `pinned` public keys (held by the verifier, not fetched), only keys that are pinned or chain
     * to a pinned key are trusted.
     */
    checkKeySet(keys: readonly CoordinatorKeyView[], pinned: readonly string[] = []): KeySetCheck {
      const problems: string[] = [];
      const trusted: CoordinatorKeyView[] = [];
      for (const p of pinned)
        if (!keys.some((k) => k.public_key === p)) problems.push(`The key set does not hold the pinned key ${p}.`);
      // A public key listed twice (under two replicas, say) could borrow either entry's window.
      const copies = new Map<string, number>();
      for (const k of keys) copies.set(k.public_key, (copies.get(k.public_key) ?? 0) + 1);
      const byReplica = new Map<string, CoordinatorKeyView[]>();
      for (const k of keys) {
        if (tools.keyId(k.public_key) !== k.key_id) {
          problems.push(`Key ${k.key_id} is not the id of its public key.`);
          continue;
        }
        if (copies.get(k.public_key)! > 1) {
          problems.push(`Key ${k.key_id} is listed ${copies.get(k.public_key)} times in the set.`);
          continue;
        }
        if (k.activation && !tools.verifyKeyActivation(k)) {
          problems.push(`Key ${k.key_id}: its activation is not signed by itself.`);
          continue;
        }
        byReplica.set(k.replica, [...(byReplica.get(k.replica) ?? []), k]);
      }
      const start = (k: CoordinatorKeyView) => k.activation?.at ?? k.valid_from;
      for (const [replica, chain] of byReplica) {
        chain.sort((a, b) => start(a) - start(b));
        // Two keys certified by one key: a fork (a retired key made a second successor). Neither
        // successor, nor anything after them, is trusted.
        const certifiedBy = new Map<string, number>();
        for (const k of chain)
          if (k.certificate) certifiedBy.set(k.certificate.by, (certifiedBy.get(k.certificate.by) ?? 0) + 1);
        // Keys of a replica with nothing pinned stay untrusted; what they signed fails where checked.
        let ok = pinned.length === 0 || pinned.includes(chain[0]!.public_key);
        chain.forEach((k, i) => {
          const before = chain[i - 1];
          const after = chain[i + 1];
          if (before) {
            const c = k.certificate;
            if (!tools.verifyKeyCertificate(k, before)) {
              problems.push(
                `Key ${k.key_id} (replica ${replica}) follows ${before.key_id} without a certificate from it.`,
              );
              ok = false;
            } else if (certifiedBy.get(before.key_id)! > 1) {
              problems.push(`Key ${before.key_id} (replica ${replica}) certified more than one successor: a fork.`);
              ok = false;
            } else if (c!.issued_at < start(before) - skewMs || c!.issued_at > start(k) + skewMs) {
              problems.push(
                `Key ${k.key_id} (replica ${replica}): its certificate is dated outside ${before.key_id}'s time.`,
              );
              ok = false;
            }
          }
          // A pinned key vouches for itself and, through certificates, for the keys after it.
          if (pinned.includes(k.public_key)) ok = true;
          if (!ok) return;
          // Its window, from signed times where the set has them: it starts at its activation and
          // ends at its successor's (each signed by that key itself).
          const until = after?.activation ? after.activation.at : k.valid_until;
          trusted.push({ ...k, valid_from: start(k), valid_until: until });
        });
      }
      return { trusted, problems };
    },

    /**
     * When a receipt entry was co-signed, as far as signed data says: a version 2 receipt's
     * `finished_at`, which the coordinator holds to its own clock (± 5 min) before it co-signs; a
     * version 1 receipt's was the node's word alone, so the entry's `created_at` stands for it.
     */
    cosignedAt: (e: { readonly created_at: number; readonly receipt: CosignedReceipt }): number =>
      e.receipt.receipt.v === 2 ? e.receipt.receipt.finished_at : e.created_at,

    /** The key of the set with this id that was valid at `at` (within the skew), if any. */
    keyAt(keys: readonly CoordinatorKeyView[], keyId: string, at: number): CoordinatorKeyView | undefined {
      return keys.find(
        (k) =>
          k.key_id === keyId &&
          k.valid_from - skewMs <= at &&
          (k.valid_until === null || at <= k.valid_until + skewMs) &&
          tools.keyId(k.public_key) === k.key_id,
      );
    },

    /**
     * Checks a log range offline: the key set (`checkKeySet`, with the verifier's `pinned` keys),
     * every entry's hash, node signature and co-signature (by a trusted key valid at the signed
     * time: a receipt's `finished_at`, a settlement's `settled_at`), the chain from each entry to
     * the next (from genesis when the range starts at 1), each sealed period inside the range
     * against the entries it covers, and the signed head. Every problem is reported, each with its
     * position.
     */
    verifyLogRange(bundle: LogBundle, pinned: readonly string[] = []): LogCheck {
      const set = tools.checkKeySet(bundle.keys, pinned);
      const problems: string[] = [...set.problems];
      const { entries, periods } = bundle;
      const keys = set.trusted;
      /** A settlement entry: its hash over its record, its position, its signature, its sums. */
      const settlementProblems = (e: Extract<LogEntryView, { kind: "settlement" }>): string[] => {
        const found: string[] = [];
        const c = e.settlement;
        const s = c.settlement;
        if (c.log.seq !== e.seq || c.log.entry_hash !== e.entry_hash || c.log.prev_hash !== e.prev_hash)
          found.push(`Entry #${e.seq}: its settlement names another log position (#${c.log.seq}).`);
        if (s.job_id !== e.job_id) found.push(`Entry #${e.seq}: its settlement is for another job.`);
        if (tools.settlementEntryHash(e.prev_hash, s) !== e.entry_hash)
          found.push(`Entry #${e.seq}: its hash does not match its settlement (the entry was altered).`);
        // Keys are checked at the time the coordinator signed (`settled_at`), not the unsigned `created_at`.
        const key = tools.keyAt(keys, tools.keyId(c.coordinator_key), s.settled_at);
        if (!key) found.push(`Entry #${e.seq}: signed by a key the key set does not vouch for at that time.`);
        else if (!tools.verifySettlement(c, key.public_key))
          found.push(`Entry #${e.seq}: the coordinator's signature on the settlement does not verify.`);
        let credited = 0n;
        for (const x of s.split) credited += BigInt(x.amount_uhai);
        if (credited !== BigInt(s.fee_uhai))
          found.push(`Entry #${e.seq}: its split credits ${credited} µHAI of a ${s.fee_uhai} µHAI fee.`);
        return found;
      };
      const expected = Math.max(0, bundle.to - bundle.from + 1);
      if (entries.length !== expected)
        problems.push(
          `The range #${bundle.from}–#${bundle.to} holds ${expected} entries, but ${entries.length} came: entries are missing or extra.`,
        );
      let previous: LogEntryView | undefined;
      entries.forEach((e, i) => {
        const expected = bundle.from + i;
        if (e.seq !== expected) {
          problems.push(`Entry #${e.seq} is where #${expected} belongs: the range is out of order or has a gap.`);
        }
        if (e.kind === "settlement") problems.push(...settlementProblems(e));
        else {
          const r = e.receipt;
          if (r.log.seq !== e.seq || r.log.entry_hash !== e.entry_hash || r.log.prev_hash !== e.prev_hash)
            problems.push(`Entry #${e.seq}: its receipt names another log position (#${r.log.seq}).`);
          if (r.receipt.job_id !== e.job_id) problems.push(`Entry #${e.seq}: its receipt is for another job.`);
          if (receipts.logEntryHash(e.prev_hash, r.receipt, r.node_signature) !== e.entry_hash)
            problems.push(`Entry #${e.seq}: its hash does not match its receipt (the entry was altered).`);
          const key = tools.keyAt(keys, tools.keyId(r.coordinator_key), tools.cosignedAt(e));
          if (!key) problems.push(`Entry #${e.seq}: co-signed by a key the key set does not vouch for at that time.`);
          const v = receipts.verifyCosignedReceipt(r, key?.public_key ?? r.coordinator_key);
          if (!v.node) problems.push(`Entry #${e.seq}: the node's signature does not verify.`);
          if (key && !v.coordinator) problems.push(`Entry #${e.seq}: the coordinator's co-signature does not verify.`);
        }
        if (previous !== undefined && e.prev_hash !== previous.entry_hash)
          problems.push(`Entry #${e.seq} does not link to entry #${previous.seq} (prev_hash differs).`);
        if (previous === undefined && e.seq === 1 && e.prev_hash !== genesis)
          problems.push(`Entry #1 does not start from the genesis hash.`);
        previous = e;
      });
      const bySeq = new Map(entries.map((e) => [e.seq, e]));
      let periodsChecked = 0;
      for (const p of periods) {
        const key = tools.keyAt(keys, p.key_id, p.signed_at);
        if (!key || !tools.verifyLogPeriod(p, key.public_key)) {
          problems.push(`Period #${p.from}–#${p.to}: its signature does not verify with the key set.`);
          continue;
        }
        if (p.from < bundle.from || p.to > bundle.to) continue;
        const covered: string[] = [];
        for (let s = p.from; s <= p.to; s++) {
          const e = bySeq.get(s);
          if (e) covered.push(e.entry_hash);
        }
        if (covered.length !== p.to - p.from + 1) continue;
        periodsChecked++;
        if (tools.merkleRoot(covered) !== p.root)
          problems.push(`Period #${p.from}–#${p.to}: its signed root does not match the entries.`);
        if (covered[covered.length - 1] !== p.last_hash)
          problems.push(`Period #${p.from}–#${p.to}: its signed last hash does not match entry #${p.to}.`);
      }
      const h = bundle.head;
      if (h) {
        const key = tools.keyAt(keys, h.key_id, h.signed_at);
        if (!key || !tools.verifyLogHead(h, key.public_key))
          problems.push(`The log head's signature does not verify with the key set.`);
        else if (h.seq < bundle.to) problems.push(`The range ends at #${bundle.to}, past the signed head #${h.seq}.`);
        else if (bySeq.get(h.seq) && bySeq.get(h.seq)!.entry_hash !== h.entry_hash)
          problems.push(`Entry #${h.seq} differs from the signed head.`);
      }
      return { ok: problems.length === 0, entries: entries.length, periods: periodsChecked, problems };
    },

    /**
     * Checks that a job's entry is in a sealed, signed period of the log; with `range`, also that
     * the entry lies inside it and — given the range's entries and periods — that the proof is for
     * the very entry and period the range holds. Problems as sentences, empty when it holds.
     */
    verifyInclusionProof(
      proof: LogInclusionProof,
      keys: readonly CoordinatorKeyView[],
      range?: {
        readonly from: number;
        readonly to: number;
        readonly entries?: readonly LogEntryView[];
        readonly periods?: readonly SignedLogPeriod[];
      },
    ): string[] {
      const problems: string[] = [];
      const p = proof.period;
      if (range && (proof.seq < range.from || proof.seq > range.to))
        problems.push(`${proof.job_id} is at #${proof.seq}, outside the range #${range.from}–#${range.to}.`);
      else if (range?.entries) {
        const entry = range.entries.find((e) => e.seq === proof.seq);
        if (!entry || entry.entry_hash !== proof.entry_hash || entry.job_id !== proof.job_id)
          problems.push(`The proof of ${proof.job_id} names an entry #${proof.seq} the range does not hold.`);
      }
      const same = range?.periods?.find((q) => q.from === p.from);
      if (same && (same.to !== p.to || same.root !== p.root || same.signature !== p.signature))
        problems.push(`The proof's period #${p.from}–#${p.to} is not the one the range holds.`);
      const key = tools.keyAt(keys, p.key_id, p.signed_at);
      if (!key || !tools.verifyLogPeriod(p, key.public_key))
        problems.push(`The period #${p.from}–#${p.to} holding ${proof.job_id} is not signed by the key set.`);
      if (
        proof.seq < p.from ||
        proof.seq > p.to ||
        !tools.verifyInclusion(proof.entry_hash, proof.seq - p.from, p.to - p.from + 1, proof.path, p.root)
      )
        problems.push(`The inclusion proof of ${proof.job_id} (#${proof.seq}) does not lead to its period's root.`);
      return problems;
    },
  };
  return tools;
}
