import type { FastifyBaseLogger } from "fastify";
import { existsSync, readFileSync, renameSync } from "node:fs";
import {
  activateKey,
  keyId,
  merkleRoot,
  signLogHead,
  signLogPeriod,
  verifyKeyCertificate,
  type KeyCertificate,
  type KeyPair,
  type SignedLogHead,
} from "@havn/protocol";
import { keyCertificatePath } from "@havn/protocol/local";
import type { Store } from "@havn/store";
import type { CoordinatorConfig } from "../config.js";

/** Periods sealed per sweep at most: a backlog (a long outage) is caught up over a few sweeps. */
const maxPeriodsPerSweep = 8;

/**
 * Makes the execution log checkable: registers this replica's key in the network's key set,
 * seals periods (a signed Merkle root over each run of `log.periodEntries` entries, or fewer
 * once the oldest is `log.periodMs` old) and signs the head on request. Any replica may seal; the
 * store lets one win each period.
 */
export class LogSealer {
  readonly keyId: string;
  /** How often a period is sealed at the latest, in ms (for `Retry-After`). */
  readonly periodMs: number;

  constructor(
    private readonly store: Store,
    private readonly keys: KeyPair,
    private readonly config: CoordinatorConfig,
    private readonly log: FastifyBaseLogger,
  ) {
    this.keyId = keyId(keys.publicKey);
    this.periodMs = config.log.periodMs;
  }

  /**
   * Adds this replica's key to the key set, retiring the replica's previous key (a rotation). A
   * rotated-in key brings the certificate `havn admin rotate-key` made with the old key
   * (`<key file>.certificate.json`); without one, verifiers do not trust the new key.
   */
  async register(now = Date.now()): Promise<void> {
    const certificate = this.certificate();
    const set = await this.store.log.keys();
    const current = set.find((k) => k.replica === this.config.replica && k.valid_until === null);
    if (current && current.key_id !== this.keyId) {
      const mine = { key_id: this.keyId, public_key: this.keys.publicKey, certificate };
      if (!certificate || !verifyKeyCertificate({ ...mine, replica: "", valid_from: now, valid_until: null }, current))
        this.log.warn(
          { key_id: this.keyId, replaces: current.key_id },
          "this coordinator key replaces another without a certificate from it: verifiers will not trust it (rotate keys with havn admin rotate-key)",
        );
    }
    await this.store.log.registerKey({
      keyId: this.keyId,
      publicKey: this.keys.publicKey,
      replica: this.config.replica,
      now,
      certificate,
      activation: activateKey(this.keys, this.config.replica, now),
    });
    // The certificate is in the set now: a second rotation starts from this key.
    if (certificate) {
      const path = keyCertificatePath(this.config.keyPath);
      try {
        renameSync(path, `${path}.registered`);
      } catch (err) {
        this.log.warn({ err, file: path }, "could not mark the key certificate registered");
      }
    }
  }

  /** The certificate beside the key file, when it is for this key. */
  private certificate(): KeyCertificate | null {
    const path = keyCertificatePath(this.config.keyPath);
    if (!existsSync(path)) return null;
    try {
      const file = JSON.parse(readFileSync(path, "utf8")) as { public_key?: unknown; certificate?: KeyCertificate };
      return file.public_key === this.keys.publicKey && file.certificate ? file.certificate : null;
    } catch (err) {
      this.log.warn({ err, file: path }, "the key certificate file is unreadable; the key registers without it");
      return null;
    }
  }

  /** The newest entry (seq 0 and the genesis hash for an empty log), signed now. */
  async signedHead(now = Date.now()): Promise<SignedLogHead> {
    const head = await this.store.log.head();
    return signLogHead(
      { seq: head?.seq ?? 0, entry_hash: head?.entryHash ?? "0".repeat(64), signed_at: now, key_id: this.keyId },
      this.keys.secretKey,
    );
  }

  /** Seals the periods that are due; returns how many this replica sealed. */
  async sealDue(now = Date.now()): Promise<number> {
    const { periodEntries, periodMs } = this.config.log;
    let sealed = 0;
    for (let i = 0; i < maxPeriodsPerSweep; i++) {
      const [last, head] = await Promise.all([this.store.log.lastPeriod(), this.store.log.head()]);
      const from = (last?.to ?? 0) + 1;
      if (!head || head.seq < from) break;
      const pending = head.seq - from + 1;
      if (pending < periodEntries) {
        const oldest = await this.store.log.entry(from);
        if (!oldest || now - oldest.createdAt < periodMs) break;
      }
      const to = Math.min(head.seq, from + periodEntries - 1);
      const hashes = await this.store.log.hashes(from, to);
      if (hashes.length !== to - from + 1) break;
      const period = signLogPeriod(
        {
          from,
          to,
          root: merkleRoot(hashes),
          last_hash: hashes[hashes.length - 1]!,
          signed_at: now,
          key_id: this.keyId,
        },
        this.keys.secretKey,
      );
      if (!(await this.store.log.sealPeriod(period))) continue; // another replica sealed it: read again
      sealed++;
      this.log.debug({ from, to, root: period.root }, "log period sealed");
    }
    return sealed;
  }
}
