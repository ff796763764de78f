import type {
  BackendHealthReport,
  Capabilities,
  CoordinatorMessageBody,
  Hardware,
  JobSpec,
  TaskKind,
} from "@havn/protocol";

/** One attempt a node is running, as the coordinator dispatched it. */
export interface InFlightAttempt {
  readonly spec: JobSpec;
  readonly dispatchedAt: number;
  /** When the job was admitted: time to first token is measured from here. */
  readonly admittedAt: number;
  /** Set when the first token or progress arrives. */
  running: boolean;
  /** When the first token or progress arrived (epoch ms). */
  startedAt?: number;
  /**
   * Set while the job's admission row is being written (a job placed at admission is sent
   * before its row is written); resolves, true if the row was written, once messages about
   * the attempt may be acted on.
   */
  admission?: Promise<boolean>;
}

/**
 * A node's in-flight attempts (attempt id → attempt). It tells its registry when an attempt comes
 * or goes, so the registry keeps the network's free slots counted instead of scanning every node
 * for them on each dispatch pass.
 */
export class InFlightAttempts extends Map<string, InFlightAttempt> {
  /** Called after the number of attempts changed (set by `NodeRegistry.add`). */
  onChange: (() => void) | undefined;

  override set(attemptId: string, attempt: InFlightAttempt): this {
    const added = !this.has(attemptId);
    super.set(attemptId, attempt);
    if (added) this.onChange?.();
    return this;
  }

  override delete(attemptId: string): boolean {
    const deleted = super.delete(attemptId);
    if (deleted) this.onChange?.();
    return deleted;
  }

  override clear(): void {
    const had = this.size > 0;
    super.clear();
    if (had) this.onChange?.();
  }
}

/** A connected, authenticated node. */
export interface NodeSession {
  readonly key: string;
  readonly name: string;
  /** The operator's API key the node joined with (undefined: the join token, or dev mode). */
  readonly joinedWithKey?: string | undefined;
  readonly capabilities: Capabilities;
  readonly hardware: Hardware;
  /** Models this node serves, by exact name. */
  readonly models: ReadonlySet<string>;
  /** The task kinds each model serves (a base model may do completions but not chats). */
  readonly tasks: ReadonlyMap<string, ReadonlySet<TaskKind>>;
  /** Slots it advertised, capped by `maxNodeSlots`. */
  readonly advertisedSlots: number;
  /** Slots routing fills: what it advertised, as far as its stake covers (see `StakeGuard`). */
  slots: number;
  /** µHAI bonded to it, as last read. */
  stake: bigint;
  /**
   * What routing reads of its stake and price, in [0, 1] (set by `StakeService.assess`): stake,
   * its bond against twice its floor (1 where stake is not required); price, its compute class's
   * fee multiplier against the dearest class's (1 is the cheapest).
   */
  routingTerms: { stake: number; price: number };
  /** Why it gets no jobs though connected and healthy, or null: it gets jobs. */
  held: NodeHold | null;
  /** attempt id → attempt */
  readonly inFlight: InFlightAttempts;
  readonly connectedAt: number;
  /**
   * Since when it has been here without a break longer than `quarantine.reconnect_grace_ms` (a
   * reconnect within it continues its presence), and its time away in such breaks since its last
   * judged epoch, in ms: heartbeat epochs judge these.
   */
  readonly presentSince: number;
  awayMs: number;
  /** The last message of any kind from the node. */
  lastSeenAt: number;
  /** The last heartbeat from the node (or its hello). */
  lastHeartbeatAt: number;
  /**
   * Whether the node takes jobs: false while its backend fails the node's health checks. An
   * unavailable node stays connected but is never routed to, and no model counts as served by it.
   */
  available: boolean;
  /** The node's last report of its backend's health. */
  backend: BackendHealthReport;
  /** Exponentially weighted mean of dispatch → result time of accepted results, in ms. */
  latencyEwmaMs: number | null;
  /** Its reputation score now (seed 003; see `nodes/reputation.ts`). */
  reputation: number;
  /** Consecutive failed or refused attempts (reset by an accepted result). */
  failures: number;
  /** Times its breaker tripped since its last accepted result. */
  trips: number;
  /** Out of routing until then (epoch ms; 0: the breaker is closed). */
  breakerUntil: number;
  send(message: CoordinatorMessageBody): void;
  close(code: number, reason: string): void;
  /** Drops the connection without a close handshake: for a peer that no longer answers. */
  terminate(): void;
  /** Whether the node's connection answers a WebSocket ping within `timeoutMs`. */
  ping(timeoutMs: number): Promise<boolean>;
}

/**
 * Why a healthy node gets no jobs: its stake is below its compute class's collateral floor, its
 * stake is quarantined (missed heartbeats), or governance paused it.
 */
export type NodeHold = "below_floor" | "quarantined" | "paused";

/** Whether routing may give a node jobs: its backend is healthy and nothing holds it. */
export function routable(session: NodeSession): boolean {
  return session.available && session.held === null;
}

