import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import type * as NodeLlamaCpp from "node-llama-cpp";
import type { ChatHistoryItem, Llama, LlamaContext, LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import { HavnError, type JobInput } from "@havn/protocol";
import {
  StopMatcher,
  type Backend,
  type BackendHealth,
  type BackendInfo,
  type GenerateRequest,
  type GenerateResult,
  type RuntimeIdentity,
  type ScoreRequest,
  type ScoreResult,
} from "../backend.js";
import { checkModelFile, ensureTinyModelFile, hashModelFile } from "./model-file.js";
import { defaultTinyModelSpec } from "./tiny-model.js";

export interface BuiltinBackendOptions {
  /** A GGUF file to serve (a downloaded Llama, Qwen, …). Default: the generated tiny model. */
  readonly modelFile?: string | undefined;
  /** The name the model is advertised under. Default `havn-tiny`, or the file's base name. */
  readonly modelName?: string | undefined;
  /** Where the tiny model is written. Default `<tmpdir>/havn-models`. */
  readonly modelDir?: string | undefined;
  /**
   * Where the SHA-256 of `modelFile` is cached (the node's data dir): hashing a large GGUF takes
   * seconds. Never beside the model file. Default: no cache.
   */
  readonly cacheDir?: string | undefined;
  /** Called while a model file is hashed and loaded, with the stage and how much is done (0–1). */
  readonly onProgress?: ((stage: "hash" | "load", fraction: number) => void) | undefined;
  /** Jobs run at once, each in its own context. Default 1. Each costs one KV cache. */
  readonly slots?: number | undefined;
  /**
   * CPU threads per evaluation. Default 1 for the tiny model (it is fastest single-threaded),
   * 4 for a model file. Part of the runtime identity: results are bit-identical only at the
   * same thread count.
   */
  readonly threads?: number | undefined;
  /** Tokens evaluated per batch. Default 512. Part of the runtime identity, like threads. */
  readonly batchSize?: number | undefined;
  /** Context window in tokens. Default: the model's, at most 4096. */
  readonly contextSize?: number | undefined;
  /** `"auto"` uses CUDA/Vulkan/Metal when present; `false` forces CPU. Default: false for the tiny model. */
  readonly gpu?: "auto" | false | undefined;
}

/** node-llama-cpp's version; its exports map hides package.json, so read it beside the entry. */
function engineVersion(): string {
  let dir = dirname(createRequire(import.meta.url).resolve("node-llama-cpp"));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version: string }).version;
}

/**
 * node-llama-cpp, imported on first use: the import alone takes ~0.4 s, which every process that
 * merely links the engine package (a client, a coordinator, an `openai` node) would pay.
 */
type LlamaModule = typeof NodeLlamaCpp;
let llamaModule: Promise<LlamaModule> | undefined;
const importLlama = () => (llamaModule ??= import("node-llama-cpp"));

// Loading the native binding takes ~0.8 s; share one per GPU setting.
const llamas = new Map<string, Promise<Llama>>();
async function loadLlama(gpu: "auto" | false): Promise<Llama> {
  const key = String(gpu);
  let llama = llamas.get(key);
  if (!llama) {
    const { getLlama, LlamaLogLevel } = await importLlama();
    // build: "never" — use the binaries shipped in the npm packages; never compile or download.
    llama = getLlama({ gpu, build: "never", logLevel: LlamaLogLevel.error });
    llamas.set(key, llama);
  }
  return llama;
}

interface Slot {
  readonly context: LlamaContext;
  readonly sequence: LlamaContextSequence;
}

/** A loaded model and what is derived from it once. */
interface Loaded {
  readonly model: LlamaModel;
  readonly info: BackendInfo;
  readonly contextSize: number;
  /**
   * The model's chat template, resolved once: resolving renders the model's Jinja template to
   * find the equivalent built-in wrapper, ~100–400 ms — once per job, it cost the tiny model
   * ~150 ms of every answer.
   */
  readonly chatWrapper: NonNullable<ReturnType<LlamaModule["resolveChatWrapper"]>> | NodeLlamaCpp.GeneralChatWrapper;
}

/**
 * Runs a GGUF model in-process with node-llama-cpp (llama.cpp). Determinism is pinned: seed,
 * temperature, batch size and thread count are explicit, the repeat penalty is off, and each
 * job evaluates alone in its own context so batch composition never changes its numbers.
 */
export class BuiltinBackend implements Backend {
  private readonly options: BuiltinBackendOptions;
  private loaded: Promise<Loaded> | undefined;
  private readonly free: Slot[] = [];
  private readonly waiters: ((slot: Slot) => void)[] = [];
  private created = 0;
  private closed = false;

