import { formatHai, HavnError, parseHai } from "@havn/protocol";
import type { ProposalAction, ProposalView, StakeView } from "@havn/sdk";
import type { ClientOptions } from "../credentials-file.js";
import { authedClient } from "../credentials-file.js";

type JsonOption = { json?: boolean };
type TargetOptions = { node?: string; validator?: boolean; idempotencyKey?: string };

const print = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
const hai = (uhai: string) => `${formatHai(BigInt(uhai))} HAI`;

function targetOf(o: TargetOptions): { node: string } | { validator: true } {
  if ((o.node === undefined) === (o.validator !== true))
    throw new HavnError("CONFIG_INVALID", "Name one of --node <key or name> or --validator.");
  return o.node !== undefined ? { node: o.node } : { validator: true };
}

function stakeLine(s: StakeView): string {
  const unbonding = s.unbonding
    .map((u) => `${hai(u.amount_uhai)} back ${new Date(u.matures_at).toISOString()}`)
    .join(", ");
  const node = s.node;
  const state = node
    ? node.quarantined
      ? "QUARANTINED"
      : node.held
        ? `held: ${node.held}`
        : node.slots === null
          ? "offline"
          : `${node.slots} slot${node.slots === 1 ? "" : "s"} routed`
    : "";
  return [
    `${(node?.name ?? s.subject).padEnd(24)} ${hai(s.bonded_uhai).padStart(18)} bonded  floor ${hai(s.floor_uhai)}`,
    state && `  ${state}`,
    unbonding && `  unbonding: ${unbonding}`,
  ]
    .filter(Boolean)
    .join("");
}

/**
 * `havn stake [amount] --node <node> | --validator`: with an amount, bonds that many HAI to a
 * node you operate (or to yourself as a validator); without, lists your stakes.
 */
export async function stake(amount: string | undefined, o: ClientOptions & JsonOption & TargetOptions): Promise<void> {
  const client = await authedClient(o);
  if (amount === undefined) {
    const stakes = await client.stakes();
    if (o.json) return print(stakes);
    for (const s of stakes) process.stdout.write(`${stakeLine(s)}\n`);
    return;
  }
  const r = await client.bond(targetOf(o), parseHai(amount), o.idempotencyKey);
  if (o.json) return print(r);
  process.stdout.write(`bonded ${formatHai(parseHai(amount))} HAI\n${stakeLine(r.stake)}\n`);
}

/** `havn unstake <amount> --node <node> | --validator`: starts unbonding; paid back after the delay. */
export async function unstake(amount: string, o: ClientOptions & JsonOption & TargetOptions): Promise<void> {
  const client = await authedClient(o);
  const r = await client.unbond(targetOf(o), parseHai(amount), o.idempotencyKey);
  if (o.json) return print(r);
  process.stdout.write(
    `unbonding ${formatHai(parseHai(amount))} HAI: paid back ${new Date(r.matures_at!).toISOString()}\n${stakeLine(r.stake)}\n`,
  );
}

