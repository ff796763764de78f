import { randomUUID } from "node:crypto";
import { HavnError, type ComputeClass } from "@havn/protocol";
import {
  insufficientFunds,
  ledgerAccounts,
  type LedgerAccount,
  type LedgerTxRow,
  type NodeRow,
  type StakeSubject,
  type Store,
} from "@havn/store";
import type { FastifyBaseLogger } from "fastify";
import type { CoordinatorConfig } from "../config.js";
import type { Params } from "../governance/params.js";
import type { LedgerActor } from "../ledger/ledger-service.js";
import type { Wallets } from "../ledger/wallets.js";
import type { NodeHold, NodeRegistry, NodeSession } from "../nodes/node-registry.js";

/** What a slash is for: a result the node signed and the coordinator proved wrong, fraud a validator proved, downtime. */
export type Offence = "invalid_result" | "fraud" | "downtime";

/** What to bond to: a node (by key or name), or the caller as a validator. */
export type StakeTarget = { readonly node: string } | { readonly validator: true };

/**
 * Slots a node's stake pays for: `slotsAtFloor` at its floor, one more per floor ÷ `slotsAtFloor`
 * beyond it, never more than it advertised. A floor of 0 asks nothing: every advertised slot.
 */
export function stakedSlots(stake: bigint, floor: bigint, slotsAtFloor: number, advertised: number): number {
  if (floor <= 0n) return advertised;
  const paid = (stake * BigInt(slotsAtFloor)) / floor;
  return Number(paid > BigInt(advertised) ? BigInt(advertised) : paid);
}

/** The stake a node needs for `slots` slots: its floor, or more for more than `slotsAtFloor`. */
export function stakeForSlots(floor: bigint, slotsAtFloor: number, slots: number): bigint {
  if (slots <= slotsAtFloor) return floor;
  return (floor * BigInt(slots) + BigInt(slotsAtFloor) - 1n) / BigInt(slotsAtFloor);
}

/** An unbonding entry's maturity and subject, from its account name (`unbonding:<ms, 15 digits>:<subject>`). */
function maturityOf(account: LedgerAccount): number {
  return Number(account.slice("unbonding:".length, "unbonding:".length + 15));
}
function subjectOfUnbonding(account: LedgerAccount): StakeSubject {
  return account.slice("unbonding:".length + 16) as StakeSubject;
}

/**
 * When an unbond started at `now` matures: after the delay, rounded up to a bucket of a 168th of
 * it (at least a second; an hour for 7 days) — so a subject has at most ~170 unbonding entries,
 * and no one can hide stake from a slash behind thousands of dust unbonds.
 */
export function maturityFor(now: number, delayMs: number): number {
  const bucket = Math.max(1_000, Math.floor(delayMs / 168));
  return Math.ceil((now + delayMs) / bucket) * bucket;
}

/** Unbonding entries of one subject, at most (a bucketed maturity keeps them near 170). */
const entriesPerSubject = 1_000;
/** Matured entries one release pass pays, at most; the rest go next pass. */
const releasePerPass = 5_000;

/**
 * Stake (seeds 001, 002), kept in the ledger: `stake:<subject>` holds what is bonded to a node or a
 * validator; an unbond moves it to `unbonding:<subject>:<ms>`, still slashable, and it goes back to
 * its owner once `<ms>` passes. This service also decides which connected nodes routing may use:
 * stake at or above the compute class's collateral floor (and slots as far as the stake pays),
 * not quarantined, not paused by governance.
 */
export class StakeService {
  /** Nodes whose stake is quarantined (missed heartbeats: `EpochKeeper`). */
  readonly quarantined = new Set<string>();
  /** Nodes governance paused. */
  readonly paused = new Set<string>();
  /** The parameters the connected nodes were last all assessed with. */
  private assessedWith: unknown;

  constructor(
    private readonly deps: {
      readonly store: Store;
      readonly params: Params;
      readonly registry: NodeRegistry;
      readonly wallets: Wallets;
      readonly config: CoordinatorConfig;
      readonly log: FastifyBaseLogger;
      /** Work may have become routable: the dispatcher looks again. */
      readonly notify: () => void;
      readonly onSlash?: (offence: Offence, amount: bigint) => void;
    },
  ) {}

