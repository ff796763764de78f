import { createParser } from "eventsource-parser";
import { Agent, request as httpRequest, type Dispatcher } from "undici";
import { hashCanonical, HavnError, type JobInput } from "@havn/protocol";
import type {
  Backend,
  BackendInfo,
  BackendModel,
  GenerateRequest,
  GenerateResult,
  ScoreRequest,
  ScoreResult,
} from "../backend.js";

export interface OpenAIBackendOptions {
  /** Base URL including `/v1`: Ollama `http://127.0.0.1:11434/v1`, LM Studio `:1234/v1`, vLLM `:8000/v1`. */
  readonly baseUrl: string;
  readonly apiKey?: string | undefined;
  /** Advertise only these models (default: every model the server lists). */
  readonly models?: readonly string[] | undefined;
  /** Jobs sent to the server at once. Default 4: servers batch well, but their queues are opaque. */
  readonly slots?: number | undefined;
  /** Context length to advertise when the server does not say. Default 4096. */
  readonly contextLength?: number | undefined;
  /** How long one request may take, in ms. Default 600 000 (10 min): long generations on slow GPUs. */
  readonly timeoutMs?: number | undefined;
}

interface ServerModel {
  id: string;
  created?: number;
  owned_by?: string;
  context_length?: number;
  max_model_len?: number;
}

/**
 * Any OpenAI-compatible server over HTTP (Ollama, LM Studio, llama.cpp server, vLLM, havn's own
 * `serve-model`). Generation streams over SSE. Scoring needs prompt logprobs (`echo` with
 * `logprobs` on `/v1/completions`), which only some servers offer; chat inputs cannot be scored
 * because the server's chat template is out of reach.
 */
