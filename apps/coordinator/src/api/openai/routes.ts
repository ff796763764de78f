import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  chatCompletionChunk,
  formatHai,
  HavnError,
  openAIChunk,
  openAIErrorBody,
  openAIResponse,
  openAIUsageChunk,
  parseOpenAIRequest,
  usageOf,
  type JobOutput,
  type OpenAIKind as Kind,
} from "@havn/protocol";
import { isTerminal, type JobRow } from "@havn/store";
import type { CoordinatorConfig } from "../../config.js";
import type { NodeRegistry } from "../../nodes/node-registry.js";
import type { JobEvent, JobEvents } from "../../jobs/job-events.js";
import { errorOfEndedJob, shuttingDown, type JobService, type Submitted } from "../../jobs/job-service.js";
import { normaliseModelName, type ModelCatalog } from "../../router/model-catalog.js";
import { sendError } from "../errors.js";
import { idempotencyKeyOf } from "../idempotency.js";
import { registerRoute, routes } from "../route-table.js";
import { routable } from "../../nodes/node-registry.js";

export interface OpenAIRouteDeps {
  readonly jobs: JobService;
  readonly events: JobEvents;
  readonly catalog: ModelCatalog;
  readonly registry: NodeRegistry;
  readonly config: CoordinatorConfig;
}

/** The event that says how an ended job ended (a replayed stream that subscribed too late for it). */
function endEvent(job: JobRow): JobEvent {
  return job.status === "completed"
    ? { type: "completed", job }
    : job.status === "cancelled"
      ? { type: "cancelled", job }
      : { type: "failed", job };
}

/** SSE comment lines keep proxies from closing a stream while a job waits in the queue. */
const keepAliveMs = 15_000;

/** havn's extension on OpenAI responses: the job id, the co-signed receipt, and what it cost. */
function havnExtension(job: JobRow) {
  return {
    job_id: job.id,
    output_cid: job.outputCid,
    receipt: job.receipt,
    cost_uhai: costOf(job) ?? null,
    input_salt: job.inputSalt,
  };
}

/** What a completed job was charged, in µHAI (a decimal string: exact); undefined on a free network. */
function costOf(job: JobRow): string | undefined {
  return job.money?.charge === null || job.money?.charge === undefined ? undefined : job.money.charge.toString();
}

/**
 * OpenAI's usage with the cost added (an extra field, as OpenRouter does): `cost` in HAI for
 * people, `cost_uhai` exact.
 */
function usageWithCost(job: JobRow, output: JobOutput) {
  const cost = costOf(job);
  return {
    ...usageOf(output),
    ...(cost === undefined ? {} : { cost: Number(formatHai(BigInt(cost))), cost_uhai: cost }),
  };
}

