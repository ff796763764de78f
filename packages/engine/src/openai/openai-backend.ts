import { createParser } from "eventsource-parser";
import { Agent, request as httpRequest, type Dispatcher } from "undici";
import { hashCanonical, HavnError, type JobInput } from "@havn/protocol";
import type {
  Backend,
  BackendHealth,
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
  /** How long a health check (`GET /models`) may take, in ms. Default 5 000. */
  readonly healthTimeoutMs?: number | undefined;
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
  /**
   * The base URL as messages show it: without credentials or a query. Messages travel — into
   * logs, to the coordinator in heartbeats, to operators' screens.
   */
  private readonly shownUrl: string;
  private readonly agent = new Agent({ keepAliveTimeout: 30_000, connections: 256 });
  private infoPromise: Promise<BackendInfo> | undefined;

  constructor(private readonly options: OpenAIBackendOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    let url: URL | undefined;
    try {
      url = new URL(this.baseUrl);
    } catch {
      // reported below
    }
    if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
      throw new HavnError(
        "BACKEND_URL_INVALID",
        "--backend-url is not an http(s) URL: pass the server's API base, e.g. http://127.0.0.1:11434/v1 (Ollama).",
      );
    }
    this.shownUrl = `${url.protocol}//${url.host}${url.pathname}`.replace(/\/+$/, "");
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
        context: { URL: `${this.shownUrl}${path}` },
        cause: err,
      });
    }
    if (response.statusCode >= 400) {
      const text = await response.body.text().catch(() => "");
      throw new HavnError(
        response.statusCode === 404 ? "BACKEND_MODEL_NOT_LOADED" : "BACKEND_UNAVAILABLE",
        "The OpenAI-compatible server answered an error.",
        { context: { URL: `${this.shownUrl}${path}`, Status: response.statusCode }, details: text.slice(0, 2000) },
      );
    }
    return response;
  }

  /**
   * `GET /models`, with each way it can go wrong told apart and named with its fix: nothing
   * listening, a base URL without `/v1` (which used to surface as a misleading
   * BACKEND_MODEL_NOT_LOADED), a refused API key, a server that is not OpenAI-compatible.
   */
  private async listModels(timeoutMs: number): Promise<{ listed: ServerModel[]; serverName: string }> {
    const get = (url: string) =>
      httpRequest(url, {
        method: "GET",
        headers: this.headers(),
        dispatcher: this.agent,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    let response: Dispatcher.ResponseData;
    try {
      response = await get(`${this.baseUrl}/models`);
    } catch (err) {
      throw new HavnError(
        "BACKEND_UNAVAILABLE",
        `Nothing answers at ${this.shownUrl} (${networkReason(err)}): start the model server, or fix --backend-url.`,
        { cause: err },
      );
    }
    const status = response.statusCode;
    if (status === 401 || status === 403) {
      await response.body.dump();
      throw new HavnError(
        "BACKEND_UNAVAILABLE",
        `${this.shownUrl} refused the API key (HTTP ${status}): set --api-key or HAVN_BACKEND_API_KEY.`,
      );
    }
    if (status === 404) {
      await response.body.dump();
      if (!/\/v1$/.test(this.baseUrl)) {
        const withV1 = `${this.baseUrl}/v1`;
        const shownWithV1 = `${this.shownUrl}/v1`;
        const ok = await get(`${withV1}/models`).then(
          async (r) => {
            await r.body.dump();
            return r.statusCode === 200;
          },
          () => false,
        );
        throw new HavnError(
          "BACKEND_URL_INVALID",
          ok
            ? `${this.shownUrl} is not the API's base URL: use --backend-url ${shownWithV1}.`
            : `${this.shownUrl} has no /models: an OpenAI-compatible base URL ends in /v1 (Ollama: http://127.0.0.1:11434/v1).`,
        );
      }
      throw new HavnError(
        "BACKEND_NOT_OPENAI_COMPATIBLE",
        `${this.shownUrl}/models does not exist: is --backend-url an OpenAI-compatible server (Ollama, LM Studio, llama.cpp server, vLLM)?`,
      );
    }
    if (status >= 500) {
      await response.body.dump();
      throw new HavnError(
        "BACKEND_UNAVAILABLE",
        `${this.shownUrl}/models answered HTTP ${status}: the server is failing.`,
      );
    }
    const body = (await response.body.json().catch(() => undefined)) as { data?: unknown } | undefined;
    if (status !== 200 || !body || !Array.isArray(body.data)) {
      throw new HavnError(
        "BACKEND_NOT_OPENAI_COMPATIBLE",
        `${this.shownUrl}/models did not answer an OpenAI model list (HTTP ${status}): is --backend-url an OpenAI-compatible server?`,
      );
    }
    const header = response.headers.server;
    const serverName = (Array.isArray(header) ? header[0] : header) ?? "unknown";
    const listed = (body.data as ServerModel[]).filter((m) => m && typeof m.id === "string");
    return { listed, serverName };
  }

  async info(): Promise<BackendInfo> {
    this.infoPromise ??= (async () => {
      const { listed, serverName } = await this.listModels(this.options.healthTimeoutMs ?? 5_000);
      const wanted = this.options.models;
      const chosen = wanted ? listed.filter((m) => wanted.includes(m.id)) : listed;
      if (wanted) {
        const missing = wanted.filter((w) => !listed.some((m) => m.id === w));
        if (missing.length > 0) {
          throw new HavnError(
            "BACKEND_MODEL_NOT_LOADED",
            `${this.shownUrl} does not list ${missing.join(", ")}: load or pull it on the server, or pick one it lists with --model.`,
            { context: { Listed: listed.map((m) => m.id).join(", ") || "(none)" } },
          );
        }
      }
      if (chosen.length === 0) {
        throw new HavnError(
          "BACKEND_MODEL_NOT_LOADED",
          `${this.shownUrl} lists no models: load one on the server first (Ollama: ollama pull llama3.2).`,
        );
      }
      const models: BackendModel[] = chosen.map((m) => ({
        name: m.id,
        tasks: ["chat", "completion"],
        contextLength: m.context_length ?? m.max_model_len ?? this.options.contextLength ?? 4096,
        // The weights are out of reach; hash what the server says identifies the model.
        modelHash: hashCanonical({ id: m.id, created: m.created ?? null, owned_by: m.owned_by ?? null }),
        source: { kind: "server", ref: `${serverName}:${m.id}`.slice(0, 256) },
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

  /** The server answers its model list and still lists every model this backend serves. */
  async health(): Promise<BackendHealth> {
    try {
      const { listed } = await this.listModels(this.options.healthTimeoutMs ?? 5_000);
      const info = await this.info();
      const missing = info.models.filter((m) => !listed.some((l) => l.id === m.name)).map((m) => m.name);
      if (missing.length > 0)
        return {
          ok: false,
          code: "BACKEND_MODEL_NOT_LOADED",
          reason: `${this.shownUrl} no longer lists ${missing.join(", ")}`,
        };
      return { ok: true };
    } catch (err) {
      const e = err instanceof HavnError ? err : new HavnError("BACKEND_UNAVAILABLE", String(err));
      return { ok: false, code: e.code, reason: e.shortMessage };
    }
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
              context: { URL: this.shownUrl },
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
        context: { Backend: this.shownUrl },
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
        context: { Backend: this.shownUrl },
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

/** A network error as a few words: the system code (ECONNREFUSED, ENOTFOUND…) or undici's. */
function networkReason(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string }; message?: string };
  return e.cause?.code ?? e.code ?? e.message ?? "unreachable";
}
