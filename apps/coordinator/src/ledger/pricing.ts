import type { GenerationParams, JobInput } from "@havn/protocol";
import type { JobEscrow, LedgerAccount, PriceTerms, Store } from "@havn/store";
import type { CoordinatorConfig } from "../config.js";
import type { NodeRegistry } from "../nodes/node-registry.js";
import type { ModelCatalog } from "../router/model-catalog.js";
import { routable } from "../nodes/node-registry.js";
import { configTerms, type GovernedTerms } from "../governance/params.js";

/** How long a sample of the queue's depth per model is used for surge, in ms. */
const queueSampleMs = 1_000;
/** Tokens a chat template may add per message (role markers), and once per prompt. */
const templateTokensPerMessage = 8;
const templateTokens = 16;

/**
 * What a job costs, at most and in the end.
 *
 * Price = (input tokens × input price + output tokens × output price) ÷ 1 000 × the class fee of
 * the node that runs it (seed 002) × the surge at admission. At admission the coordinator cannot
 * count tokens (the node's tokenizer does), so the escrow takes an upper bound: every UTF-8 byte
 * of the prompt as a token plus the chat template's, `max_tokens` out, and the highest class fee
 * among the nodes serving the model now (XL when none does). The charge at completion uses the
 * node's reported usage and its own class, and never exceeds the escrow.
 */
export class Pricing {
  private queued: { at: number; byModel: Record<string, number> } = { at: 0, byModel: {} };
  private sampling: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly catalog: ModelCatalog,
    private readonly registry: NodeRegistry,
    private readonly config: CoordinatorConfig,
    /** The class fee multipliers as governance has them now (default: configuration's). */
    private readonly governed: () => GovernedTerms = () => configTerms(config),
  ) {}

  /** The terms a job is admitted under. */
  terms(model: string): PriceTerms {
    const ledger = this.config.ledger;
    const price = this.catalog.entry(model)?.price ?? ledger.defaultPrice;
    return {
      input_per_1k: price.inputPer1k.toString(),
      output_per_1k: price.outputPer1k.toString(),
      surge_bp: this.surgeBp(model),
      class_bp: { ...this.governed().classFeesBp },
    };
  }

  /**
   * Surge, in basis points: 1 + `perQueueRoundBp` for every round of queued jobs the model's slots
   * would take to clear (queued ÷ slots), capped at `maxBp`. The queue depth is sampled at most
   * once a second, off the admission path.
   */
  surgeBp(model: string): number {
    const { perQueueRoundBp, maxBp } = this.config.ledger.surge;
    this.sampleQueue();
    const queued = this.queued.byModel[model] ?? 0;
    if (queued === 0) return 10_000;
    let slots = 0;
    for (const s of this.registry.serving(model)) if (routable(s)) slots += s.slots;
    const surge = 10_000 + Math.floor((perQueueRoundBp * queued) / Math.max(1, slots));
    return Math.min(maxBp, surge);
  }

  private sampleQueue(): void {
    if (Date.now() - this.queued.at < queueSampleMs || this.sampling) return;
    this.sampling = this.store.jobs
      .queuedByModel()
      .then(
        (byModel) => {
          this.queued = { at: Date.now(), byModel };
        },
        () => {},
      )
      .finally(() => {
        this.sampling = undefined;
      });
  }

  /** The highest class fee among nodes serving the model now; XL's when none does. */
  private maxClassBp(model: string): number {
    const fees = this.governed().classFeesBp;
    let best: number | undefined;
    for (const s of this.registry.serving(model)) {
      const fee = fees[s.hardware.compute_class];
      if (best === undefined || fee > best) best = fee;
    }
    return best ?? Math.max(...Object.values(fees));
  }

  /** The escrow for a job: its payer and its maximum cost under these terms. */
  escrow(payer: LedgerAccount, model: string, input: JobInput, params: GenerationParams): JobEscrow {
    const price = this.terms(model);
    const maxInput = BigInt(promptTokenBound(input));
    const maxOutput = BigInt(params.max_tokens);
    const base = maxInput * BigInt(price.input_per_1k) + maxOutput * BigInt(price.output_per_1k);
    const divisor = 1_000n * 10_000n * 10_000n;
    const scaled = base * BigInt(this.maxClassBp(model)) * BigInt(price.surge_bp);
    // Rounded up: the escrow covers the most the job can cost.
    return { payer, amount: (scaled + divisor - 1n) / divisor, price };
  }
}

/** An upper bound on a prompt's tokens: a byte-level tokenizer makes at most one token per UTF-8 byte. */
export function promptTokenBound(input: JobInput): number {
  const bytes = (text: string) => Buffer.byteLength(text, "utf8");
  if (input.kind === "completion") return bytes(input.prompt) + templateTokens;
  let n = templateTokens;
  for (const m of input.messages)
    n += templateTokensPerMessage + bytes(typeof m.content === "string" ? m.content : JSON.stringify(m.content));
  return n;
}
