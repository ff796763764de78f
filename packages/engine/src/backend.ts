import type { ErrorCode, GenerationParams, JobInput, JobOutput, TaskKind } from "@havn/protocol";

/** A model a backend serves. */
export interface BackendModel {
  readonly name: string;
  readonly tasks: readonly TaskKind[];
  readonly contextLength: number;
  /** SHA-256 of the model file, or of the server's model identity when the file is out of reach. */
  readonly modelHash: string;
}

/**
 * What pins a generation: the same identity, model and parameters give the same tokens. It is
 * hashed into every receipt (`runtime_hash`).
 */
export interface RuntimeIdentity {
  readonly engine: string;
  readonly engine_version: string;
  readonly batch_size: number;
  readonly threads: number;
  readonly device: string;
}

export interface BackendInfo {
  /** `builtin`, `openai`, or a test backend's name. */
  readonly backend: string;
  readonly engineVersion: string;
  readonly models: readonly BackendModel[];
  /** Jobs the backend runs at once. */
  readonly slots: number;
  /** Whether `score` works. */
  readonly canScore: boolean;
  readonly runtime: RuntimeIdentity;
}

export interface GenerateRequest {
  readonly model: string;
  readonly input: JobInput;
  readonly params: GenerationParams;
  readonly signal?: AbortSignal | undefined;
  /** Called with each piece of text as it is generated, in order. */
  readonly onText?: ((text: string) => void) | undefined;
}

export interface GenerateResult {
  readonly text: string;
  readonly finishReason: "stop" | "length" | "cancelled";
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/** A generation as the wire carries it (result messages, OpenAI answers). */
export function jobOutputOf(result: GenerateResult): JobOutput {
  return {
    text: result.text,
    finish_reason: result.finishReason,
    usage: { prompt_tokens: result.promptTokens, completion_tokens: result.completionTokens },
  };
}

export interface ScoreRequest {
  readonly model: string;
  readonly input: JobInput;
  /** The text whose tokens are scored as the model's continuation of `input`. */
  readonly continuation: string;
}

export interface ScoreResult {
  /** The continuation's tokens as text pieces. */
  readonly tokens: readonly string[];
  /** Natural-log probability of each token given everything before it. */
  readonly logprobs: readonly number[];
}

/**
 * Whether a backend can run jobs right now. A node checks it before it advertises its models and
 * keeps checking; a failing backend makes the node report itself unavailable (it gets no jobs)
 * until a check passes again.
 */
export type BackendHealth =
  { readonly ok: true } | { readonly ok: false; readonly code: ErrorCode; readonly reason: string };

/** An inference backend: the one interface node-agent and validator run jobs through. */
export interface Backend {
  info(): Promise<BackendInfo>;
  /** A quick check that the backend answers (a few seconds at most); never throws. */
  health(): Promise<BackendHealth>;
  generate(request: GenerateRequest): Promise<GenerateResult>;
  /** Teacher-forced scoring: per-token log-probabilities of a given continuation. */
  score(request: ScoreRequest): Promise<ScoreResult>;
  close(): Promise<void>;
}

/**
 * Holds back text that could still become a stop sequence, so a stop string never streams —
 * and only that much: text that cannot start a stop sequence is released at once.
 */
export class StopMatcher {
  private pending = "";
  constructor(private readonly stops: readonly string[]) {}

  /** Returns the text safe to emit and whether a stop sequence ended the output. */
  push(text: string): { emit: string; stopped: boolean } {
    this.pending += text;
    for (const stop of this.stops) {
      const at = this.pending.indexOf(stop);
      if (at !== -1) {
        const emit = this.pending.slice(0, at);
        this.pending = "";
        return { emit, stopped: true };
      }
    }
    const hold = this.partialMatchLength();
    const emit = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { emit, stopped: false };
  }

  /** Length of the longest suffix of the pending text that is a proper prefix of a stop string. */
  private partialMatchLength(): number {
    let best = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, this.pending.length); n > best; n--) {
        if (this.pending.endsWith(stop.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }

  flush(): string {
    const rest = this.pending;
    this.pending = "";
    return rest;
  }
}
