import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import {
  chatCompletionChunk,
  chatCompletionRequestSchema,
  chatCompletionResponse,
  chatRequestToJob,
  completionChunk,
  completionRequestSchema,
  completionRequestToJob,
  completionResponse,
  HavnError,
  newJobId,
  openAIErrorBody,
  usageOf,
  type GenerationParams,
  type JobInput,
  type JobOutput,
} from "@havn/protocol";
import type { Backend } from "../backend.js";
import type { z } from "zod";

export interface ServeModelOptions {
  /** Default `max_tokens` when a request names none. Default 256. */
  readonly defaultMaxTokens?: number;
  /** Request body limit in bytes. Default 4 MiB. */
  readonly bodyLimitBytes?: number;
}

function sendError(reply: FastifyReply, err: unknown) {
  const e =
    err instanceof HavnError ? err : new HavnError("INTERNAL_ERROR", "The model server failed.", { cause: err });
  return reply.code(e.status).send(openAIErrorBody(e.toBody(), e.status));
}

function parse<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  const result = schema.safeParse(body);
  if (!result.success) {
    throw new HavnError("REQUEST_INVALID", "The request does not match the schema.", {
      details: result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
    });
  }
  return result.data;
}

/**
 * Serves one backend as an OpenAI-compatible HTTP server (`havn serve-model`), so the `openai`
 * backend — and any OpenAI client — can be pointed at havn's built-in engine. Built, not
 * listening: the caller listens.
 */
export function createOpenAIServer(backend: Backend, options: ServeModelOptions = {}): FastifyInstance {
  const app = Fastify({ bodyLimit: options.bodyLimitBytes ?? 4 * 1024 * 1024 });
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

  app.get("/health", async () => ({ status: "ok" }));

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
    reply: FastifyReply,
    model: string,
    job: { input: JobInput; params: GenerationParams },
    stream: boolean,
    includeUsage: boolean,
    kind: "chat" | "completion",
  ) {
    const info = await backend.info();
    if (!info.models.some((m) => m.name === model)) {
      // Checked before a stream starts: once the 200 is sent, an error can only travel in-band.
      throw new HavnError("BACKEND_MODEL_NOT_LOADED", "This server does not serve the requested model.", {
        context: { Model: model },
      });
    }
    const id = kind === "chat" ? `chatcmpl-${newJobId().slice(4)}` : `cmpl-${newJobId().slice(4)}`;
    const created = Math.floor(Date.now() / 1000);
    const abort = new AbortController();
    reply.raw.on("close", () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    if (!stream) {
      const r = await backend.generate({ model, ...job, signal: abort.signal });
      const output: JobOutput = {
        text: r.text,
        finish_reason: r.finishReason,
        usage: { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens },
      };
      return kind === "chat"
        ? chatCompletionResponse(id, model, created, output)
        : completionResponse(id, model, created, output);
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
        onText: (t) =>
          send(
            kind === "chat"
              ? chatCompletionChunk(id, model, created, { content: t })
              : completionChunk(id, model, created, t),
          ),
      });
      send(
        kind === "chat"
          ? chatCompletionChunk(id, model, created, {}, r.finishReason)
          : completionChunk(id, model, created, "", r.finishReason),
      );
      if (includeUsage) {
        const usage = usageOf({
          text: r.text,
          finish_reason: r.finishReason,
          usage: { prompt_tokens: r.promptTokens, completion_tokens: r.completionTokens },
        });
        send({
          id,
          object: kind === "chat" ? "chat.completion.chunk" : "text_completion",
          created,
          model,
          choices: [],
          usage,
        });
      }
      raw.write("data: [DONE]\n\n");
    } catch (err) {
      const e = err instanceof HavnError ? err : new HavnError("INTERNAL_ERROR", "Generation failed.", { cause: err });
      send(openAIErrorBody(e.toBody(), e.status));
    }
    raw.end();
    return reply;
  }

  app.post("/v1/chat/completions", async (req, reply) => {
    try {
      const body = parse(chatCompletionRequestSchema, req.body);
      return await run(
        reply,
        body.model,
        chatRequestToJob(body, defaults()),
        body.stream ?? false,
        body.stream_options?.include_usage ?? false,
        "chat",
      );
    } catch (err) {
      return sendError(reply, err);
    }
  });

  app.post("/v1/completions", async (req, reply) => {
    try {
      const body = parse(completionRequestSchema, req.body);
      if (body.echo && body.max_tokens === 0) {
        // Prompt scoring: the logprob of every prompt token given those before it.
        const job = completionRequestToJob(body, defaults());
        const prompt = job.input.kind === "completion" ? job.input.prompt : "";
        const scored = await backend.score({
          model: body.model,
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
          model: body.model,
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
      return await run(
        reply,
        body.model,
        completionRequestToJob(body, defaults()),
        body.stream ?? false,
        body.stream_options?.include_usage ?? false,
        "completion",
      );
    } catch (err) {
      return sendError(reply, err);
    }
  });

  return app;
}
