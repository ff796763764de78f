import type { FastifyInstance } from "fastify";
import { HavnError, jobIdPattern } from "@havn/protocol";
import type { JobRow, Store } from "@havn/store";
import type { NodeRegistry } from "../../gateway/node-registry.js";
import type { JobService } from "../../jobs/job-service.js";

/** A job as the API shows it (snake_case, like every havn wire format). */
export function jobView(job: JobRow) {
  return {
    id: job.id,
    object: "job",
    status: job.status,
    model: job.model,
    workflow_id: job.workflowId,
    params: job.params,
    input_hash: job.inputHash,
    attempts: job.attempts,
    max_attempts: job.maxAttempts,
    node_key: job.nodeKey,
    created_at: job.createdAt,
    updated_at: job.updatedAt,
    finished_at: job.finishedAt,
    output: job.output,
    output_cid: job.outputCid,
    receipt: job.receipt,
    error: job.error,
    route: job.route,
  };
}

function checkJobId(id: string): string {
  if (!jobIdPattern.test(id))
    throw new HavnError("JOB_NOT_FOUND", "No job with this id.", { context: { Job: id.slice(0, 80) } });
  return id;
}

export interface JobRouteDeps {
  readonly jobs: JobService;
  readonly store: Store;
  readonly registry: NodeRegistry;
  readonly coordinatorKey: string;
  readonly version: string;
}

/** havn's native job API and the operator's health check. */
export function registerJobRoutes(app: FastifyInstance, deps: JobRouteDeps): void {
  const { jobs, store, registry } = deps;

  app.get<{ Params: { id: string } }>("/jobs/:id", async (request) =>
    jobView(await jobs.get(checkJobId(request.params.id))),
  );

  app.post<{ Params: { id: string } }>("/jobs/:id/cancel", async (request) =>
    jobView(await jobs.cancel(checkJobId(request.params.id))),
  );

  /** An output by content id: the bytes the receipt's `outputs_cid` names. */
  app.get<{ Params: { cid: string } }>("/outputs/:cid", async (request, reply) => {
    const bytes = request.params.cid.length <= 128 ? await store.getOutput(request.params.cid) : undefined;
    if (!bytes)
      throw new HavnError("JOB_NOT_FOUND", "No output with this content id.", {
        context: { CID: request.params.cid.slice(0, 128) },
      });
    return reply.type("application/octet-stream").send(Buffer.from(bytes));
  });

  /** One entry of the hash-chained execution log. */
  app.get<{ Params: { seq: string } }>("/log/:seq", async (request) => {
    const seq = Number(request.params.seq);
    const entry = Number.isSafeInteger(seq) && seq > 0 ? await store.getLogEntry(seq) : undefined;
    if (!entry)
      throw new HavnError("JOB_NOT_FOUND", "No execution log entry at this position.", {
        context: { Seq: request.params.seq.slice(0, 32) },
      });
    return {
      seq: entry.seq,
      job_id: entry.jobId,
      prev_hash: entry.prevHash,
      entry_hash: entry.entryHash,
      receipt: entry.receipt,
      created_at: entry.createdAt,
    };
  });

  app.get("/health", async () => {
    const head = await store.logHead();
    return {
      status: "ok",
      version: deps.version,
      coordinator_key: deps.coordinatorKey,
      store: store.kind,
      nodes_online: registry.size,
      free_slots: registry.freeSlots(),
      jobs: await store.countJobs(),
      log: head ? { seq: head.seq, entry_hash: head.entryHash } : { seq: 0, entry_hash: null },
    };
  });
}
