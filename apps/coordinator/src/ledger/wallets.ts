import { ledgerAccounts, type LedgerAccount, type Store } from "@havn/store";

/** How long an account's ledger account is remembered, in ms (binding a wallet forgets it here at once). */
const cacheMs = 10_000;

/**
 * Whose balance an account spends and earns into: its wallet once it has bound one, else the
 * custodial wallet havn keeps for it. Remembered briefly, so admission reads no account row.
 */
export class Wallets {
  private readonly cache = new Map<string, { account: LedgerAccount; until: number }>();

  constructor(private readonly store: Store) {}

  async of(accountId: string): Promise<LedgerAccount> {
    const now = Date.now();
    const hit = this.cache.get(accountId);
    if (hit && hit.until > now) return hit.account;
    const row = await this.store.accounts.get(accountId);
    const account = row?.wallet ? ledgerAccounts.wallet(row.wallet) : ledgerAccounts.custodial(accountId);
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(accountId, { account, until: now + cacheMs });
    return account;
  }

  forget(accountId: string): void {
    this.cache.delete(accountId);
  }
}
