import type { TaskKind } from "@havn/protocol";
import type { RouteDecision } from "@havn/store";
import { routable, trusted, type NodeSession } from "../nodes/node-registry.js";
import { reputationRules } from "../nodes/reputation.js";

export interface RouterOptions {
  /** Weight of a random term, so new nodes get measured. */
  readonly exploration: number;
  readonly random?: () => number;
  readonly now?: () => number;
}

/**
 * A job's probation draw, in [0, 1), fixed by its id: a job that waits through many dispatcher
 * passes draws once, so untrusted nodes get their probation share of jobs, not of passes.
 */
export function probationDraw(jobId: string): number {
  // FNV-1a over the id: job ids end in random hex, but any id draws evenly.
  let h = 0x811c9dc5;
  for (let i = 0; i < jobId.length; i++) h = Math.imul(h ^ jobId.charCodeAt(i), 0x01000193);
  return (h >>> 0) / 0x100000000;
}

/** Nodes a routing decision scores, at most (a uniform sample of those eligible beyond it). */
export const maxCandidates = 32;
/** Beyond this many nodes serving a model, a decision probes at random before it scans them all. */
const probeAbove = 4 * maxCandidates;
/** Random probes per decision, at most, before the full scan. */
const maxProbes = 4 * maxCandidates;

/** A reputation score as the router weighs it: in [0, 1], 100 points and more counting as 1. */
const reputationWeight = (score: number) => Math.min(1, score / 100);

/**
 * Picks a node for one job: capability match first (the node is routable, serves the model and
 * has a free slot), then the best score over reputation, measured latency, load, stake and price
 * (its class's fee multiplier), plus a little exploration. The decision and its reasons are stored with the job.
 */
export class Router {
  private readonly random: () => number;
  private readonly now: () => number;
  constructor(private readonly options: RouterOptions) {
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
  }

  /**
   * Available nodes that serve this model for this kind of task and have a free slot. A node an
   * attempt of this job already failed on (`failedNodes`) is left out while any other available
   * node serves the model — busy or not: the job then waits for that node rather than go back to
   * one that failed it. Only when no other node serves the model does a failed one get it again.
   *
   * The same way, a node routing does not trust — reputation below the routing floor, or its
   * circuit breaker open — is left out while a trusted node serves the model, except on
   * probation: a small share of the decisions, drawn at random, let it in, so it can earn its way
   * back.
   */
  eligible(
    nodes: readonly NodeSession[],
    model: string,
    task: TaskKind,
    reserved: ReadonlyMap<string, number>,
    failedNodes: readonly string[] = [],
    /** The job's probation draw in [0, 1): one per job (`probationDraw`), not one per pass. */
    draw: number = this.random(),
  ): NodeSession[] {
    const now = this.now();
    const floor = reputationRules.routingFloor;
    const serves = (n: NodeSession) => routable(n) && n.tasks.get(model)?.has(task) === true;
    if (nodes.length > probeAbove) {
      const probed = this.probe(nodes, serves, reserved, failedNodes, draw >= reputationRules.probationShare, now);
      if (probed.length > 0) return probed;
    }
    // One pass counts what the filters below need, without building the lists: with thousands of
    // nodes serving a model, a job's routing allocates only what it keeps.
    let serving = 0;
    let servingTrusted = 0;
    let others = 0;
    let othersTrusted = 0;
    for (const n of nodes) {
      if (!serves(n)) continue;
      const t = trusted(n, floor, now);
      serving++;
      if (t) servingTrusted++;
      if (failedNodes.length > 0 && !failedNodes.includes(n.key)) {
        others++;
        if (t) othersTrusted++;
      }
    }
    if (serving === 0) return [];
    const skipFailed = failedNodes.length > 0 && others > 0;
    const [size, trustedCount] = skipFailed ? [others, othersTrusted] : [serving, servingTrusted];
    const onlyTrusted = trustedCount > 0 && trustedCount < size && draw >= reputationRules.probationShare;
    // The second pass keeps the nodes with a free slot — a uniform sample of `maxCandidates` of
    // them when there are more (reservoir sampling): scoring a sample keeps a decision's cost flat
    // as the network grows, and a random sample still finds a good node (the power of d choices).
    const kept: NodeSession[] = [];
    let seen = 0;
    for (const n of nodes) {
      if (!serves(n)) continue;
      if (skipFailed && failedNodes.includes(n.key)) continue;
      if (onlyTrusted && !trusted(n, floor, now)) continue;
      if (n.inFlight.size + (reserved.get(n.key) ?? 0) >= n.slots) continue;
      seen++;
      if (kept.length < maxCandidates) kept.push(n);
      else {
        const j = Math.floor(this.random() * seen);
        if (j < maxCandidates) kept[j] = n;
      }
    }
    return kept;
  }

  /**
   * A large network's shortcut: random probes for up to `maxCandidates` nodes that serve the job,
   * have a free slot, did not fail it, and — unless the job drew probation — are trusted. Any it
   * finds would pass the full filters too (a trusted node that did not fail the job exists, so the
   * filters keep only such nodes); when it finds none (most nodes busy, failed or untrusted), the
   * full scan decides.
   */
  private probe(
    nodes: readonly NodeSession[],
    serves: (n: NodeSession) => boolean,
    reserved: ReadonlyMap<string, number>,
    failedNodes: readonly string[],
    trustedOnly: boolean,
    now: number,
  ): NodeSession[] {
    const kept: NodeSession[] = [];
    for (let i = 0; i < maxProbes && kept.length < maxCandidates; i++) {
      const n = nodes[Math.floor(this.random() * nodes.length)]!;
      if (kept.includes(n) || !serves(n)) continue;
      if (n.inFlight.size + (reserved.get(n.key) ?? 0) >= n.slots) continue;
      if (failedNodes.includes(n.key)) continue;
      if (trustedOnly && !trusted(n, reputationRules.routingFloor, now)) continue;
      kept.push(n);
    }
    return kept;
  }

  choose(
    candidates: readonly NodeSession[],
    reserved: ReadonlyMap<string, number>,
  ): { node: NodeSession; decision: RouteDecision } | undefined {
    // Scores are plain numbers in the loop (a job may see hundreds of candidates); the decision
    // and its reasons are built once, for the winner.
    let best:
      | {
          node: NodeSession;
          score: number;
          reputation: number;
          latency: number;
          load: number;
          stake: number;
          price: number;
          explore: number;
        }
      | undefined;
    for (const node of candidates) {
      const reputation = reputationWeight(node.reputation);
      // 1 for an instant node, 0.5 at one second; unmeasured nodes count as 1 s.
      const latency = 1 / (1 + (node.latencyEwmaMs ?? 1_000) / 1_000);
      const load = (node.inFlight.size + (reserved.get(node.key) ?? 0)) / node.slots;
      const { stake, price } = node.routingTerms;
      const explore = this.options.exploration * this.random();
      const score = 0.3 * reputation + 0.25 * latency + 0.25 * (1 - load) + 0.1 * stake + 0.1 * price + explore;
      if (best === undefined || score > best.score)
        best = { node, score, reputation, latency, load, stake, price, explore };
    }
    if (best === undefined) return undefined;
    const round = (x: number) => Math.round(x * 10_000) / 10_000;
    return {
      node: best.node,
      decision: {
        node_key: best.node.key,
        score: round(best.score),
        candidates: candidates.length,
        reasons: {
          reputation: round(best.reputation),
          latency: round(best.latency),
          load: round(best.load),
          stake: round(best.stake),
          price: round(best.price),
          exploration: round(best.explore),
        },
      },
    };
  }
}
