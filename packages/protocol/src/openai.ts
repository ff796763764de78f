import { z } from "zod";
import { HavnError, type ErrorBody } from "./errors.js";
import { jobLimits, type GenerationParams, type JobInput, type JobOutput } from "./jobs.js";

/**
 * The OpenAI-compatible wire format, shared by the coordinator's `/v1` surface, the engine's
 * `serve-model` server and the SDK. Unknown keys are dropped (clients send vendor extras);
 * known options havn cannot honour are rejected, never silently ignored.
 */
const textPart = z.object({ type: z.literal("text"), text: z.string() });
const content = z.union([z.string(), z.array(textPart).max(jobLimits.maxMessages)]);

const sampling = {
  max_tokens: z.number().int().min(1).max(jobLimits.maxTokens).optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  seed: z.number().int().min(0).max(0xffffffff).optional(),
  stop: z
    .union([z.string().min(1).max(64), z.array(z.string().min(1).max(64)).max(4)])
    .nullable()
    .optional(),
  n: z.literal(1, { error: "havn returns one choice per request (n must be 1)" }).optional(),
  stream: z.boolean().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  user: z.string().max(256).optional(),
  /** havn: run a published workflow (its id, `name` or `name@version`); also `X-Havn-Workflow`. */
  workflow: z.string().min(1).max(160).optional(),
  frequency_penalty: z.literal(0, { error: "frequency_penalty is not supported (pinned determinism)" }).optional(),
  presence_penalty: z.literal(0, { error: "presence_penalty is not supported (pinned determinism)" }).optional(),
  logprobs: z.literal(false, { error: "logprobs are not returned by havn yet" }).nullable().optional(),
};

export const chatCompletionRequestSchema = z.object({
  model: z.string().min(1).max(256),
  messages: z
    .array(
      z.object({
        role: z.enum(["system", "developer", "user", "assistant"]),
        content,
        name: z.string().max(64).optional(),
      }),
    )
    .min(1)
    .max(jobLimits.maxMessages),
  max_completion_tokens: z.number().int().min(1).max(jobLimits.maxTokens).optional(),
  tools: z.array(z.unknown()).max(0, { error: "tools are not supported yet" }).optional(),
  response_format: z.object({ type: z.literal("text", { error: "only text responses are supported" }) }).optional(),
  ...sampling,
});
export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;

export const completionRequestSchema = z.object({
  model: z.string().min(1).max(256),
  prompt: z.union([z.string(), z.array(z.string()).length(1, { error: "one prompt per request" })]),
  /** With `echo` and `logprobs`, `max_tokens: 0` scores the prompt (teacher forcing). */
  echo: z.boolean().optional(),
  ...sampling,
  max_tokens: z.number().int().min(0).max(jobLimits.maxTokens).optional(),
  logprobs: z.number().int().min(0).max(5).nullable().optional(),
});
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

function joinContent(c: z.infer<typeof content>): string {
  return typeof c === "string" ? c : c.map((p) => p.text).join("");
}

export interface SamplingDefaults {
  readonly maxTokens: number;
  /** Used when the client sends no seed; recorded in the job so the run stays reproducible. */
  readonly seed: number;
}

function paramsOf(
  r: ChatCompletionRequest | CompletionRequest,
  maxTokens: number | undefined,
  d: SamplingDefaults,
): GenerationParams {
  const stop = r.stop == null ? [] : typeof r.stop === "string" ? [r.stop] : r.stop;
  return {
    max_tokens: maxTokens ?? d.maxTokens,
    temperature: r.temperature ?? 1,
    top_p: r.top_p ?? 1,
    seed: r.seed ?? d.seed,
    stop,
  };
}

/** The job input and pinned parameters of an OpenAI chat request. */
export function chatRequestToJob(
  r: ChatCompletionRequest,
  d: SamplingDefaults,
): { input: JobInput; params: GenerationParams } {
  return {
    input: {
      kind: "chat",
      messages: r.messages.map((m) => ({
        role: m.role === "developer" ? "system" : m.role,
        content: joinContent(m.content),
      })),
    },
    params: paramsOf(r, r.max_completion_tokens ?? r.max_tokens, d),
  };
}

export function completionRequestToJob(
  r: CompletionRequest,
  d: SamplingDefaults,
): { input: JobInput; params: GenerationParams } {
  const prompt = typeof r.prompt === "string" ? r.prompt : r.prompt[0]!;
  return { input: { kind: "completion", prompt }, params: paramsOf(r, r.max_tokens || undefined, d) };
}

type OpenAIFinish = "stop" | "length";
const finish = (f: JobOutput["finish_reason"] | null): OpenAIFinish | null =>
  f === null ? null : f === "length" ? "length" : "stop";

export function usageOf(output: JobOutput) {
  const { prompt_tokens, completion_tokens } = output.usage;
  return { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens };
}

