import type { TaskKind } from "@havn/protocol";
import type { RouteDecision } from "@havn/store";
import type { NodeSession } from "../gateway/node-registry.js";

export interface RouterOptions {
  /** Weight of a random term, so new nodes get measured. */
  readonly exploration: number;
  /** A node's reputation in [0, 1]; a constant until the ledger keeps reputation. */
  readonly reputationOf: (nodeKey: string) => number;
  readonly random?: () => number;
}

/**
 * Picks a node for one job: capability match first (the node serves the model and has a free
 * slot), then the best score over reputation, measured latency and load, plus a little
 * exploration. The decision and its reasons are stored with the job.
 */
export class Router {
  private readonly random: () => number;
  constructor(private readonly options: RouterOptions) {
    this.random = options.random ?? Math.random;
  }

  /** Nodes that serve this model for this kind of task and have a free slot. */
  eligible(
    nodes: readonly NodeSession[],
    model: string,
    task: TaskKind,
    reserved: ReadonlyMap<string, number>,
  ): NodeSession[] {
    return nodes.filter(
      (n) => n.tasks.get(model)?.has(task) === true && n.inFlight.size + (reserved.get(n.key) ?? 0) < n.slots,
    );
  }

  choose(
    candidates: readonly NodeSession[],
    reserved: ReadonlyMap<string, number>,
  ): { node: NodeSession; decision: RouteDecision } | undefined {
    let best: { node: NodeSession; decision: RouteDecision } | undefined;
    for (const node of candidates) {
      const reputation = this.options.reputationOf(node.key);
      // 1 for an instant node, 0.5 at one second; unmeasured nodes count as 1 s.
      const latency = 1 / (1 + (node.latencyEwmaMs ?? 1_000) / 1_000);
      const load = (node.inFlight.size + (reserved.get(node.key) ?? 0)) / node.slots;
      const explore = this.random();
      const score = 0.4 * reputation + 0.3 * latency + 0.3 * (1 - load) + this.options.exploration * explore;
      if (best === undefined || score > best.decision.score) {
        best = {
          node,
          decision: {
            node_key: node.key,
            score: Number(score.toFixed(4)),
            candidates: candidates.length,
            reasons: {
              reputation: Number(reputation.toFixed(4)),
              latency: Number(latency.toFixed(4)),
              load: Number(load.toFixed(4)),
              exploration: Number((this.options.exploration * explore).toFixed(4)),
            },
          },
        };
      }
    }
    return best;
  }
}
