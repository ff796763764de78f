import type { FastifyInstance } from "fastify";
import { HavnError } from "@havn/protocol";
import type { JobRow, Store } from "@havn/store";
import type { JobService } from "../../jobs/job-service.js";
import { registerRoute, routes } from "../route-table.js";

/** A job as the API shows it (snake_case, like every havn wire format). Never the prompt. */
export function jobView(job: JobRow) {
  return {
    id: job.id,
    object: "job" as const,
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
    request_id: job.requestId,
  };
}

const noJob = (raw: Record<string, string>) =>
  new HavnError("JOB_NOT_FOUND", "No job with this id.", { context: { Job: String(raw.id).slice(0, 80) } });

export interface JobRouteDeps {
  readonly jobs: JobService;
  readonly store: Store;
}

/** havn's native job API (`/v1/jobs`, `/v1/outputs`, `/v1/log`; the bare paths are aliases). */
export function registerJobRoutes(app: FastifyInstance, deps: JobRouteDeps): void {
  const { jobs, store } = deps;

  registerRoute<{ id: string }>(app, routes.getJob, async (_req, _reply, { id }) => jobView(await jobs.get(id)), noJob);

  registerRoute<{ id: string }>(
    app,
    routes.cancelJob,
    async (_req, _reply, { id }) => jobView(await jobs.cancel(id)),
    noJob,
  );

  const noOutput = (raw: Record<string, string>) =>
    new HavnError("OUTPUT_NOT_FOUND", "No output with this content id.", {
      context: { CID: String(raw.cid).slice(0, 128) },
    });
  registerRoute<{ cid: string }>(
    app,
    routes.getOutput,
    async (_req, reply, { cid }) => {
      const bytes = await store.getOutput(cid);
      if (!bytes) throw noOutput({ cid });
      return reply.type("application/octet-stream").send(Buffer.from(bytes));
    },
    noOutput,
  );

  const noEntry = (raw: Record<string, string>) =>
    new HavnError("LOG_ENTRY_NOT_FOUND", "The execution log has no entry at this position.", {
      context: { Seq: String(raw.seq).slice(0, 32) },
    });
  registerRoute<{ seq: number }>(
    app,
    routes.getLogEntry,
    async (_req, _reply, { seq }) => {
      const entry = await store.getLogEntry(seq);
      if (!entry) throw noEntry({ seq: String(seq) });
      return {
        seq: entry.seq,
        job_id: entry.jobId,
        prev_hash: entry.prevHash,
        entry_hash: entry.entryHash,
        receipt: entry.receipt,
        created_at: entry.createdAt,
      };
    },
    noEntry,
  );
}
