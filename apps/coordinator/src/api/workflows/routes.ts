import type { FastifyInstance, FastifyRequest } from "fastify";
import { formatHai, HavnError, parseRequestBody } from "@havn/protocol";
import type { Store, WorkflowRow } from "@havn/store";
import type { AuthService } from "../../auth/auth-service.js";
import type { WorkflowService } from "../../workflows/workflow-service.js";
import { registerRoute, routes } from "../route-table.js";
import { workflowFlagRequestSchema } from "../schemas.js";

export function workflowView(w: WorkflowRow) {
  return {
    id: w.id,
    object: "workflow" as const,
    name: w.name,
    version: w.version,
    creator: w.creatorId,
    content_hash: w.contentHash,
    origin: w.originId,
    flagged: w.flaggedAt !== null,
    flag_reason: w.flagReason,
    created_at: w.createdAt,
    manifest: w.manifest as unknown as Record<string, unknown>,
  };
}

export interface WorkflowRouteDeps {
  readonly workflows: WorkflowService;
  readonly store: Store;
  readonly auth: AuthService;
}

/** The workflow registry: publish, list, find, earnings; admins flag. */
export function registerWorkflowRoutes(app: FastifyInstance, deps: WorkflowRouteDeps): void {
  const { workflows, store } = deps;
  const noWorkflow = (raw: Record<string, string>) =>
    new HavnError("WORKFLOW_NOT_FOUND", "No workflow with this id or name.", {
      context: { Workflow: String(raw.ref).slice(0, 160) },
    });

  registerRoute(app, routes.publishWorkflow, async (request) =>
    workflowView(await workflows.publish(request.principal!.accountId, request.body)),
  );

  registerRoute(app, routes.listWorkflows, async (request: FastifyRequest) => {
    const mine = (request.query as Record<string, unknown>).mine;
    if (mine !== undefined && mine !== "true" && mine !== "false")
      throw new HavnError("REQUEST_INVALID", "`mine` is true or false.");
    const found = await store.workflows.list({
      ...(mine === "true" && { creatorId: request.principal!.accountId }),
      limit: 200,
    });
    return { object: "list" as const, data: found.map(workflowView) };
  });

  registerRoute<{ ref: string }>(
    app,
    routes.getWorkflow,
    async (_request, _reply, { ref }) => workflowView(await workflows.find(ref)),
    noWorkflow,
  );

  registerRoute<{ ref: string }>(
    app,
    routes.workflowEarnings,
    async (_request, _reply, { ref }) => {
      const w = await workflows.find(ref);
      const e = await store.workflows.earnings(w.id);
      return {
        object: "workflow_earnings" as const,
        workflow: w.id,
        earned_uhai: e.earned.toString(),
        earned: formatHai(e.earned),
        direct_uhai: e.direct.toString(),
        upstream_uhai: e.upstream.toString(),
        runs: e.runs,
      };
    },
    noWorkflow,
  );

  registerRoute<{ ref: string }>(
    app,
    routes.flagWorkflow,
    async (request, _reply, { ref }) => {
      const body = parseRequestBody(workflowFlagRequestSchema, request.body);
      const w = await workflows.find(ref);
      return workflowView(await workflows.setFlag(w.id, body.flagged, body.reason, request.principal!.accountId));
    },
    noWorkflow,
  );
}