export class OpenAIBackend implements Backend {
  private readonly baseUrl: string;
  private readonly agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 });
  private infoPromise: Promise<BackendInfo> | undefined;

  constructor(private readonly options: OpenAIBackendOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
  }

  private headers(): Record<string, string> {
    return {
      "content-type": "application/json",
      ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
    };
  }

  /**
   * One HTTP request through undici's keep-alive agent: ~0.3 ms per call on a slow core where
   * `fetch` costs ~0.6 ms — on the path of every job a node runs.
   */
  private async request(
    path: string,
    init: { method: "GET" | "POST"; body?: unknown; signal?: AbortSignal | undefined },
  ): Promise<Dispatcher.ResponseData> {
    const url = `${this.baseUrl}${path}`;
    const timeout = this.options.timeoutMs ?? 600_000;
    let response: Dispatcher.ResponseData;
    try {
      response = await httpRequest(url, {
        method: init.method,
        headers: this.headers(),
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
        ...(init.signal ? { signal: init.signal } : {}),
        dispatcher: this.agent,
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      throw new HavnError("BACKEND_UNAVAILABLE", "The OpenAI-compatible server could not be reached.", {
        context: { URL: url },
        cause: err,
      });
    }
    if (response.statusCode >= 400) {
      const text = await response.body.text().catch(() => "");
      throw new HavnError(
        response.statusCode === 404 ? "BACKEND_MODEL_NOT_LOADED" : "BACKEND_UNAVAILABLE",
        "The OpenAI-compatible server answered an error.",
        { context: { URL: url, Status: response.statusCode }, details: text.slice(0, 2000) },
      );
    }
    return response;
  }

  async info(): Promise<BackendInfo> {
    this.infoPromise ??= (async () => {
      const response = await this.request("/models", { method: "GET" });
      const server = (await response.body.json()) as { data?: ServerModel[] };
      const listed = server.data ?? [];
      const wanted = this.options.models;
      const chosen = wanted ? listed.filter((m) => wanted.includes(m.id)) : listed;
      if (wanted) {
        const missing = wanted.filter((w) => !listed.some((m) => m.id === w));
        if (missing.length > 0) {
          throw new HavnError("BACKEND_MODEL_NOT_LOADED", "The server does not list the requested models.", {
            context: { Missing: missing.join(", "), Listed: listed.map((m) => m.id).join(", ") },
          });
        }
      }
      const header = response.headers.server;
      const serverName = (Array.isArray(header) ? header[0] : header) ?? "unknown";
      const models: BackendModel[] = chosen.map((m) => ({
        name: m.id,
        tasks: ["chat", "completion"],
        contextLength: m.context_length ?? m.max_model_len ?? this.options.contextLength ?? 4096,
        // The weights are out of reach; hash what the server says identifies the model.
        modelHash: hashCanonical({ id: m.id, created: m.created ?? null, owned_by: m.owned_by ?? null }),
      }));
      return {
        backend: "openai",
        engineVersion: `openai-compatible/${serverName}`,
        models,
        slots: this.options.slots ?? 4,
        canScore: false,
        runtime: {
          engine: "openai-compatible",
          engine_version: serverName,
          batch_size: 0,
          threads: 0,
          device: "remote",
        },
      };
    })();
    this.infoPromise.catch(() => (this.infoPromise = undefined));
    return this.infoPromise;
  }

  private body(request: GenerateRequest) {
    const { params, input, model } = request;
    const common = {
      model,
      max_tokens: params.max_tokens,
      temperature: params.temperature,
      top_p: params.top_p,
      seed: params.seed,
      ...(params.stop.length > 0 ? { stop: params.stop } : {}),
      // Stream from the server only when someone is listening for tokens.
      ...(request.onText ? { stream: true, stream_options: { include_usage: true } } : { stream: false }),
    };
    return input.kind === "chat"
      ? { path: "/chat/completions", body: { ...common, messages: input.messages } }
      : { path: "/completions", body: { ...common, prompt: input.prompt } };
  }

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    const { path, body } = this.body(request);
    if (!request.onText) return this.generateWhole(path, body, request.signal);
    let text = "";
    let chunks = 0;
    let finish: string | null = null;
    let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
    try {
      const response = await this.request(path, { method: "POST", body, signal: request.signal });
      const parser = createParser({
        onEvent: (event) => {
          if (event.data === "[DONE]") return;
          const chunk = JSON.parse(event.data) as {
            choices?: { delta?: { content?: string | null }; text?: string; finish_reason?: string | null }[];
            usage?: typeof usage | null;
            error?: { message?: string; code?: string | null };
          };
          if (chunk.error) {
            // Servers report a failure after the 200 as an in-band event.
            throw new HavnError("BACKEND_UNAVAILABLE", "The server failed in the middle of a stream.", {
              context: { URL: this.baseUrl },
              details: chunk.error,
            });
          }
          if (chunk.usage) usage = chunk.usage;
          const choice = chunk.choices?.[0];
          if (!choice) return;
          const piece = choice.delta?.content ?? choice.text ?? "";
          if (piece) {
            text += piece;
            chunks++;
            request.onText?.(piece);
          }
          if (choice.finish_reason) finish = choice.finish_reason;
        },
      });
      response.body.setEncoding("utf8");
      for await (const text of response.body as AsyncIterable<string>) parser.feed(text);
    } catch (err) {
      if (request.signal?.aborted) {
        return { text, finishReason: "cancelled", promptTokens: usage?.prompt_tokens ?? 0, completionTokens: chunks };
      }
      throw err;
    }
    return {
      text,
      finishReason: finish === "length" ? "length" : "stop",
      promptTokens: usage?.prompt_tokens ?? 0,
      // Servers that omit usage get one token per streamed chunk, which is what most send.
      completionTokens: usage?.completion_tokens ?? chunks,
    };
  }

  private async generateWhole(path: string, body: unknown, signal: AbortSignal | undefined): Promise<GenerateResult> {
    let result: {
      choices?: { message?: { content?: string | null }; text?: string; finish_reason?: string | null }[];
      usage?: { prompt_tokens?: number; completion_tokens?: number };
    };
    try {
      result = (await (await this.request(path, { method: "POST", body, signal })).body.json()) as typeof result;
    } catch (err) {
      if (signal?.aborted) return { text: "", finishReason: "cancelled", promptTokens: 0, completionTokens: 0 };
      throw err;
    }
    const choice = result.choices?.[0];
    const text = choice?.message?.content ?? choice?.text ?? "";
    return {
      text,
      finishReason: choice?.finish_reason === "length" ? "length" : "stop",
      promptTokens: result.usage?.prompt_tokens ?? 0,
      completionTokens: result.usage?.completion_tokens ?? 0,
    };
  }

  async score(request: ScoreRequest): Promise<ScoreResult> {
    const input: JobInput = request.input;
    if (input.kind !== "completion") {
      throw new HavnError("BACKEND_UNSUPPORTED", "An OpenAI-compatible server cannot score chat input.", {
        context: { Backend: this.baseUrl },
      });
    }
    const response = await this.request("/completions", {
      method: "POST",
      body: {
        model: request.model,
        prompt: input.prompt + request.continuation,
        max_tokens: 0,
        echo: true,
        logprobs: 0,
      },
    });
    const result = (await response.body.json()) as {
      choices?: { logprobs?: { tokens?: string[]; token_logprobs?: (number | null)[]; text_offset?: number[] } }[];
    };
    const lp = result.choices?.[0]?.logprobs;
    if (!lp?.tokens || !lp.token_logprobs || !lp.text_offset) {
      throw new HavnError("BACKEND_UNSUPPORTED", "The server returned no prompt logprobs (echo + logprobs).", {
        context: { Backend: this.baseUrl },
      });
    }
    const start = input.prompt.length;
    const tokens: string[] = [];
    const logprobs: number[] = [];
    lp.tokens.forEach((t, i) => {
      if ((lp.text_offset![i] ?? 0) >= start) {
        tokens.push(t);
        logprobs.push(lp.token_logprobs![i] ?? 0);
      }
    });
    return { tokens, logprobs };
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