export function chatCompletionResponse(id: string, model: string, created: number, output: JobOutput) {
  return {
    id,
    object: "chat.completion" as const,
    created,
    model,
    choices: [
      {
        index: 0,
        message: { role: "assistant" as const, content: output.text },
        finish_reason: finish(output.finish_reason),
        logprobs: null,
      },
    ],
    usage: usageOf(output),
  };
}

export function chatCompletionChunk(
  id: string,
  model: string,
  created: number,
  delta: { role?: "assistant"; content?: string },
  finishReason: JobOutput["finish_reason"] | null = null,
) {
  return {
    id,
    object: "chat.completion.chunk" as const,
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish(finishReason), logprobs: null }],
  };
}

export function completionResponse(id: string, model: string, created: number, output: JobOutput) {
  return {
    id,
    object: "text_completion" as const,
    created,
    model,
    choices: [{ index: 0, text: output.text, finish_reason: finish(output.finish_reason), logprobs: null }],
    usage: usageOf(output),
  };
}

export function completionChunk(
  id: string,
  model: string,
  created: number,
  text: string,
  finishReason: JobOutput["finish_reason"] | null = null,
) {
  return {
    id,
    object: "text_completion" as const,
    created,
    model,
    choices: [{ index: 0, text, finish_reason: finish(finishReason), logprobs: null }],
  };
}

/** Which OpenAI endpoint: `/v1/chat/completions` or `/v1/completions`. */
export type OpenAIKind = "chat" | "completion";

/** Validates a request body against a schema; problems become one REQUEST_INVALID listing each. */
export function parseRequestBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (body === undefined || body === null) {
    throw new HavnError("REQUEST_INVALID", "A JSON body is required.");
  }
  const result = schema.safeParse(body);
  if (!result.success) {
    throw new HavnError("REQUEST_INVALID", "The request does not match the schema.", {
      details: result.error.issues.slice(0, 20).map((i) => ({ path: i.path.join("."), message: i.message })),
    });
  }
  return result.data;
}

/** Either OpenAI request as one job: its input, pinned parameters and stream options. */
/** The sampling parameters a client set itself: the rest are defaults a workflow may replace. */
function givenParams(body: ChatCompletionRequest | CompletionRequest): ReadonlySet<keyof GenerationParams> {
  const given = new Set<keyof GenerationParams>();
  for (const k of ["temperature", "top_p", "seed"] as const) if (body[k] !== undefined) given.add(k);
  if (body.max_tokens || ("max_completion_tokens" in body && body.max_completion_tokens !== undefined))
    given.add("max_tokens");
  return given;
}

export function parseOpenAIRequest(kind: OpenAIKind, raw: unknown, defaults: SamplingDefaults) {
  const common = (body: ChatCompletionRequest | CompletionRequest) => ({
    model: body.model,
    stream: body.stream ?? false,
    includeUsage: body.stream_options?.include_usage ?? false,
    workflow: body.workflow,
    /** The sampling parameters the client set (the rest are defaults a workflow may replace). */
    given: givenParams(body),
  });
  if (kind === "chat") {
    const body = parseRequestBody(chatCompletionRequestSchema, raw);
    return { kind, body, ...common(body), job: chatRequestToJob(body, defaults) } as const;
  }
  const body = parseRequestBody(completionRequestSchema, raw);
  return { kind, body, ...common(body), job: completionRequestToJob(body, defaults) } as const;
}

/** The whole (non-streamed) answer of either endpoint. */
export function openAIResponse(kind: OpenAIKind, id: string, model: string, created: number, output: JobOutput) {
  return kind === "chat"
    ? chatCompletionResponse(id, model, created, output)
    : completionResponse(id, model, created, output);
}

/** A streamed piece of text, or (`finishReason` given, no text) the chunk that ends the answer. */
export function openAIChunk(
  kind: OpenAIKind,
  id: string,
  model: string,
  created: number,
  text: string,
  finishReason: JobOutput["finish_reason"] | null = null,
) {
  if (kind === "completion") return completionChunk(id, model, created, text, finishReason);
  return chatCompletionChunk(id, model, created, finishReason === null ? { content: text } : {}, finishReason);
}

/** The chunk with token usage that `stream_options.include_usage` asks for, after the last one. */
export function openAIUsageChunk(kind: OpenAIKind, id: string, model: string, created: number, output: JobOutput) {
  return {
    id,
    object: kind === "chat" ? ("chat.completion.chunk" as const) : ("text_completion" as const),
    created,
    model,
    choices: [],
    usage: usageOf(output),
  };
}

/**
 * How every havn HTTP surface reports an error: OpenAI's shape (so OpenAI clients read the
 * message) with havn's catalog `code`, `retryable` and `details`.
 */
export function openAIErrorBody(error: ErrorBody, status: number) {
  return {
    error: {
      message: error.message,
      type: status >= 500 ? "server_error" : "invalid_request_error",
      param: null,
      code: error.code,
      retryable: error.retryable,
      ...(error.details === undefined ? {} : { details: error.details }),
    },
  };
}
