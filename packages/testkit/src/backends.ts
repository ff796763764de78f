import { HavnError, hashCanonical, type JobInput, type TaskKind } from "@havn/protocol";
import type { Backend, BackendHealth, BackendInfo, GenerateRequest, GenerateResult, ScoreResult } from "@havn/engine";

export interface ScriptedBackendOptions {
  /** The model name advertised. Default `havn-tiny`, so scripted nodes stand in for built-in ones. */
  readonly model?: string;
  readonly slots?: number;
  /** Delay before each token, in ms. Default 0: answers at once. */
  readonly tokenDelayMs?: number;
  /**
   * Each token's delay varies by up to this many ms either way, as a real engine's time varies
   * with the request. The variation is a function of the request (like the text), so the same
   * request takes the same time wherever it runs. Default 0.
   */
  readonly tokenDelayJitterMs?: number;
  /** Tokens per answer when `max_tokens` allows. Default 8. */
  readonly tokens?: number;
  /** Changes every word: two nodes with different variants disagree on the same job. */
  readonly variant?: string;
  /** `error`: every job fails (retryable); `hang`: jobs never finish until cancelled. */
  readonly fault?: "error" | "hang";
  readonly name?: string;
  /** Task kinds the model serves. Default both. */
  readonly tasks?: readonly TaskKind[];
}

function lastText(input: JobInput): string {
  return input.kind === "completion" ? input.prompt : (input.messages[input.messages.length - 1]?.content ?? "");
}

/**
 * A deterministic stand-in for an inference engine: its answer is a function of the input,
 * seed and variant only, so a job re-run on another scripted node repeats the same text —
 * as a real engine with pinned determinism does. Used for fault injection and benchmarks.
 */
export class ScriptedBackend implements Backend {
  private readonly o: Required<Omit<ScriptedBackendOptions, "fault" | "variant">> &
    Pick<ScriptedBackendOptions, "fault" | "variant">;
  generated = 0;
  /**
   * Set to a reason to take the engine down, as a stopped server would be: every job fails with
   * BACKEND_UNAVAILABLE and health checks fail, until it is set back to null.
   */
  down: string | null = null;

  constructor(options: ScriptedBackendOptions = {}) {
    this.o = {
      model: options.model ?? "havn-tiny",
      slots: options.slots ?? 4,
      tokenDelayMs: options.tokenDelayMs ?? 0,
      tokenDelayJitterMs: Math.min(options.tokenDelayJitterMs ?? 0, options.tokenDelayMs ?? 0),
      tokens: options.tokens ?? 8,
      name: options.name ?? "scripted",
      tasks: options.tasks ?? ["chat", "completion"],
      fault: options.fault,
      variant: options.variant,
    };
  }

  async info(): Promise<BackendInfo> {
    return {
      backend: this.o.name,
      engineVersion: "scripted/1",
      models: [
        {
          name: this.o.model,
          tasks: [...this.o.tasks],
          contextLength: 4096,
          modelHash: hashCanonical({ scripted: this.o.model }),
          source: { kind: "generated", ref: `scripted ${this.o.model}` },
        },
      ],
      slots: this.o.slots,
      canScore: false,
      runtime: { engine: "scripted", engine_version: "1", batch_size: 1, threads: 1, device: "cpu" },
    };
  }

  /** The words an answer consists of. */
  words(input: JobInput, seed: number): string[] {
    const h = hashCanonical({ input, seed, variant: this.o.variant ?? null });
    return Array.from({ length: this.o.tokens }, (_, i) => `${i === 0 ? "" : " "}w${h.slice(i * 4, i * 4 + 4)}`);
  }

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    if (request.model !== this.o.model) throw new HavnError("BACKEND_MODEL_NOT_LOADED", "Not served here.");
    if (this.down !== null) throw new HavnError("BACKEND_UNAVAILABLE", `Scripted engine down: ${this.down}.`);
    if (this.o.fault === "error") throw new HavnError("BACKEND_UNAVAILABLE", "Scripted failure.");
    if (this.o.fault === "hang") {
      await new Promise<void>((resolve) => request.signal?.addEventListener("abort", () => resolve(), { once: true }));
      return { text: "", finishReason: "cancelled", promptTokens: 0, completionTokens: 0 };
    }
    const words = this.words(request.input, request.params.seed).slice(0, request.params.max_tokens);
    // Each token's delay, a function of the request: 16 bits of its hash give a fraction in [-1, 1].
    const pace = this.o.tokenDelayJitterMs > 0 ? hashCanonical({ pace: request.input, seed: request.params.seed }) : "";
    const delayMs = (i: number) =>
      pace === ""
        ? this.o.tokenDelayMs
        : this.o.tokenDelayMs +
          (Number.parseInt(pace.slice((i * 4) % 60, ((i * 4) % 60) + 4), 16) / 32_767.5 - 1) *
            this.o.tokenDelayJitterMs;
    let text = "";
    let n = 0;
    const tokenIds: number[] = [];
    // Tokens keep to a schedule fixed when the request arrives, as an accelerator's do: a busy
    // host delays a token only by its own timer's lateness, which the next token makes up.
    let due = performance.now();
    for (const w of words) {
      if (this.o.tokenDelayMs > 0) {
        due += delayMs(n);
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      }
      if (request.signal?.aborted) return { text, finishReason: "cancelled", promptTokens: 1, completionTokens: n };
      text += w;
      n++;
      tokenIds.push(Number.parseInt(hashCanonical(w).slice(0, 6), 16));
      request.onText?.(w);
    }
    this.generated++;
    return {
      text,
      finishReason: words.length < this.o.tokens ? "length" : "stop",
      promptTokens: Math.max(1, Math.ceil(lastText(request.input).length / 4)),
      completionTokens: n,
      tokenIds,
    };
  }

  async health(): Promise<BackendHealth> {
    return this.down === null
      ? { ok: true }
      : { ok: false, code: "BACKEND_UNAVAILABLE", reason: `scripted engine down: ${this.down}` };
  }

  async score(): Promise<ScoreResult> {
    throw new HavnError("BACKEND_UNSUPPORTED", "Scripted backends do not score.");
  }

  async close(): Promise<void> {}
}
