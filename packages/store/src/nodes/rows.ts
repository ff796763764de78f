import type { Capabilities, ComputeClass, Hardware } from "@havn/protocol";
import { json, jsonOrNull, num, numOrNull, type RawRow } from "../columns.js";
import type { AvailabilityPromise, EpochInput, EpochOutcome, NodeRow, ReputationEvent } from "./types.js";

export function rowToNode(r: RawRow): NodeRow {
  return {
    key: r.key as string,
    name: r.name as string,
    accountId: (r.account_id as string | null) ?? null,
    capabilities: json<Capabilities>(r.capabilities),
    hardware: json<Hardware>(r.hardware),
    computeClass: r.compute_class as ComputeClass,
    online: Boolean(r.online),
    firstSeenAt: num(r.first_seen_at),
    lastSeenAt: num(r.last_seen_at),
    reputation: r.reputation === null || r.reputation === undefined ? null : Number(r.reputation),
    reputationAt: numOrNull(r.reputation_at),
    missedEpochs: num(r.missed_epochs ?? 0),
    lastEpoch: numOrNull(r.epoch),
    quarantinedAt: numOrNull(r.quarantined_at),
    promise: jsonOrNull<AvailabilityPromise>(r.promise),
  };
}

/**
 * One epoch's step, the same for both stores: a clean epoch ends the run of missed ones (and
 * lifts a quarantine); a missed one extends it, and quarantines at `threshold` in a row.
 */
export function epochStep(
  prev: { readonly missedEpochs: number; readonly quarantinedAt: number | null },
  input: EpochInput,
): EpochOutcome & { readonly quarantinedAt: number | null } {
  const missedEpochs = input.clean ? 0 : prev.missedEpochs + 1;
  if (prev.quarantinedAt !== null)
    return input.clean
      ? { missedEpochs, quarantined: false, change: "lifted", quarantinedAt: null }
      : { missedEpochs, quarantined: true, change: null, quarantinedAt: prev.quarantinedAt };
  return missedEpochs >= input.threshold
    ? { missedEpochs, quarantined: true, change: "entered", quarantinedAt: input.now }
    : { missedEpochs, quarantined: false, change: null, quarantinedAt: null };
}

export function rowToReputationEvent(r: RawRow): ReputationEvent {
  return {
    nodeKey: r.node_key as string,
    delta: Number(r.delta),
    score: Number(r.score),
    cause: r.cause as string,
    jobId: (r.job_id as string | null) ?? null,
    at: num(r.created_at),
    count: num(r.count),
  };
}

/**
 * Who may join as a node key under a name, the same for both stores. A key is bound to the first
 * account it joins with, and a name belongs to its key's account: another account is refused
 * (`key_owned`, `name_taken`); the same account may move its name to a new key (`moveFrom`: the
 * old key, which gives the name up). Names of keys no account holds stay first come, first served.
 */
export function nodeClaim(
  keyRow: { readonly account_id: string | null } | undefined,
  nameRow: { readonly key: string; readonly account_id: string | null } | undefined,
  input: { readonly key: string; readonly accountId?: string | null | undefined },
):
  | { readonly ok: true; readonly accountId: string | null; readonly moveFrom?: string }
  | { readonly ok: false; readonly reason: "name_taken" | "key_owned" } {
  const joining = input.accountId ?? null;
  if (keyRow?.account_id && joining && keyRow.account_id !== joining) return { ok: false, reason: "key_owned" };
  const accountId = keyRow?.account_id ?? joining;
  if (nameRow === undefined || nameRow.key === input.key) return { ok: true, accountId };
  if (nameRow.account_id !== null && nameRow.account_id === accountId)
    return { ok: true, accountId, moveFrom: nameRow.key };
  return { ok: false, reason: "name_taken" };
}

/**
 * The name a key keeps when its account moves the name to another key: unique (the whole key,
 * and no node may choose a name with `~`), and says why.
 */
export function retiredName(name: string, key: string): string {
  return `${name}~${key}`;
}