/**
 * Whether routing trusts a node now: its reputation is at the routing floor or above, and its
 * breaker is not open. An untrusted node runs jobs only on probation (see `Router.eligible`).
 */
export function trusted(session: NodeSession, routingFloor: number, now: number): boolean {
  return session.reputation >= routingFloor && session.breakerUntil <= now;
}

/** What `/v1/nodes` and `/metrics` call a connected node's state. */
export function nodeState(session: NodeSession): "available" | "unavailable" {
  return session.available ? "available" : "unavailable";
}

/** The nodes connected to this coordinator process. */
export class NodeRegistry {
  private readonly sessions = new Map<string, NodeSession>();
  /**
   * model → the routable nodes that advertise it (an array, for routing's random probes, and each
   * node's place in it, so a node leaves in O(1)). Held and unhealthy nodes are left out, so a
   * network of many held nodes costs routing nothing: `update` keeps it in step.
   */
  private readonly byModel = new Map<string, { list: NodeSession[]; at: Map<NodeSession, number> }>();
  /** Models governance paused or flagged, by the names nodes serve them under: none is routed. */
  heldModels: ReadonlySet<string> = new Set();
  /**
   * Free slots, kept counted as attempts come and go (see `recount`): each routable node's free
   * slots as last counted; their sum; and per model, how many routable nodes serving it have one.
   * A dispatch pass reads these instead of scanning a fleet of thousands of idle nodes.
   */
  private readonly freeOf = new Map<NodeSession, number>();
  private freeTotal = 0;
  private readonly freeServing = new Map<string, number>();

  add(session: NodeSession): NodeSession | undefined {
    const previous = this.sessions.get(session.key);
    if (previous) this.unindex(previous);
    this.sessions.set(session.key, session);
    if (previous) this.recount(previous);
    if (routable(session)) this.index(session);
    session.inFlight.onChange = () => this.recount(session);
    this.recount(session);
    return previous;
  }

  /** Removes the session if it is still the registered one (a reconnect may have replaced it). */
  remove(session: NodeSession): boolean {
    if (this.sessions.get(session.key) !== session) return false;
    this.sessions.delete(session.key);
    this.unindex(session);
    this.recount(session);
    return true;
  }

  /** A registered node's health, hold or slots changed: it enters or leaves the routing index. */
  update(session: NodeSession): void {
    if (this.sessions.get(session.key) !== session) return;
    if (routable(session)) this.index(session);
    else this.unindex(session);
    this.recount(session);
  }

  /** Counts one node's free slots again: its attempts, slots or standing changed. */
  private recount(session: NodeSession): void {
    const before = this.freeOf.get(session) ?? 0;
    const now =
      this.sessions.get(session.key) === session && routable(session)
        ? Math.max(0, session.slots - session.inFlight.size)
        : 0;
    if (now === before) return;
    this.freeTotal += now - before;
    if (now > 0) this.freeOf.set(session, now);
    else this.freeOf.delete(session);
    if (before > 0 === now > 0) return;
    for (const m of session.models) {
      const n = (this.freeServing.get(m) ?? 0) + (now > 0 ? 1 : -1);
      if (n > 0) this.freeServing.set(m, n);
      else this.freeServing.delete(m);
    }
  }

  private index(session: NodeSession): void {
    for (const m of session.models) {
      let index = this.byModel.get(m);
      if (!index) this.byModel.set(m, (index = { list: [], at: new Map() }));
      if (index.at.has(session)) continue;
      index.at.set(session, index.list.length);
      index.list.push(session);
    }
  }

  private unindex(session: NodeSession): void {
    for (const m of session.models) {
      const index = this.byModel.get(m);
      const i = index?.at.get(session);
      if (!index || i === undefined) continue;
      // Swap-remove: the last node takes the leaver's place.
      const last = index.list.pop()!;
      index.at.delete(session);
      if (last !== session) {
        index.list[i] = last;
        index.at.set(last, i);
      }
      if (index.list.length === 0) this.byModel.delete(m);
    }
  }

  /** The routable nodes that advertise `model`. */
  serving(model: string): readonly NodeSession[] {
    return this.byModel.get(model)?.list ?? [];
  }

  get(key: string): NodeSession | undefined {
    return this.sessions.get(key);
  }

  all(): NodeSession[] {
    return [...this.sessions.values()];
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Whether a routable node serves this model now. */
  serves(model: string): boolean {
    if (this.heldModels.has(model)) return false;
    for (const s of this.serving(model)) if (routable(s)) return true;
    return false;
  }

  /** Models with at least one free slot on a routable node, for the claim query. */
  modelsWithFreeSlots(): string[] {
    const models: string[] = [];
    for (const m of this.freeServing.keys()) if (!this.heldModels.has(m)) models.push(m);
    return models;
  }

  /** Free slots on routable nodes. */
  freeSlots(): number {
    return this.freeTotal;
  }
}
