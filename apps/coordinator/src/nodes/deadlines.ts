import type { CoordinatorConfig } from "../config.js";
import type { InFlightAttempt } from "./node-registry.js";
import { maxModelsMeasured, quantile } from "./reputation.js";

/** How late a node may report the start of a job not streamed: a second after its first token. */
const progressLagMs = 1_000;

/** Samples kept per model and measure; a deadline needs `minSamples` of them. */
const keep = 256;
const minSamples = 20;

/**
 * Deadlines that fit the work (text jobs): from each model's accepted results, the time from
 * dispatch to the first token and the time per output token. An attempt that shows no token by
 * its first-token deadline, or runs past its per-token budget for `max_tokens`, is overdue: the
 * sweeper ends it and the node pays in reputation. `attemptTimeoutMs` stays the outer bound.
 */
export class Deadlines {
  private readonly firstToken = new Map<string, number[]>();
  private readonly perToken = new Map<string, number[]>();
  /** p95 of each, recomputed every 16 results (the sweeper asks for every attempt, every sweep). */
  private readonly p95s = new Map<string, { firstToken?: number; perToken?: number }>();
  /** Results seen per model since its p95s were last computed. */
  private readonly sinceComputed = new Map<string, number>();

  constructor(private readonly config: CoordinatorConfig) {}

  /** An accepted result's timings: dispatch → first token, and first token → result per token. */
  observe(model: string, attempt: InFlightAttempt, now: number, tokens: number): void {
    const started = attempt.startedAt ?? now;
    add(this.firstToken, model, started - attempt.dispatchedAt);
    if (tokens > 0) add(this.perToken, model, (now - started) / tokens);
    const first = this.firstToken.get(model);
    const since = (this.sinceComputed.get(model) ?? 0) + 1;
    this.sinceComputed.set(model, since);
    if (!first || first.length < minSamples || (since < 16 && this.p95s.has(model))) return;
    this.sinceComputed.set(model, 0);
    const per = this.perToken.get(model);
    this.p95s.set(model, {
      firstToken: quantile(first, 0.95),
      ...(per && per.length >= minSamples && { perToken: quantile(per, 0.95) }),
    });
  }

  /** The first-token deadline for `model`, in ms after dispatch. */
  firstTokenMs(model: string): number {
    const d = this.config.deadlines;
    const observed = this.p95s.get(model)?.firstToken;
    if (observed === undefined) return d.firstTokenDefaultMs;
    return Math.max(d.firstTokenFloorMs, d.firstTokenFactor * observed);
  }

  /** Time allowed per output token once the first has come, in ms. */
  perTokenMs(model: string): number {
    const d = this.config.deadlines;
    const observed = this.p95s.get(model)?.perToken;
    return Math.max(d.perTokenFloorMs, observed === undefined ? 0 : d.perTokenFactor * observed);
  }

  /** Whether an attempt missed its deadline at `now` (or the outer `attemptTimeoutMs`). */
  overdue(attempt: InFlightAttempt, now: number): boolean {
    const elapsed = now - attempt.dispatchedAt;
    if (elapsed > this.config.attemptTimeoutMs) return true;
    const model = attempt.spec.model;
    // A job not streamed reports its start a second after its first token (node-protocol.md).
    if (attempt.startedAt === undefined) return elapsed > this.firstTokenMs(model) + progressLagMs;
    return now - attempt.startedAt > attempt.spec.params.max_tokens * this.perTokenMs(model);
  }
}

function add(samples: Map<string, number[]>, model: string, value: number) {
  let list = samples.get(model);
  if (!list) {
    if (samples.size >= maxModelsMeasured) return;
    samples.set(model, (list = []));
  }
  list.push(value);
  if (list.length > keep) list.shift();
}
