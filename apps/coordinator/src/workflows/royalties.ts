import type { RoyaltySplit } from "@havn/protocol";
import { ledgerAccounts, type LedgerAccount, type WorkflowEarning } from "@havn/store";

/** How far up the dependency graph royalties flow; what would flow further goes to the treasury. */
export const maxRoyaltyDepth = 8;

/** A workflow as royalties see it. */
export interface RoyaltyWorkflow {
  readonly id: string;
  /** Where its creator is paid: their wallet, else their custodial one. */
  readonly creatorAccount: LedgerAccount;
  readonly royalties: RoyaltySplit;
  readonly dependencies: readonly { readonly workflow: string; readonly share: number }[];
  /** A flagged workflow's royalties are held (`held:<id>`), not paid. */
  readonly flagged: boolean;
}

export interface RoyaltySplitResult {
  /** Credits, one per account (they sum to the charge). */
  readonly credits: ReadonlyMap<LedgerAccount, bigint>;
  /** What each workflow's creator got from this run (held included). */
  readonly earnings: readonly WorkflowEarning[];
}

const part = (amount: bigint, percent: number) => (amount * BigInt(percent)) / 100n;

/**
 * Splits a workflow run's charge (seed 001): node, validators, creator and upstream by the run's
 * workflow's split, every share rounded down. The upstream part goes to its dependencies by their
 * shares; what reaches a dependency is shared between its creator and its own upstream in the
 * ratio of its split's `creator` to `upstream`, and so on up — every ancestor paid — for at most
 * `maxRoyaltyDepth` levels. A workflow with no dependencies keeps its upstream part for its
 * creator. Rounding remainders, flows past the depth bound and shares of unknown workflows go to
 * the treasury: the credits always sum to the charge, to the µHAI.
 */
export function royaltySplit(
  charge: bigint,
  run: RoyaltyWorkflow,
  lookup: (id: string) => RoyaltyWorkflow | undefined,
  accounts: { readonly node: LedgerAccount },
): RoyaltySplitResult {
  const credits = new Map<LedgerAccount, bigint>();
  const earned = new Map<string, bigint>();
  const credit = (account: LedgerAccount, amount: bigint) => {
    if (amount > 0n) credits.set(account, (credits.get(account) ?? 0n) + amount);
  };
  const pay = (w: RoyaltyWorkflow, amount: bigint) => {
    if (amount <= 0n) return;
    credit(w.flagged ? ledgerAccounts.held(w.id) : w.creatorAccount, amount);
    earned.set(w.id, (earned.get(w.id) ?? 0n) + amount);
  };
  let treasury = 0n;

  /** `amount` leaving `w` for its dependencies, at `depth` levels above the run. */
  const flowUp = (w: RoyaltyWorkflow, amount: bigint, depth: number) => {
    if (amount <= 0n) return;
    if (w.dependencies.length === 0) return pay(w, amount);
    if (depth > maxRoyaltyDepth) {
      treasury += amount;
      return;
    }
    let given = 0n;
    for (const d of w.dependencies) {
      const share = part(amount, d.share);
      given += share;
      const dep = lookup(d.workflow);
      if (!dep) {
        treasury += share;
        continue;
      }
      const weight = dep.royalties.creator + dep.royalties.upstream;
      if (weight === 0) {
        treasury += share;
        continue;
      }
      const up = dep.dependencies.length === 0 ? 0n : (share * BigInt(dep.royalties.upstream)) / BigInt(weight);
      pay(dep, share - up);
      flowUp(dep, up, depth + 1);
    }
    treasury += amount - given;
  };

  const r = run.royalties;
  const node = part(charge, r.node);
  const validators = part(charge, r.validators);
  const creator = part(charge, r.creator);
  const upstream = part(charge, r.upstream);
  credit(accounts.node, node);
  credit(ledgerAccounts.validators, validators);
  pay(run, creator);
  flowUp(run, upstream, 1);
  treasury += charge - node - validators - creator - upstream;
  credit(ledgerAccounts.treasury, treasury);
  return {
    credits,
    earnings: [...earned].map(([workflowId, amount]) => ({ workflowId, amount, direct: workflowId === run.id })),
  };
}
