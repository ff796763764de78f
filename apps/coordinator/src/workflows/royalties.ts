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

/** The least a run pays the node that ran it, the validators and the treasury, in percent. */
export interface RoyaltyFloors {
  readonly node: number;
  readonly validators: number;
  readonly treasury: number;
}

export interface RoyaltySplitResult {
  /** Credits, one per account (they sum to the charge). */
  readonly credits: ReadonlyMap<LedgerAccount, bigint>;
  /** What each workflow's creator got from this run (held included). */
  readonly earnings: readonly WorkflowEarning[];
}

const part = (amount: bigint, percent: number) => (amount * BigInt(percent)) / 100n;

/**
 * A split raised to the network's floors: what the node, validators and treasury lack is taken
 * from the creator's share, then the upstream share. (Publishing refuses a split below the floors;
 * this holds when the floors were raised since.)
 */
export function withFloors(r: RoyaltySplit, floors: RoyaltyFloors): RoyaltySplit {
  const node = Math.max(r.node, floors.node);
  const validators = Math.max(r.validators, floors.validators);
  const treasury = Math.max(r.treasury, floors.treasury);
  let lack = node - r.node + (validators - r.validators) + (treasury - r.treasury);
  const creator = Math.max(0, r.creator - lack);
  lack -= r.creator - creator;
  const upstream = Math.max(0, r.upstream - lack);
  return { creator, upstream, node, validators, treasury };
}

/**
 * Splits a workflow run's charge (seed 001): node, validators, creator and upstream by the run's
 * workflow's split (raised to `floors`), every share rounded down. The upstream part goes to its
 * dependencies by their shares; what reaches a dependency is shared between its creator and its
 * own upstream in the ratio of its split's `creator` to `upstream`, and so on up — every ancestor
 * paid — for at most `maxRoyaltyDepth` levels. Flows are summed per workflow at each level, so a
 * graph's many paths cost no more than its levels × workflows. A workflow with no dependencies
 * keeps its upstream part for its creator. Rounding remainders, flows past the depth bound and
 * shares of unknown workflows go to the treasury: the credits always sum to the charge.
 */
export function royaltySplit(
  charge: bigint,
  run: RoyaltyWorkflow,
  lookup: (id: string) => RoyaltyWorkflow | undefined,
  accounts: { readonly node: LedgerAccount },
  floors: RoyaltyFloors = { node: 0, validators: 0, treasury: 0 },
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

  const r = withFloors(run.royalties, floors);
  const node = part(charge, r.node);
  const validators = part(charge, r.validators);
  const creator = part(charge, r.creator);
  const upstream = part(charge, r.upstream);
  credit(accounts.node, node);
  credit(ledgerAccounts.validators, validators);
  pay(run, creator);

  // What leaves each workflow for its dependencies, level by level up the graph.
  let leaving = new Map<RoyaltyWorkflow, bigint>([[run, upstream]]);
  for (let depth = 1; leaving.size > 0; depth++) {
    const next = new Map<RoyaltyWorkflow, bigint>();
    for (const [w, amount] of leaving) {
      if (amount <= 0n) continue;
      if (w.dependencies.length === 0) {
        pay(w, amount);
        continue;
      }
      if (depth > maxRoyaltyDepth) {
        treasury += amount;
        continue;
      }
      let given = 0n;
      for (const d of w.dependencies) {
        const share = part(amount, d.share);
        given += share;
        const dep = lookup(d.workflow);
        const weight = dep ? dep.royalties.creator + dep.royalties.upstream : 0;
        if (!dep || weight === 0) {
          treasury += share;
          continue;
        }
        const up = dep.dependencies.length === 0 ? 0n : (share * BigInt(dep.royalties.upstream)) / BigInt(weight);
        pay(dep, share - up);
        if (up > 0n) next.set(dep, (next.get(dep) ?? 0n) + up);
      }
      treasury += amount - given;
    }
    leaving = next;
  }
  treasury += charge - node - validators - creator - upstream;
  credit(ledgerAccounts.treasury, treasury);
  return {
    credits,
    earnings: [...earned].map(([workflowId, amount]) => ({ workflowId, amount, direct: workflowId === run.id })),
  };
}