  constructor(options: BuiltinBackendOptions = {}) {
    this.options = options;
  }

  private load() {
    this.loaded ??= (async () => {
      const o = this.options;
      const isTiny = o.modelFile === undefined;
      if (!isTiny) await checkModelFile(o.modelFile!);
      const file = isTiny
        ? ensureTinyModelFile(o.modelDir ?? join(tmpdir(), "havn-models"))
        : {
            path: o.modelFile!,
            sha256: await hashModelFile(o.modelFile!, {
              cacheDir: o.cacheDir,
              onProgress: o.onProgress && ((done, total) => o.onProgress!("hash", total > 0 ? done / total : 1)),
            }),
          };
      const gpu = o.gpu ?? (isTiny ? false : "auto");
      const [llamaModule, llama] = await Promise.all([importLlama(), loadLlama(gpu)]);
      o.onProgress?.("load", 0);
      const model = await llama.loadModel({
        modelPath: file.path,
        ...(gpu === false ? { gpuLayers: 0 } : {}),
        ...(o.onProgress
          ? { onLoadProgress: (fraction: number) => o.onProgress!("load", Math.min(fraction, 0.99)) }
          : {}),
      });
      o.onProgress?.("load", 1);
      const contextSize = Math.min(o.contextSize ?? 4096, model.trainContextSize);
      const name = o.modelName ?? (isTiny ? defaultTinyModelSpec.name : basename(file.path, extname(file.path)));
      const runtime: RuntimeIdentity = {
        engine: "llama.cpp",
        engine_version: `node-llama-cpp@${engineVersion()}/${llama.llamaCppRelease.release}`,
        batch_size: o.batchSize ?? 512,
        threads: o.threads ?? (isTiny ? 1 : 4),
        device: llama.gpu === false ? "cpu" : llama.gpu,
      };
      const info: BackendInfo = {
        backend: "builtin",
        engineVersion: runtime.engine_version,
        models: [
          {
            name,
            tasks: ["chat", "completion"],
            contextLength: contextSize,
            modelHash: file.sha256,
            source: isTiny
              ? { kind: "generated", ref: `${defaultTinyModelSpec.name} seed ${defaultTinyModelSpec.seed}` }
              : { kind: "file", ref: basename(file.path).slice(0, 256) },
          },
        ],
        slots: o.slots ?? 1,
        canScore: true,
        runtime,
      };
      // A model without a usable template gets a plain general-purpose one.
      const chatWrapper = llamaModule.resolveChatWrapper(model) ?? new llamaModule.GeneralChatWrapper();
      return { model, info, contextSize, chatWrapper };
    })();
    return this.loaded;
  }

  async info(): Promise<BackendInfo> {
    return (await this.load()).info;
  }

  /** In-process: healthy once the model is loaded, until the backend is closed. */
  async health(): Promise<BackendHealth> {
    if (this.closed) return { ok: false, code: "BACKEND_UNAVAILABLE", reason: "the built-in engine was closed" };
    try {
      await this.load();
      return { ok: true };
    } catch (err) {
      const code = err instanceof HavnError ? err.code : "BACKEND_UNAVAILABLE";
      return { ok: false, code, reason: err instanceof HavnError ? err.shortMessage : String(err) };
    }
  }