  /** Stake counts only where money moves: on a free network every node is routable. */
  get enforced(): boolean {
    return this.deps.config.ledger.enabled;
  }

  floorOf(computeClass: ComputeClass): bigint {
    return this.deps.params.current[`stake.floor_${computeClass}`];
  }

  /** Sets a connected node's hold and slots from what is known now; logs a change. */
  assess(session: NodeSession): void {
    const floor = this.floorOf(session.hardware.compute_class);
    const held: NodeHold | null = this.paused.has(session.key)
      ? "paused"
      : this.quarantined.has(session.key)
        ? "quarantined"
        : this.enforced && session.stake < floor
          ? "below_floor"
          : null;
    const { params } = this.deps;
    const advertised = Math.min(session.advertisedSlots, params.num("stake.max_slots"));
    const slots = this.enforced
      ? Math.max(1, stakedSlots(session.stake, floor, params.num("stake.slots_at_floor"), advertised))
      : advertised;
    const fees = [params.num("fees.S_bp"), params.num("fees.M_bp"), params.num("fees.L_bp"), params.num("fees.XL_bp")];
    const fee = params.num(`fees.${session.hardware.compute_class}_bp`);
    session.routingTerms = {
      stake: !this.enforced || floor <= 0n ? 1 : Math.min(1, Number(session.stake) / (2 * Number(floor))),
      price: fee <= 0 ? 1 : Math.min(...fees.filter((f) => f > 0), fee) / fee,
    };
    const before = session.held;
    const slotsBefore = session.slots;
    session.held = held;
    session.slots = slots;
    if (before !== held || slotsBefore !== slots) this.deps.registry.update(session);
    if (before === held) return;
    if (held)
      this.deps.log.warn(
        {
          node: session.name,
          key: session.key,
          held,
          stake_uhai: session.stake.toString(),
          floor_uhai: floor.toString(),
        },
        "node gets no jobs",
      );
    else {
      this.deps.log.info({ node: session.name, key: session.key }, "node gets jobs again");
      this.deps.notify();
    }
  }

  /**
   * A node joining: its stake and quarantine are read (and in dev mode its stake is topped up to
   * what its slots need, minted: one person's network funds its own nodes).
   */
  async admit(session: NodeSession): Promise<void> {
    // Another replica may have quarantined it while it was away.
    const row = await this.deps.store.nodes.get(session.key);
    if (row && row.quarantinedAt !== null) this.quarantined.add(session.key);
    const account = ledgerAccounts.stake(`node:${session.key}`);
    let stake = this.enforced ? await this.deps.store.ledger.balance(account) : 0n;
    if (this.enforced && this.deps.config.mode === "dev") {
      const needed = stakeForSlots(
        this.floorOf(session.hardware.compute_class),
        this.deps.params.num("stake.slots_at_floor"),
        session.advertisedSlots,
      );
      if (stake < needed) {
        const r = await this.deps.store.ledger.post({
          kind: "faucet",
          idempotencyKey: `dev-bond:${session.key}:${needed}`,
          now: Date.now(),
          memo: { dev_bond: true },
          postings: [
            { account: ledgerAccounts.mint, amount: -(needed - stake) },
            { account, amount: needed - stake },
          ],
        });
        if (r.ok) stake = await this.deps.store.ledger.balance(account);
      }
    }
    session.stake = stake;
    this.assess(session);
  }

