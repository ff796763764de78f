import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { z } from "zod";
import type { ErrorCode } from "@havn/protocol";
import {
  chatCompletionResponseSchema,
  completionResponseSchema,
  healthSchema,
  jobIdParamsSchema,
  jobViewSchema,
  logEntrySchema,
  logSeqParamsSchema,
  modelListSchema,
  nodeListSchema,
  outputParamsSchema,
  requestSchemas,
} from "./schemas.js";

/** One HTTP route: what it takes, what it answers, and the catalog errors it can answer with. */
export interface RouteSpec {
  readonly method: "GET" | "POST";
  /** OpenAPI-style path (`/v1/jobs/{id}`). */
  readonly path: string;
  /** Older paths that answer the same, documented as deprecated. */
  readonly aliases?: readonly string[];
  readonly operationId: string;
  readonly tag: "OpenAI" | "Jobs" | "Log" | "Operators";
  readonly summary: string;
  readonly description?: string;
  readonly params?: z.ZodObject;
  readonly body?: z.ZodType;
  /** The success answer: a schema (JSON), or a content type with a description. */
  readonly response:
    | { readonly schema: z.ZodType; readonly description: string; readonly stream?: string }
    | { readonly contentType: string; readonly description: string };
  readonly errors: readonly ErrorCode[];
}

/** Errors any route that reads a JSON body can answer with. */
const bodyErrors: readonly ErrorCode[] = [
  "REQUEST_MALFORMED_JSON",
  "REQUEST_INVALID",
  "REQUEST_TOO_LARGE",
  "REQUEST_UNSUPPORTED_MEDIA_TYPE",
];
/** Errors of every route that admits a job. */
const admissionErrors: readonly ErrorCode[] = [
  ...bodyErrors,
  "REQUEST_PROMPT_TOO_LONG",
  "MODEL_NOT_FOUND",
  "MODEL_TASK_UNSUPPORTED",
  "MODEL_REGISTRY_EMPTY",
  "JOB_NO_CAPACITY",
  "JOB_FAILED",
  "JOB_TIMEOUT",
  "JOB_CANCELLED",
  "JOB_STREAM_INTERRUPTED",
  "REQUEST_SHUTTING_DOWN",
  "INTERNAL_ERROR",
];
const completionDescription =
  "Admits a job (written to the database before any answer), routes it to a node and answers when " +
  "it ends: the completion's `id` is the job id, and `havn` carries the co-signed receipt. With " +
  "`stream: true` the answer is server-sent events (`text/event-stream`): OpenAI's chunks, the last " +
  "one with `havn`, then `[DONE]`; an error after the first byte arrives as an event with `error`. " +
  "Send `x-request-id` to have it logged with the job and echoed back.";

