import type { ClientOptions } from "../credentials-file.js";
import { authedClient } from "../credentials-file.js";

/**
 * `havn reputation [node]`: the leaderboard (every node's score, best first, and whether routing
 * trusts it), or one node's score and its changes with their causes.
 */
export async function reputation(node: string | undefined, o: ClientOptions & { json?: boolean }): Promise<void> {
  const client = await authedClient(o);
  if (node !== undefined) {
    const r = await client.nodeReputation(node);
    if (o.json) {
      process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      return;
    }
    const n = r.node;
    const lines = [
      `${n.name}  ${n.node_key}  score ${n.score}  ${n.online ? "online" : "offline"}${n.routed ? ", routed" : n.online ? ", NOT routed" : ""}`,
      ...r.events.map(
        (e) =>
          `${new Date(e.at).toISOString()}  ${e.delta > 0 ? "+" : ""}${e.delta}  ${e.cause.padEnd(9)}${e.count > 1 ? ` ×${e.count}` : ""} → ${Math.round(e.score * 10) / 10}${e.job_id ? `  ${e.job_id}` : ""}`,
      ),
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    return;
  }
  const list = await client.reputation();
  if (o.json) {
    process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return;
  }
  if (list.data.length === 0) {
    process.stdout.write("no nodes yet\n");
    return;
  }
  process.stdout.write(`routing floor ${list.routing_floor}\n`);
  list.data.forEach((n, i) => {
    const state = !n.online ? "offline" : n.routed ? "routed" : n.breaker_open_until ? "breaker open" : "probation";
    process.stdout.write(
      `${String(i + 1).padStart(3)}. ${n.name.padEnd(24)} ${String(n.score).padStart(6)}  ${state.padEnd(12)} ${n.node_key}\n`,
    );
  });
}