  /**
   * Reads what other replicas may have changed: quarantines (the store's is the truth: whichever
   * replica recorded an epoch), and what earnings held for nodes no longer quarantined wait to be
   * paid; then every connected node's stake (bonds elsewhere, unbonds, slashes).
   */
  async refresh(): Promise<void> {
    const quarantined = new Set(await this.deps.store.nodes.quarantinedKeys());
    const changed = new Set<string>();
    for (const k of [...this.quarantined, ...quarantined])
      if (this.quarantined.has(k) !== quarantined.has(k)) changed.add(k);
    for (const k of changed) {
      if (quarantined.has(k)) this.quarantined.add(k);
      else this.quarantined.delete(k);
    }
    // Every node is assessed again only when the parameters changed; otherwise only those whose
    // quarantine or stake moved (a 10,000-node network is not walked every few seconds).
    const paramsChanged = this.assessedWith !== this.deps.params.current;
    this.assessedWith = this.deps.params.current;
    const reassess = (s: NodeSession) => {
      if (paramsChanged || changed.has(s.key)) this.assess(s);
    };
    if (!this.enforced) {
      for (const s of this.deps.registry.all()) reassess(s);
      return;
    }
    for (const { account } of await this.deps.store.ledger.positiveBalances("quarantined:", 1_000)) {
      const key = account.slice("quarantined:".length);
      if (!this.quarantined.has(key)) await this.releaseQuarantined(key);
    }
    const sessions = this.deps.registry.all();
    // One process owns an unshared store: every bond, unbond and slash was made here, and each
    // re-read its node at once.
    if (sessions.length === 0 || !this.deps.store.caps.sharedByReplicas) {
      for (const s of sessions) reassess(s);
      return;
    }
    const balances = await this.deps.store.ledger.balances(sessions.map((s) => ledgerAccounts.stake(`node:${s.key}`)));
    for (const s of sessions) {
      const stake = balances[ledgerAccounts.stake(`node:${s.key}`)];
      if (stake !== undefined && stake !== s.stake) {
        s.stake = stake;
        changed.add(s.key);
      }
      reassess(s);
    }
  }

  /** Re-assesses one node after its stake or standing changed here. */
  private async reread(nodeKey: string): Promise<void> {
    const session = this.deps.registry.get(nodeKey);
    if (!session) return;
    session.stake = await this.deps.store.ledger.balance(ledgerAccounts.stake(`node:${nodeKey}`));
    this.assess(session);
  }

  /** The node a caller names, by key or name. */
  async findNode(ref: string): Promise<NodeRow> {
    const row = (await this.deps.store.nodes.get(ref)) ?? (await this.deps.store.nodes.getByName(ref));
    if (!row)
      throw new HavnError("NODE_NOT_FOUND", "No node with this key or name.", { context: { Node: ref.slice(0, 80) } });
    return row;
  }

  /**
   * Whose a stake is — who bonds and unbonds it, and where unbonded stake goes: a node's operator
   * (the account its key joined with; a node without one: its own `node:` account, which its
   * operator claims), or a validator's own account.
   */
  private async ownerOf(target: StakeTarget, actor: LedgerActor) {
    if ("validator" in target) {
      const account = await this.deps.wallets.of(actor.accountId);
      return { subject: `validator:${actor.accountId}` as StakeSubject, payer: account, node: null };
    }
    const node = await this.findNode(target.node);
    if (node.accountId !== actor.accountId && !actor.admin)
      throw new HavnError(
        "STAKE_FORBIDDEN",
        "Only the account that operates this node (or an admin) may move its stake.",
      );
    return {
      subject: `node:${node.key}` as StakeSubject,
      payer: await this.deps.wallets.of(actor.accountId),
      node,
    };
  }

  /** Bonds `amount` from the caller's balance. A replay of its idempotency key bonds nothing more. */
  async bond(
    actor: LedgerActor,
    target: StakeTarget,
    amount: bigint,
    idempotencyKey: string | null,
  ): Promise<LedgerTxRow> {
    const { subject, payer, node } = await this.ownerOf(target, actor);
    const r = await this.deps.store.ledger.post({
      kind: "bond",
      idempotencyKey: `bond:${actor.accountId}:${idempotencyKey ?? randomUUID()}`,
      now: Date.now(),
      memo: { subject, by: actor.accountId },
      postings: [
        { account: payer, amount: -amount },
        { account: ledgerAccounts.stake(subject), amount },
      ],
    });
    if (!r.ok) throw insufficientFunds(r, "The balance does not cover this bond.");
    if (node) await this.reread(node.key);
    return r.tx;
  }