/** Every route of the coordinator's HTTP API, in the order the document lists them. */
export const routes = {
  chatCompletions: {
    method: "POST",
    path: "/v1/chat/completions",
    operationId: "createChatCompletion",
    tag: "OpenAI",
    summary: "Chat completion (OpenAI-compatible), streamed or not",
    description: completionDescription,
    body: requestSchemas.ChatCompletionRequest,
    response: {
      schema: chatCompletionResponseSchema,
      description: "The completion, or (stream) server-sent chunks.",
      stream: "text/event-stream",
    },
    errors: admissionErrors,
  },
  completions: {
    method: "POST",
    path: "/v1/completions",
    operationId: "createCompletion",
    tag: "OpenAI",
    summary: "Text completion (OpenAI-compatible), streamed or not",
    description: completionDescription,
    body: requestSchemas.CompletionRequest,
    response: {
      schema: completionResponseSchema,
      description: "The completion, or (stream) server-sent chunks.",
      stream: "text/event-stream",
    },
    errors: admissionErrors,
  },
  models: {
    method: "GET",
    path: "/v1/models",
    operationId: "listModels",
    tag: "OpenAI",
    summary: "Models a node can serve now",
    description: "Only models at least one available node serves; `model: auto` picks among registry models.",
    response: { schema: modelListSchema, description: "The models." },
    errors: [],
  },
  getJob: {
    method: "GET",
    path: "/v1/jobs/{id}",
    aliases: ["/jobs/{id}"],
    operationId: "getJob",
    tag: "Jobs",
    summary: "A job: status, output, co-signed receipt, routing decision",
    params: jobIdParamsSchema,
    response: { schema: jobViewSchema, description: "The job." },
    errors: ["JOB_NOT_FOUND"],
  },
  cancelJob: {
    method: "POST",
    path: "/v1/jobs/{id}/cancel",
    aliases: ["/jobs/{id}/cancel"],
    operationId: "cancelJob",
    tag: "Jobs",
    summary: "Cancel a job that has not ended (again: no change)",
    params: jobIdParamsSchema,
    response: { schema: jobViewSchema, description: "The job, cancelled." },
    errors: ["JOB_NOT_FOUND", "JOB_ILLEGAL_TRANSITION"],
  },
  getOutput: {
    method: "GET",
    path: "/v1/outputs/{cid}",
    aliases: ["/outputs/{cid}"],
    operationId: "getOutput",
    tag: "Jobs",
    summary: "An output's bytes by content id",
    params: outputParamsSchema,
    response: { contentType: "application/octet-stream", description: "The bytes whose CIDv1 is `cid`." },
    errors: ["OUTPUT_NOT_FOUND"],
  },
  getLogEntry: {
    method: "GET",
    path: "/v1/log/{seq}",
    aliases: ["/log/{seq}"],
    operationId: "getLogEntry",
    tag: "Log",
    summary: "One entry of the hash-chained execution log",
    params: logSeqParamsSchema,
    response: { schema: logEntrySchema, description: "The entry." },
    errors: ["LOG_ENTRY_NOT_FOUND"],
  },
  nodes: {
    method: "GET",
    path: "/v1/nodes",
    operationId: "listNodes",
    tag: "Operators",
    summary: "Every node this coordinator knows: state, backend health, slots in use, last heartbeat",
    response: { schema: nodeListSchema, description: "Connected nodes first, then offline ones." },
    errors: [],
  },
  health: {
    method: "GET",
    path: "/health",
    operationId: "getHealth",
    tag: "Operators",
    summary: "ok, degraded (no node, unserved queued models, unavailable nodes) or failing (the store)",
    description: "HTTP 200 for `ok` and `degraded`, 503 for `failing`, with the reasons in `reasons`.",
    response: { schema: healthSchema, description: "`ok` or `degraded` (503 carries the same body, `failing`)." },
    errors: [],
  },
  metrics: {
    method: "GET",
    path: "/metrics",
    operationId: "getMetrics",
    tag: "Operators",
    summary: "Prometheus metrics (text format)",
    response: { contentType: "text/plain; version=0.0.4", description: "Metrics in Prometheus text format." },
    errors: [],
  },
  openapi: {
    method: "GET",
    path: "/openapi.json",
    operationId: "getOpenApiDocument",
    tag: "Operators",
    summary: "This document",
    response: { contentType: "application/json", description: "The OpenAPI 3.1 document." },
    errors: [],
  },
  docs: {
    method: "GET",
    path: "/docs",
    operationId: "getDocs",
    tag: "Operators",
    summary: "This document, rendered for people",
    response: { contentType: "text/html", description: "An HTML page." },
    errors: [],
  },
} as const satisfies Record<string, RouteSpec>;

/** `/v1/jobs/{id}` → `/v1/jobs/:id`. */
const fastifyPath = (path: string) => path.replace(/\{(\w+)\}/g, ":$1");

/**
 * Registers a route of the table on its path and on its aliases. Path parameters are parsed by
 * the route's own schema (the one the document shows); a parameter that does not match is
 * answered with `invalidParams`' error.
 */
export function registerRoute<P = Record<string, never>>(
  app: FastifyInstance,
  spec: RouteSpec,
  handler: (request: FastifyRequest, reply: FastifyReply, params: P) => unknown,
  invalidParams?: (raw: Record<string, string>) => Error,
): void {
  const run = async (request: FastifyRequest, reply: FastifyReply) => {
    let params = {} as P;
    if (spec.params) {
      const parsed = spec.params.safeParse(request.params);
      if (!parsed.success) throw invalidParams?.(request.params as Record<string, string>) ?? parsed.error;
      params = parsed.data as P;
    }
    return handler(request, reply, params);
  };
  for (const path of [spec.path, ...(spec.aliases ?? [])]) {
    app.route({ method: spec.method, url: fastifyPath(path), handler: run });
  }
}
