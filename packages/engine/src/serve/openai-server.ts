import { randomUUID } from "node:crypto";
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import { pino, type Logger } from "pino";
import {
  chatCompletionChunk,
  HavnError,
  newJobId,
  openAIChunk,
  openAIErrorBody,
  openAIResponse,
  openAIUsageChunk,
  parseOpenAIRequest,
  requestIdPattern,
  type GenerationParams,
  type JobInput,
  type OpenAIKind,
} from "@havn/protocol";
import { jobOutputOf, type Backend } from "../backend.js";

export interface ServeModelOptions {
  /** Default `max_tokens` when a request names none. Default 256. */
  readonly defaultMaxTokens?: number;
  /** Request body limit in bytes. Default 4 MiB. */
  readonly bodyLimitBytes?: number;
  /**
   * Where to log: one line per request (method, path, status, model, tokens, duration and the
   * request id, echoed in `x-request-id`). Its lines get `name: "serve-model"`. Default: nowhere.
   */
  readonly logger?: Logger;
}

function sendError(reply: FastifyReply, err: unknown) {
  const e =
    err instanceof HavnError ? err : new HavnError("INTERNAL_ERROR", "The model server failed.", { cause: err });
  return reply.code(e.status).send(openAIErrorBody(e.toBody(), e.status));
}

/**
 * Serves one backend as an OpenAI-compatible HTTP server (`havn serve-model`), so the `openai`
 * backend — and any OpenAI client — can be pointed at havn's built-in engine. Built, not
 * listening: the caller listens.
 */
export function createOpenAIServer(backend: Backend, options: ServeModelOptions = {}): FastifyInstance {
  const logger = (options.logger ?? pino({ level: "silent" })).child({ name: "serve-model" });
  const app = Fastify({
    bodyLimit: options.bodyLimitBytes ?? 4 * 1024 * 1024,
    loggerInstance: logger as FastifyBaseLogger,
    // One line per request, written below with what matters (model, tokens), not Fastify's two.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "request_id" }),
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && requestIdPattern.test(given) ? given : randomUUID();
    },
  });
  const started = new WeakMap<FastifyRequest, number>();
  /** What a request ran, for its log line. */
  const served = new WeakMap<FastifyRequest, { model: string; stream: boolean; tokens?: number; error?: string }>();
  app.addHook("onRequest", async (request, reply) => {
    started.set(request, performance.now());
    reply.header("x-request-id", request.id);
  });
  // One line per request, streamed ones included (the hook runs when the response ends).
  app.addHook("onResponse", async (request, reply) =>
    request.log.info(
      {
        method: request.method,
        path: request.url.split("?")[0],
        status: reply.statusCode,
        duration_ms: Math.round(performance.now() - (started.get(request) ?? performance.now())),
        ...served.get(request),
      },
      "request",
    ),
  );
  const defaults = () => ({ maxTokens: options.defaultMaxTokens ?? 256, seed: Math.floor(Math.random() * 0xffffffff) });

  app.setErrorHandler((err, _req, reply) => {
    const e = err as { statusCode?: number; message: string };
    if (e.statusCode && e.statusCode < 500) {
      return reply
        .code(e.statusCode)
        .send(openAIErrorBody({ code: "REQUEST_INVALID", message: e.message, retryable: false }, e.statusCode));
    }
    return sendError(reply, err);
  });

  /** 200 while the engine answers, 503 with the reason when it does not (load balancers read the status). */
  app.get("/health", async (_request, reply) => {
    const health = await backend.health();
    return health.ok
      ? { status: "ok" }
      : reply.code(503).send({ status: "failing", code: health.code, reason: health.reason });
  });

  app.get("/v1/models", async () => {
    const info = await backend.info();
    return {
      object: "list",
      data: info.models.map((m) => ({
        id: m.name,
        object: "model",
        created: 0,
        owned_by: "havn",
        context_length: m.contextLength,
      })),
    };
  });

  async function run(
    request: FastifyRequest,
    reply: FastifyReply,
    model: string,
    job: { input: JobInput; params: GenerationParams },
    stream: boolean,
    includeUsage: boolean,
    kind: OpenAIKind,
  ) {
    const info = await backend.info();
    if (!info.models.some((m) => m.name === model)) {
      // Checked before a stream starts: once the 200 is sent, an error can only travel in-band.
      throw new HavnError("BACKEND_MODEL_NOT_LOADED", "This server does not serve the requested model.", {
        context: { Model: model },
      });
    }
    served.set(request, { model, stream });
    const id = kind === "chat" ? `chatcmpl-${newJobId().slice(4)}` : `cmpl-${newJobId().slice(4)}`;
    const created = Math.floor(Date.now() / 1000);
    const abort = new AbortController();
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    if (!stream) {
      const r = await backend.generate({ model, ...job, signal: abort.signal });
      served.set(request, { model, stream, tokens: r.completionTokens });
      return openAIResponse(kind, id, model, created, jobOutputOf(r));
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const send = (data: unknown) => raw.write(`data: ${JSON.stringify(data)}\n\n`);
    if (kind === "chat") send(chatCompletionChunk(id, model, created, { role: "assistant", content: "" }));
    try {
      const r = await backend.generate({
        model,
        ...job,
        signal: abort.signal,
        onText: (t) => send(openAIChunk(kind, id, model, created, t)),
      });
      send(openAIChunk(kind, id, model, created, "", r.finishReason));
      if (includeUsage) send(openAIUsageChunk(kind, id, model, created, jobOutputOf(r)));
      raw.write("data: [DONE]\n\n");
      served.set(request, { model, stream, tokens: r.completionTokens });
    } catch (err) {
      const e = err instanceof HavnError ? err : new HavnError("INTERNAL_ERROR", "Generation failed.", { cause: err });
      send(openAIErrorBody(e.toBody(), e.status));
      served.set(request, { model, stream, error: e.code });
    }
    raw.end();
    return reply;
  }

  async function handle(kind: OpenAIKind, request: FastifyRequest, reply: FastifyReply) {
    try {
      const parsed = parseOpenAIRequest(kind, request.body, defaults());
      if (parsed.kind === "completion" && parsed.body.echo && parsed.body.max_tokens === 0) {
        // Prompt scoring: the logprob of every prompt token given those before it.
        const prompt = parsed.job.input.kind === "completion" ? parsed.job.input.prompt : "";
        const scored = await backend.score({
          model: parsed.model,
          input: { kind: "completion", prompt: "" },
          continuation: prompt,
        });
        let offset = 0;
        const text_offset = scored.tokens.map((t) => {
          const at = offset;
          offset += t.length;
          return at;
        });
        return {
          id: `cmpl-${newJobId().slice(4)}`,
          object: "text_completion",
          created: Math.floor(Date.now() / 1000),
          model: parsed.model,
          choices: [
            {
              index: 0,
              text: prompt,
              finish_reason: "length",
              logprobs: { tokens: scored.tokens, token_logprobs: scored.logprobs, text_offset, top_logprobs: null },
            },
          ],
          usage: { prompt_tokens: scored.tokens.length, completion_tokens: 0, total_tokens: scored.tokens.length },
        };
      }
      return await run(request, reply, parsed.model, parsed.job, parsed.stream, parsed.includeUsage, kind);
    } catch (err) {
      return sendError(reply, err);
    }
  }

  app.post("/v1/chat/completions", (req, reply) => handle("chat", req, reply));
  app.post("/v1/completions", (req, reply) => handle("completion", req, reply));

  return app;
}