  /**
   * Starts unbonding `amount`: it leaves the bond at once (routing sees the lower stake) and goes
   * back to its owner after the unbonding delay, slashable until then.
   */
  async unbond(
    actor: LedgerActor,
    target: StakeTarget,
    amount: bigint,
    idempotencyKey: string | null,
  ): Promise<{ tx: LedgerTxRow; maturesAt: number }> {
    const { subject, node } = await this.ownerOf(target, actor);
    const now = Date.now();
    const maturesAt = maturityFor(now, this.deps.params.num("stake.unbonding_delay_ms"));
    const r = await this.deps.store.ledger.post({
      kind: "unbond",
      idempotencyKey: `unbond:${actor.accountId}:${idempotencyKey ?? randomUUID()}`,
      now,
      memo: { subject, by: actor.accountId, matures_at: maturesAt },
      postings: [
        { account: ledgerAccounts.stake(subject), amount: -amount },
        { account: ledgerAccounts.unbonding(subject, maturesAt), amount },
      ],
    });
    if (!r.ok)
      throw new HavnError("STAKE_INSUFFICIENT", "Less is bonded than this unbond asks for.", {
        details: { bonded: r.balance.toString(), requested: amount.toString() },
      });
    if (node) await this.reread(node.key);
    // A replay returns the first unbond, with its own maturity.
    const account = r.tx.postings.find((p) => p.account.startsWith("unbonding:"))?.account;
    return { tx: r.tx, maturesAt: account ? maturityOf(account) : maturesAt };
  }

  /** Pays unbonded stake whose delay has passed back to its owners; returns how many entries. */
  async releaseMatured(now = Date.now()): Promise<number> {
    if (!this.enforced) return 0;
    // Names sort by maturity: the earliest come first, and the pass stops at the first not due.
    const entries = await this.deps.store.ledger.positiveBalances("unbonding:", releasePerPass);
    let released = 0;
    for (const { account, balance } of entries) {
      if (maturityOf(account) > now) break;
      const subject = subjectOfUnbonding(account);
      const to = await this.ownerAccount(subject);
      // The key names the amount: replicas releasing one entry together post it once.
      const r = await this.deps.store.ledger.post({
        kind: "unbonded",
        idempotencyKey: `unbonded:${account}:${balance}`,
        now,
        memo: { subject },
        postings: [
          { account, amount: -balance },
          { account: to, amount: balance },
        ],
      });
      if (r.ok && !r.replayed) released++;
    }
    return released;
  }

  private async ownerAccount(subject: StakeSubject): Promise<LedgerAccount> {
    if (subject.startsWith("validator:")) return this.deps.wallets.of(subject.slice("validator:".length));
    return this.operatorOf(subject.slice("node:".length));
  }

  /**
   * Who a node's money goes to: its operator's wallet, else their custodial one (`Wallets`), else
   * the node's own account — settlement's `operatorAccount`, read from the node's row.
   */
  async operatorOf(nodeKey: string): Promise<LedgerAccount> {
    const accountId = (await this.deps.store.nodes.get(nodeKey))?.accountId ?? null;
    return accountId ? this.deps.wallets.of(accountId) : ledgerAccounts.node(nodeKey);
  }