export function registerOpenAIRoutes(app: FastifyInstance, deps: OpenAIRouteDeps): void {
  const { jobs, events, config } = deps;
  const samplingDefaults = () => ({ maxTokens: config.defaultMaxTokens, seed: Math.floor(Math.random() * 0xffffffff) });

  const respond = (kind: Kind, job: JobRow, output: JobOutput) => ({
    ...openAIResponse(kind, job.id, job.model, Math.floor(job.createdAt / 1000), output),
    usage: usageWithCost(job, output),
    havn: havnExtension(job),
  });

  async function answer(kind: Kind, { job, replayed }: Submitted, reply: FastifyReply) {
    const ended = await jobs.waitForEnd(job, config.requestTimeoutMs, replayed);
    if (ended === undefined) {
      throw new HavnError("JOB_TIMEOUT", "The job did not finish within the request timeout; it keeps running.", {
        context: { Job: job.id },
        details: { job_id: job.id, poll: `/v1/jobs/${job.id}` },
      });
    }
    if (ended.status !== "completed" || !ended.output) throw errorOfEndedJob(ended);
    return reply.send(respond(kind, ended, ended.output));
  }

  /**
   * Streams a job as SSE. If the node streaming it is lost, the job is retried elsewhere; the
   * retry runs with the same seed and parameters, so its text repeats what the client already
   * has and the stream continues from where it stopped. Should the retry's text differ, the
   * stream ends with JOB_STREAM_INTERRUPTED (the job itself still completes: `GET /jobs/{id}`).
   *
   * A replayed submission (its Idempotency-Key named a job already admitted) gets that job's
   * text in one piece when it ends — the tokens streamed before this connection are not kept —
   * or at once if it has ended. With a key, a client that hangs up does not cancel the job: it
   * said it would come back for it.
   */
  function stream(
    kind: Kind,
    { job, replayed }: Submitted,
    includeUsage: boolean,
    idempotent: boolean,
    request: FastifyRequest,
    reply: FastifyReply,
  ) {
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    const created = Math.floor(job.createdAt / 1000);
    const write = (data: unknown) => raw.write(`data: ${JSON.stringify(data)}\n\n`);
    const delta = (text: string) => write(openAIChunk(kind, job.id, job.model, created, text));
    if (kind === "chat") write(chatCompletionChunk(job.id, job.model, created, { role: "assistant", content: "" }));

    let sent = "";
    // A job placed on a node at admission was dispatched before this subscription. A replayed
    // job's current attempt streamed before it: its tokens would not start where the client is.
    let attempt: string | null = replayed ? null : job.attemptId;
    let attemptText = "";
    let ended = false;
    const keepAlive = setInterval(() => raw.write(": keep-alive\n\n"), keepAliveMs);
    const end = () => {
      ended = true;
      clearInterval(keepAlive);
      unsubscribe();
      raw.end();
    };
    const fail = (err: HavnError) => {
      write(openAIErrorBody(err.toBody(), err.status));
      end();
    };
    /** Sends what the current attempt has beyond what the client already has. */
    const forward = (text: string): boolean => {
      if (text.length > sent.length) {
        if (!text.startsWith(sent)) return false;
        delta(text.slice(sent.length));
        sent = text;
      } else if (!sent.startsWith(text)) return false;
      return true;
    };
    const diverged = () =>
      fail(
        new HavnError(
          "JOB_STREAM_INTERRUPTED",
          "The node was lost and the retry produced different text; fetch the result by job id.",
          {
            details: { job_id: job.id },
          },
        ),
      );

    const listener = (event: JobEvent) => {
      if (ended) return;
      switch (event.type) {
        case "dispatched":
          attempt = event.attemptId;
          attemptText = "";
          return;
        case "token":
          if (event.attemptId !== attempt) return;
          attemptText += event.text;
          if (!forward(attemptText)) diverged();
          return;
        case "requeued":
          attempt = null;
          return;
        case "completed": {
          const output = event.job.output!;
          if (!forward(output.text)) return diverged();
          write({
            ...openAIChunk(kind, job.id, job.model, created, "", output.finish_reason),
            havn: havnExtension(event.job),
          });
          if (includeUsage)
            write({
              ...openAIUsageChunk(kind, job.id, job.model, created, output),
              usage: usageWithCost(event.job, output),
            });
          raw.write("data: [DONE]\n\n");
          return end();
        }
        case "failed":
        case "cancelled":
          return fail(errorOfEndedJob(event.job));
        case "shutdown":
          // Ended by us, not by the client: the job is not cancelled.
          return fail(shuttingDown(job.id));
      }
    };
    const unsubscribe = events.subscribe(job.id, listener);
    if (replayed) {
      // It may have ended before (or while) it was read: then no event will come.
      if (isTerminal(job.status)) listener(endEvent(job));
      else
        void jobs.get(job.id).then(
          (now) => isTerminal(now.status) && listener(endEvent(now)),
          () => {},
        );
    }
    // A client that hangs up mid-stream no longer wants the answer: free the node — unless it
    // sent an Idempotency-Key, which says it will retry for this very job.
    raw.on("close", () => {
      if (ended) return;
      ended = true;
      clearInterval(keepAlive);
      unsubscribe();
      if (!idempotent) jobs.cancel(job.id).catch(() => {});
    });
  }

  async function handle(kind: Kind, request: FastifyRequest, reply: FastifyReply) {
    try {
      const parsed = parseOpenAIRequest(kind, request.body, samplingDefaults());
      if (parsed.kind === "completion" && parsed.body.echo)
        throw new HavnError("REQUEST_INVALID", "echo is not supported on the coordinator.");
      const { model, stream: wantsStream, includeUsage, job: spec, given } = parsed;
      const header = request.headers["x-havn-workflow"];
      const workflow = parsed.workflow ?? (typeof header === "string" && header !== "" ? header.slice(0, 160) : null);
      // The client's own x-request-id (not one the coordinator made up) travels with the job.
      const requestId = request.headers["x-request-id"] === request.id ? request.id : null;
      const idempotencyKey = idempotencyKeyOf(request);
      const submitted = await jobs.submit({
        model,
        input: spec.input,
        params: spec.params,
        stream: wantsStream,
        workflow,
        given,
        requestId,
        accountId: request.principal?.accountId ?? null,
        idempotencyKey,
      });
      reply.header("x-havn-job-id", submitted.job.id);
      if (submitted.replayed) reply.header("idempotent-replayed", "true");
      if (wantsStream) return stream(kind, submitted, includeUsage, idempotencyKey !== null, request, reply);
      return await answer(kind, submitted, reply);
    } catch (err) {
      return sendError(reply, err);
    }
  }

  registerRoute(app, routes.chatCompletions, (request, reply) => handle("chat", request, reply));
  registerRoute(app, routes.completions, (request, reply) => handle("completion", request, reply));

  /**
   * Only models some available node serves now: a model whose every node is gone or whose
   * backend is down is not listed (its jobs would only wait). Registry metadata is added when
   * the registry names the model.
   */
  registerRoute(app, routes.models, async () => {
    const { catalog, registry } = deps;
    const online = new Map<string, number>();
    for (const node of registry.all()) {
      if (!routable(node)) continue;
      for (const m of node.models) online.set(m, (online.get(m) ?? 0) + 1);
    }
    const meta = new Map(catalog.registryModels().map((m) => [normaliseModelName(m.name), m]));
    return {
      object: "list" as const,
      data: [...online.entries()].map(([id, nodes]) => {
        const m = meta.get(normaliseModelName(id));
        return {
          id,
          object: "model" as const,
          created: 0,
          owned_by: "havn",
          havn: {
            online_nodes: nodes,
            weight: m?.weight ?? null,
            tier: m?.tier ?? null,
            task_type: m?.taskType ?? "CHAT",
          },
        };
      }),
    };
  });
}
