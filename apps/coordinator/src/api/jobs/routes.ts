import type { FastifyInstance, FastifyRequest } from "fastify";
import { HavnError, parseRequestBody } from "@havn/protocol";
import type { JobRow, LedgerTxRow, Store } from "@havn/store";
import type { AuthService } from "../../auth/auth-service.js";
import type { JobActor, JobService } from "../../jobs/job-service.js";
import { jobMoneyView, ledgerTransactionView } from "../ledger/views.js";
import { registerRoute, routes } from "../route-table.js";
import { publishRequestSchema } from "../schemas.js";

/** A job as the API shows it (snake_case, like every havn wire format). Never the prompt. */
export function jobView(job: JobRow, ledger?: readonly LedgerTxRow[]) {
  return {
    id: job.id,
    object: "job" as const,
    status: job.status,
    model: job.model,
    workflow_id: job.workflowId,
    params: job.params,
    input_hash: job.inputHash,
    input_salt: job.inputSalt,
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
    output_public: job.outputPublic,
    data_deleted_at: job.dataDeletedAt,
    money: jobMoneyView(job.money),
    ...(ledger && { ledger: [...ledger].reverse().map(ledgerTransactionView) }),
  };
}

/** A job id that is malformed is, to its caller, a job that does not exist. */
export const noJob = (raw: Record<string, string>) =>
  new HavnError("JOB_NOT_FOUND", "No job with this id.", { context: { Job: String(raw.id).slice(0, 80) } });

export interface JobRouteDeps {
  readonly jobs: JobService;
  readonly store: Store;
  readonly auth: AuthService;
}

/**
 * havn's native job API (`/v1/jobs`, `/v1/outputs`, `/v1/log`; the bare paths are aliases). A job
 * is its submitter's: another account gets JOB_NOT_FOUND, as for a job that does not exist.
 */
export function registerJobRoutes(app: FastifyInstance, deps: JobRouteDeps): void {
  const { jobs, store, auth } = deps;
  const actor = (request: FastifyRequest): JobActor => ({
    mayActFor: (accountId) => auth.mayActFor(request.principal!, accountId),
  });

  registerRoute<{ id: string }>(
    app,
    routes.getJob,
    async (request, _reply, { id }) => {
      const job = await jobs.get(id, actor(request));
      return jobView(job, job.money ? await store.ledger.transactions({ jobId: job.id, limit: 50 }) : undefined);
    },
    noJob,
  );

  registerRoute<{ id: string }>(
    app,
    routes.cancelJob,
    async (request, _reply, { id }) => jobView(await jobs.cancel(id, actor(request))),
    noJob,
  );

  registerRoute<{ id: string }>(
    app,
    routes.deleteJob,
    async (request, _reply, { id }) => jobView(await jobs.deleteData(id, actor(request))),
    noJob,
  );

  registerRoute<{ id: string }>(
    app,
    routes.publishJob,
    async (request, _reply, { id }) => {
      const body = parseRequestBody(publishRequestSchema, request.body);
      return jobView(await jobs.setOutputPublic(id, body.public, actor(request)));
    },
    noJob,
  );

  const noOutput = (raw: Record<string, string>) =>
    new HavnError("OUTPUT_NOT_FOUND", "No output with this content id.", {
      context: { CID: String(raw.cid).slice(0, 128) },
    });
  registerRoute<{ cid: string }>(
    app,
    routes.getOutput,
    async (request, reply, { cid }) => {
      // Its job's owner's (an admin's), or anyone's once made public; otherwise it does not exist.
      // A key without the `jobs` scope (a node's, Prometheus') reads only what is public.
      const principal = request.principal?.scopes.has("jobs") ? request.principal : undefined;
      const admin = principal !== undefined && auth.mayActFor(principal, null);
      if (!admin && !(await store.jobs.outputReadableBy(cid, principal?.accountId ?? null))) throw noOutput({ cid });
      const bytes = await store.jobs.output(cid);
      if (!bytes) throw noOutput({ cid });
      return reply.type("application/octet-stream").send(Buffer.from(bytes));
    },
    noOutput,
  );
}