/** `havn pool`: this period's pool, what a snapshot now would pay, and past distributions. */
export async function pool(o: ClientOptions & JsonOption): Promise<void> {
  const client = await authedClient(o);
  const p = await client.pool();
  if (o.json) return print(p);
  const lines = [
    `period ${new Date(p.period.start).toISOString()} → ${new Date(p.period.end).toISOString()}: ${hai(p.amount_uhai)}`,
    ...(p.shares.length === 0
      ? ["  no node has completed verified work this period yet"]
      : p.shares.map((s) => `  ${s.node_key}  score ${s.score}  ${s.completed} jobs  ${hai(s.amount_uhai)}`)),
    ...p.distributions.map((d) => {
      const memo = d.memo as { period_start?: number; amount?: string; shares?: unknown[] } | null;
      return `paid ${new Date(memo?.period_start ?? d.created_at).toISOString().slice(0, 10)}: ${hai(memo?.amount ?? "0")} to ${memo?.shares?.length ?? 0} nodes`;
    }),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** `havn params`: every governance parameter. */
export async function params(o: ClientOptions & JsonOption): Promise<void> {
  const client = await authedClient(o);
  const list = await client.params();
  if (o.json) return print(list);
  for (const p of list)
    process.stdout.write(
      `${p.name.padEnd(34)} ${p.value.padStart(16)} ${p.unit.padEnd(8)} ${p.updated_by ?? ""}${p.env ? `  (${p.env})` : ""}\n`,
    );
}

const actionTypes = {
  set: "set_params",
  "pause-node": "pause_node",
  "resume-node": "resume_node",
  "pause-model": "pause_model",
  "resume-model": "resume_model",
  "flag-model": "flag_model",
  "unflag-model": "unflag_model",
  "admit-model": "admit_model",
  "flag-workflow": "flag_workflow",
  "unflag-workflow": "unflag_workflow",
} as const;

/** What `havn propose <action> <args…>` asks for. */
export function proposalAction(action: string, args: readonly string[]): ProposalAction {
  const type = actionTypes[action as keyof typeof actionTypes];
  if (!type)
    throw new HavnError("CONFIG_INVALID", `The action is one of: ${Object.keys(actionTypes).join(", ")}.`, {
      context: { Action: action.slice(0, 40) },
    });
  if (type === "set_params") {
    const params: Record<string, string> = {};
    for (const a of args) {
      const m = /^([a-z0-9_.]+)=([0-9]+)$/i.exec(a);
      if (!m)
        throw new HavnError("CONFIG_INVALID", "Write each change as name=value (see havn params).", {
          context: { Change: a.slice(0, 60) },
        });
      params[m[1]!] = m[2]!;
    }
    if (args.length === 0) throw new HavnError("CONFIG_INVALID", "Name at least one change: name=value.");
    return { type, params };
  }
  const [ref] = args;
  if (args.length !== 1 || ref === undefined) throw new HavnError("CONFIG_INVALID", `${action} takes one argument.`);
  if (type === "pause_node" || type === "resume_node") return { type, node: ref };
  if (type === "flag_workflow" || type === "unflag_workflow") return { type, workflow: ref };
  return { type, model: ref };
}

function proposalLine(p: ProposalView): string {
  const t = p.tally;
  return `${p.id}  ${p.state.padEnd(8)} ${JSON.stringify(p.action)}${p.by_admin ? "  (admin)" : ""}${
    p.state === "voting" ? `  voting until ${new Date(p.ends_at).toISOString()}` : ""
  }${t && !p.by_admin ? `  yes ${hai(t.yes)} / no ${hai(t.no)}: ${t.outcome}` : ""}`;
}

/** `havn propose <action> <args…> --reason <why> [--admin]`. */
export async function propose(
  action: string,
  args: string[],
  o: ClientOptions & JsonOption & { reason: string; admin?: boolean; idempotencyKey?: string },
): Promise<void> {
  const client = await authedClient(o);
  const p = await client.propose(proposalAction(action, args), o.reason, {
    ...(o.admin ? { admin: true } : {}),
    ...(o.idempotencyKey ? { idempotencyKey: o.idempotencyKey } : {}),
  });
  if (o.json) return print(p);
  process.stdout.write(`${proposalLine(p)}\n`);
}

/** `havn proposals [id]`: proposals, newest first, or one with its votes. */
export async function proposals(id: string | undefined, o: ClientOptions & JsonOption): Promise<void> {
  const client = await authedClient(o);
  if (id) {
    const p = await client.proposal(id);
    if (o.json) return print(p);
    process.stdout.write(
      [
        proposalLine(p),
        `reason: ${p.reason}`,
        ...(p.votes ?? []).map((v) => `  ${v.voter} ${v.choice} ${hai(v.weight_uhai)}`),
      ].join("\n") + "\n",
    );
    return;
  }
  const list = await client.proposals();
  if (o.json) return print(list);
  if (list.length === 0) process.stdout.write("no proposals yet\n");
  for (const p of list) process.stdout.write(`${proposalLine(p)}\n`);
}

/** `havn vote <proposal> <yes|no|abstain>`: weighted by your bonded stake; final. */
export async function vote(id: string, choice: string, o: ClientOptions & JsonOption): Promise<void> {
  if (choice !== "yes" && choice !== "no" && choice !== "abstain")
    throw new HavnError("CONFIG_INVALID", "Vote yes, no or abstain.");
  const client = await authedClient(o);
  const v = await client.vote(id, choice);
  if (o.json) return print(v);
  process.stdout.write(`${v.replayed ? "already voted" : "voted"} ${v.choice} with ${hai(v.weight_uhai)} of stake\n`);
}