  private async acquire(): Promise<Slot> {
    const { model, info, contextSize } = await this.load();
    const slot = this.free.pop();
    if (slot) return slot;
    if (this.created < info.slots) {
      this.created++;
      const context = await model.createContext({
        contextSize,
        batchSize: info.runtime.batch_size,
        threads: info.runtime.threads,
        sequences: 1,
      });
      return { context, sequence: context.getSequence() };
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(slot: Slot) {
    const next = this.waiters.shift();
    if (next) next(slot);
    else this.free.push(slot);
  }

  private checkModel(name: string, info: BackendInfo) {
    if (!info.models.some((m) => m.name === name)) {
      throw new HavnError("BACKEND_MODEL_NOT_LOADED", "This backend does not serve the requested model.", {
        context: { Model: name, Serves: info.models.map((m) => m.name).join(", ") },
      });
    }
  }

  /** The prompt as tokens: chats through the model's own chat template, special tokens safe. */
  private promptTokens({ model, chatWrapper }: Loaded, input: JobInput): { tokens: Token[]; stops: string[] } {
    if (input.kind === "completion") {
      const text = model.tokenize(input.prompt, false);
      const bos = model.tokens.bos;
      return { tokens: bos !== null && model.tokens.shouldPrependBosToken ? [bos, ...text] : text, stops: [] };
    }
    const history: ChatHistoryItem[] = input.messages.map((m) =>
      m.role === "assistant" ? { type: "model", response: [m.content] } : { type: m.role, text: m.content },
    );
    history.push({ type: "model", response: [] });
    const state = chatWrapper.generateContextState({ chatHistory: history });
    const stops = state.stopGenerationTriggers
      .map((t) => t.values.filter((v): v is string => typeof v === "string").join(""))
      .filter((s) => s.length > 0);
    return { tokens: state.contextText.tokenize(model.tokenizer), stops };
  }

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    const loaded = await this.load();
    const { model, info, contextSize } = loaded;
    this.checkModel(request.model, info);
    const { tokens, stops } = this.promptTokens(loaded, request.input);
    if (tokens.length >= contextSize) {
      throw new HavnError("REQUEST_PROMPT_TOO_LONG", "The prompt does not fit the model's context window.", {
        context: { "Prompt tokens": tokens.length, "Context size": contextSize },
      });
    }
    const { params, signal, onText } = request;
    const maxTokens = Math.min(params.max_tokens, contextSize - tokens.length);
    const slot = await this.acquire();
    try {
      await slot.sequence.clearHistory();
      const stop = new StopMatcher([...params.stop, ...stops]);
      let text = "";
      let completionTokens = 0;
      const tokenIds: number[] = [];
      let finishReason: GenerateResult["finishReason"] = "stop";
      const pending: Token[] = [];
      let previous: Token[] = [];
      const emit = (piece: string) => {
        if (piece.length === 0) return;
        text += piece;
        onText?.(piece);
      };
      const generator = slot.sequence.evaluate(tokens, {
        temperature: params.temperature,
        topP: params.top_p,
        seed: params.seed,
      });
      let stopped = false;
      for await (const token of generator) {
        if (signal?.aborted) {
          finishReason = "cancelled";
          break;
        }
        completionTokens++;
        tokenIds.push(token);
        pending.push(token);
        const piece = model.detokenize(pending, false, previous);
        // A multi-byte character split across byte tokens decodes to U+FFFD until it is whole.
        if (!piece.endsWith("\uFFFD") || pending.length >= 4) {
          const result = stop.push(piece);
          emit(result.emit);
          previous = [...previous, ...pending].slice(-8);
          pending.length = 0;
          if (result.stopped) {
            stopped = true;
            break;
          }
        }
        if (completionTokens >= maxTokens) {
          finishReason = "length";
          break;
        }
      }
      if (!stopped && finishReason !== "cancelled") {
        if (pending.length > 0) emit(stop.push(model.detokenize(pending, false, previous)).emit);
        emit(stop.flush());
      }
      return { text, finishReason, promptTokens: tokens.length, completionTokens, tokenIds };
    } finally {
      this.release(slot);
    }
  }

  async score(request: ScoreRequest): Promise<ScoreResult> {
    const loaded = await this.load();
    const { model, info, contextSize } = loaded;
    this.checkModel(request.model, info);
    const prompt = this.promptTokens(loaded, request.input).tokens;
    const continuation = model.tokenize(request.continuation, false, "trimLeadingSpace");
    if (prompt.length + continuation.length > contextSize) {
      throw new HavnError("REQUEST_PROMPT_TOO_LONG", "Prompt and continuation do not fit the context window.", {
        context: { Tokens: prompt.length + continuation.length, "Context size": contextSize },
      });
    }
    const all = [...prompt, ...continuation];
    const first = prompt.length - 1;
    const items = all.slice(0, -1).map((token, i) =>
      i < first
        ? token
        : ([
            token,
            {
              generateNext: {
                logits: { filter: { tokens: [all[i + 1]!], includeTop: 1 } },
                totalLogitWeight: true,
              },
            },
          ] as const),
    );
    const slot = await this.acquire();
    try {
      await slot.sequence.clearHistory();
      const out = await slot.sequence.controlledEvaluate(
        items as Parameters<LlamaContextSequence["controlledEvaluate"]>[0],
      );
      const logprobs = continuation.map((token, k) => {
        const next = out[first + k]?.next;
        const logits = next?.logits;
        if (!logits || next.totalLogitWeight === undefined) throw new Error("score: llama.cpp returned no logits");
        const max = Math.max(...logits.values());
        return logits.get(token)! - max - Math.log(next.totalLogitWeight);
      });
      // Decode each token after its predecessor, so a leading-space marker reads as a space.
      const pieces = continuation.map((t, k) => model.detokenize([t], false, all.slice(first + k, first + k + 1)));
      return { tokens: pieces, logprobs };
    } finally {
      this.release(slot);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const slot of this.free) await slot.context.dispose();
    this.free.length = 0;
    // A model that failed to load has nothing to dispose of (and its error was reported already).
    const loaded = await this.loaded?.catch(() => undefined);
    await loaded?.model.dispose();
  }
}