  /**
   * Takes the offence's amount from a subject's stake — bonded first, then unbonding — never more
   * than there is, to the treasury and (`injured`: the client whose job it hurt) its share. Once
   * per `cause` (a job id, an epoch): a repeat takes nothing. Returns what was taken.
   */
  async slash(
    subject: StakeSubject,
    offence: Offence,
    cause: string,
    injured: LedgerAccount | null = null,
    now = Date.now(),
    /** What proves the offence, kept with the slash (a signed receipt, say). */
    evidence?: Readonly<Record<string, unknown>>,
  ): Promise<bigint> {
    if (!this.enforced) return 0n;
    const amount = this.deps.params.current[`slash.${offence}`];
    if (amount <= 0n) return 0n;
    for (let tries = 0; tries < 3; tries++) {
      const sources = [
        {
          account: ledgerAccounts.stake(subject),
          balance: await this.deps.store.ledger.balance(ledgerAccounts.stake(subject)),
        },
        ...(await this.deps.store.ledger.positiveBalances("unbonding:", entriesPerSubject, `:${subject}`)),
      ];
      const postings = [];
      let taken = 0n;
      for (const s of sources) {
        const take = s.balance < amount - taken ? s.balance : amount - taken;
        if (take <= 0n) continue;
        postings.push({ account: s.account, amount: -take });
        taken += take;
        if (taken === amount) break;
      }
      if (taken === 0n) return 0n;
      const toInjured = injured ? (taken * this.deps.params.current["slash.injured_share_bp"]) / 10_000n : 0n;
      if (toInjured > 0n && injured) postings.push({ account: injured, amount: toInjured });
      postings.push({ account: ledgerAccounts.treasury, amount: taken - toInjured });
      const r = await this.deps.store.ledger.post({
        kind: "slash",
        idempotencyKey: `slash:${offence}:${subject}:${cause}`,
        now,
        memo: { subject, offence, cause, asked: amount.toString(), ...(evidence && { evidence }) },
        postings,
      });
      // Refused: the stake moved meanwhile (an unbond, another slash); read it again.
      if (!r.ok) continue;
      if (r.replayed) return 0n;
      this.deps.log.warn(
        { subject, offence, cause, taken_uhai: taken.toString(), injured_uhai: toInjured.toString() },
        "stake slashed",
      );
      this.deps.onSlash?.(offence, taken);
      if (subject.startsWith("node:")) await this.reread(subject.slice("node:".length));
      return taken;
    }
    return 0n;
  }

  /** What a node earned while quarantined goes to its operator once the quarantine lifts. */
  async releaseQuarantined(nodeKey: string, now = Date.now()): Promise<bigint> {
    const account = ledgerAccounts.quarantined(nodeKey);
    const held = await this.deps.store.ledger.balance(account);
    if (held <= 0n) return 0n;
    const r = await this.deps.store.ledger.post({
      kind: "unquarantine",
      idempotencyKey: `unquarantine:${nodeKey}:${held}:${now}`,
      now,
      postings: [
        { account, amount: -held },
        { account: await this.ownerAccount(`node:${nodeKey}`), amount: held },
      ],
    });
    return r.ok ? held : 0n;
  }

  /**
   * Where a node's earnings go now: its operator, or `quarantined:<key>` while its stake is
   * quarantined (no payouts until it recovers).
   */
  payee(nodeKey: string, operator: LedgerAccount): LedgerAccount {
    return this.quarantined.has(nodeKey) ? ledgerAccounts.quarantined(nodeKey) : operator;
  }

  /** A subject's stake: bonded, and each unbonding entry with when it is paid out. */
  async view(subject: StakeSubject) {
    const [bonded, unbonding] = await Promise.all([
      this.deps.store.ledger.balance(ledgerAccounts.stake(subject)),
      this.deps.store.ledger.positiveBalances("unbonding:", entriesPerSubject, `:${subject}`),
    ]);
    return {
      subject,
      bonded,
      unbonding: unbonding.map((u) => ({ amount: u.balance, maturesAt: maturityOf(u.account) })),
    };
  }

  /** The subjects an account's stake is bonded to: the nodes it operates, and itself as a validator. */
  async subjectsOf(accountId: string): Promise<StakeSubject[]> {
    const nodes = (await this.deps.store.nodes.list()).filter((n) => n.accountId === accountId);
    return [...nodes.map((n) => `node:${n.key}` as StakeSubject), `validator:${accountId}`];
  }

  /** An account's voting weight: all stake bonded to its nodes and to it as a validator. */
  async weightOf(accountId: string): Promise<bigint> {
    const accounts = (await this.subjectsOf(accountId)).map((s) => ledgerAccounts.stake(s));
    const balances = await this.deps.store.ledger.balances(accounts);
    return Object.values(balances).reduce((a, b) => a + b, 0n);
  }

  /** All stake bonded on the network: the quorum's denominator. */
  async totalBonded(): Promise<bigint> {
    return this.deps.store.ledger.sumPositive("stake:");
  }
}
