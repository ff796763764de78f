import { randomUUID } from "node:crypto";
import { HavnError } from "@havn/protocol";
import {
  insufficientFunds,
  ledgerAccounts,
  type LedgerAccount,
  type LedgerKind,
  type LedgerTxRow,
  type Posting,
  type Store,
} from "@havn/store";
import type { FastifyBaseLogger } from "fastify";
import type { CoordinatorConfig } from "../config.js";
import type { Wallets } from "./wallets.js";

/** Who acts on the ledger: the account, and whether it may administer. */
export interface LedgerActor {
  readonly accountId: string;
  readonly admin: boolean;
}

/**
 * Money in and out of the ledger: the first balances, dev mode's funds and faucet, admins' credits
 * and debits (standing in for deposits until on-chain settlement exists), withdrawal requests,
 * and a wallet's claim of what its account held before binding it. Job money (escrow, charge,
 * refund) moves in the store, in the same transaction as the job.
 */
export class LedgerService {
  constructor(
    private readonly store: Store,
    private readonly wallets: Wallets,
    private readonly config: CoordinatorConfig,
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * At start: the genesis allocation (posted once, ever: its idempotency key is `genesis`), and in
   * dev mode the dev account topped up to `devFunds`.
   */
  async start(devAccountId?: string): Promise<void> {
    const { genesis, devFunds } = this.config.ledger;
    const postings: Posting[] = [];
    if (genesis.treasury && genesis.treasury > 0n)
      postings.push({ account: ledgerAccounts.treasury, amount: genesis.treasury });
    for (const [holder, amount] of Object.entries(genesis.balances ?? {}))
      if (amount > 0n) postings.push({ account: holderAccount(holder), amount });
    if (postings.length > 0) {
      const total = postings.reduce((n, p) => n + p.amount, 0n);
      const r = await this.store.ledger.post({
        kind: "genesis",
        idempotencyKey: "genesis",
        now: Date.now(),
        postings: [{ account: ledgerAccounts.mint, amount: -total }, ...postings],
      });
      if (r.ok && !r.replayed)
        this.log.info({ total_uhai: total.toString(), accounts: postings.length }, "genesis posted");
    }
    if (this.config.mode === "dev" && devAccountId) {
      const account = await this.wallets.of(devAccountId);
      const balance = await this.store.ledger.balance(account);
      if (balance < devFunds) await this.mint("faucet", account, devFunds - balance, `faucet:start:${randomUUID()}`);
    }
  }

  private async mint(
    kind: LedgerKind,
    account: LedgerAccount,
    amount: bigint,
    key: string,
    memo?: Record<string, unknown>,
  ) {
    return this.store.ledger.post({
      kind,
      idempotencyKey: key,
      now: Date.now(),
      ...(memo && { memo }),
      postings: [
        { account: ledgerAccounts.mint, amount: -amount },
        { account, amount },
      ],
    });
  }

  /** Dev mode's faucet: `devFunds` more for the caller. */
  async faucet(actor: LedgerActor, idempotencyKey: string | null): Promise<LedgerTxRow> {
    if (this.config.mode !== "dev")
      throw new HavnError("LEDGER_FAUCET_DISABLED", "The faucet exists in dev mode only.");
    const account = await this.wallets.of(actor.accountId);
    const r = await this.mint(
      "faucet",
      account,
      this.config.ledger.devFunds,
      `faucet:${actor.accountId}:${idempotencyKey ?? randomUUID()}`,
    );
    if (!r.ok) throw new HavnError("INTERNAL_ERROR", "The faucet could not post.");
    return r.tx;
  }

  /**
   * An admin adds to (`credit`, from mint) or takes from (`debit`, to the treasury) a balance,
   * with a reason kept on the transaction: the audit trail. A replay with the same
   * `Idempotency-Key` posts nothing.
   */
  async adjust(
    actor: LedgerActor,
    kind: "credit" | "debit",
    target: { accountId?: string | undefined; email?: string | undefined; wallet?: string | undefined },
    amount: bigint,
    reason: string,
    idempotencyKey: string | null,
  ): Promise<LedgerTxRow> {
    const holder = target.wallet ? ledgerAccounts.wallet(target.wallet) : await this.accountHolder(target);
    const other = kind === "credit" ? ledgerAccounts.mint : ledgerAccounts.treasury;
    const r = await this.store.ledger.post({
      kind,
      idempotencyKey: `${kind}:${actor.accountId}:${idempotencyKey ?? randomUUID()}`,
      now: Date.now(),
      memo: { by: actor.accountId, reason },
      postings:
        kind === "credit"
          ? [
              { account: other, amount: -amount },
              { account: holder, amount },
            ]
          : [
              { account: holder, amount: -amount },
              { account: other, amount },
            ],
    });
    if (!r.ok) throw insufficientFunds(r, "The balance does not cover this.");
    this.log.info(
      { kind, account: holder, amount_uhai: amount.toString(), by: actor.accountId, reason },
      `ledger ${kind}`,
    );
    return r.tx;
  }

  private async accountHolder(target: { accountId?: string | undefined; email?: string | undefined }) {
    const account = target.email
      ? await this.store.accounts.byEmail(target.email.trim().toLowerCase())
      : await this.store.accounts.get(target.accountId!);
    if (!account)
      throw new HavnError("REQUEST_INVALID", "No such account.", {
        context: { Account: (target.email ?? target.accountId)!.slice(0, 80) },
      });
    return this.wallets.of(account.id);
  }

  /** What an account holds, and what it asked to withdraw that is not paid out yet. */
  async balance(accountId: string) {
    const account = await this.wallets.of(accountId);
    // A job escrowed before the wallet was bound is refunded where it was paid from: move it on.
    if (account.startsWith("wallet:")) await this.sweepCustodial(accountId, account.slice("wallet:".length));
    const payouts = ledgerAccounts.payouts(account);
    const balances = await this.store.ledger.balances([account, payouts]);
    return { account, balance: balances[account]!, pendingPayouts: balances[payouts]! };
  }

  async transactions(accountId: string, limit: number, before?: number, kind?: LedgerKind): Promise<LedgerTxRow[]> {
    const account = await this.wallets.of(accountId);
    return this.store.ledger.transactions({
      account,
      limit,
      ...(before !== undefined && { before }),
      ...(kind !== undefined && { kind }),
    });
  }

  /** A withdrawal request: from the balance to pending payouts, paid out (on-chain) later. */
  async withdraw(actor: LedgerActor, amount: bigint, to: string | undefined, idempotencyKey: string | null) {
    const account = await this.wallets.of(actor.accountId);
    const r = await this.store.ledger.post({
      kind: "withdraw",
      idempotencyKey: `withdraw:${actor.accountId}:${idempotencyKey ?? randomUUID()}`,
      now: Date.now(),
      memo: { to: to?.toLowerCase() ?? (account.startsWith("wallet:") ? account.slice(7) : null) },
      postings: [
        { account, amount: -amount },
        { account: ledgerAccounts.payouts(account), amount },
      ],
    });
    if (!r.ok) throw insufficientFunds(r, "The balance does not cover this.");
    return r.tx;
  }

  /**
   * A wallet bound to an account takes over what the account's custodial wallet held (and, at
   * each later balance read, what a job paid before the binding was refunded to it).
   */
  async claim(accountId: string, wallet: string): Promise<void> {
    this.wallets.forget(accountId);
    await this.sweepCustodial(accountId, wallet);
  }

  private async sweepCustodial(accountId: string, wallet: string): Promise<void> {
    const custodial = ledgerAccounts.custodial(accountId);
    const held = await this.store.ledger.balance(custodial);
    if (held <= 0n) return;
    // Each claim moves what is there now (a refund of a job paid before the binding may come later).
    await this.store.ledger.post({
      kind: "claim",
      idempotencyKey: `claim:${accountId}:${wallet.toLowerCase()}:${randomUUID()}`,
      now: Date.now(),
      postings: [
        { account: custodial, amount: -held },
        { account: ledgerAccounts.wallet(wallet), amount: held },
      ],
    });
  }
}

/** A genesis holder: `treasury`, a wallet (`0x…`), or a ledger account by its full name. */
function holderAccount(holder: string): LedgerAccount {
  return /^0x[0-9a-fA-F]{40}$/.test(holder) ? ledgerAccounts.wallet(holder) : holder;
}
