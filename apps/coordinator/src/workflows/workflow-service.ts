import {
  HavnError,
  hashCanonical,
  workflowIdPattern,
  workflowManifestSchema,
  type GenerationParams,
  type JobInput,
  type WorkflowManifest,
} from "@havn/protocol";
import { ledgerAccounts, type LedgerTransfer, type Store, type WorkflowRow } from "@havn/store";
import type { FastifyBaseLogger } from "fastify";
import type { Wallets } from "../ledger/wallets.js";
import type { RoyaltyWorkflow } from "./royalties.js";

/** A workflow's id: fixed by its name and version. */
export function workflowId(name: string, version: string): string {
  return `wf-${hashCanonical({ name, version }).slice(0, 24)}`;
}

/** What a workflow does — its model, template and parameters — hashed: copies share it. */
export function contentHashOf(m: WorkflowManifest): string {
  return hashCanonical({ model: m.model, template: m.template, parameters: m.parameters });
}

/** The caller's text in the template's `{{input}}`. */
export function renderTemplate(template: string, input: string): string {
  return template.split("{{input}}").join(input);
}

/**
 * The workflow registry (seed 001): publishing immutable versions, tracing copies and
 * derivatives to their origin, flags, and turning a job that names a workflow into the job it
 * runs (its model, its template around the caller's text, its parameters as defaults).
 */
export class WorkflowService {
  constructor(
    private readonly store: Store,
    private readonly wallets: Wallets,
    private readonly log: FastifyBaseLogger,
  ) {}

  /**
   * Publishes a version for `creatorId`. Dependencies must exist; a derivative — same content as
   * an earlier workflow, or a declared parent — is traced to its origin, which must be among its
   * dependencies when it names any (and becomes its only one when it names none).
   */
  async publish(creatorId: string, raw: unknown, now = Date.now()): Promise<WorkflowRow> {
    const parsed = workflowManifestSchema.safeParse(raw);
    if (!parsed.success) {
      const details = parsed.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
      throw new HavnError(
        "WORKFLOW_INVALID",
        `The workflow manifest is not valid: ${details.map((d) => `${d.path || "manifest"}: ${d.message}`).join("; ")}.`,
        { details },
      );
    }
    let manifest = parsed.data;
    for (const d of manifest.dependencies)
      if (!(await this.store.workflows.get(d.workflow)))
        throw new HavnError("WORKFLOW_INVALID", `The dependency ${d.workflow} is not a published workflow.`);
    const contentHash = contentHashOf(manifest);
    const id = workflowId(manifest.name, manifest.version);
    let originId = id;
    const parent = manifest.parent ? await this.store.workflows.get(manifest.parent) : undefined;
    if (manifest.parent && !parent)
      throw new HavnError("WORKFLOW_INVALID", `The parent ${manifest.parent} is not a published workflow.`);
    const copied = await this.store.workflows.firstWithContent(contentHash);
    const source = parent ?? (copied && copied.creatorId !== creatorId ? copied : undefined);
    if (source) {
      originId = source.originId;
      if (manifest.dependencies.length === 0) {
        if (manifest.royalties.upstream === 0)
          throw new HavnError(
            "WORKFLOW_INVALID",
            `This workflow derives from ${originId}: give it an upstream share, which goes to its origin.`,
          );
        manifest = { ...manifest, dependencies: [{ workflow: originId, share: 100 }] };
      } else if (!manifest.dependencies.some((d) => d.workflow === originId || d.workflow === source.id))
        throw new HavnError(
          "WORKFLOW_INVALID",
          `This workflow derives from ${originId}: name it (or ${source.id}) among its dependencies.`,
        );
    }
    const outcome = await this.store.workflows.publish({
      id,
      name: manifest.name,
      version: manifest.version,
      creatorId,
      manifest,
      contentHash,
      originId,
      createdAt: now,
    });
    if (outcome === "version_exists")
      throw new HavnError("WORKFLOW_VERSION_EXISTS", `${manifest.name}@${manifest.version} is published already.`, {
        context: { Workflow: id },
      });
    if (outcome === "name_taken")
      throw new HavnError("WORKFLOW_NAME_TAKEN", `Another creator publishes under the name ${manifest.name}.`);
    this.log.info(
      { workflow: id, name: manifest.name, version: manifest.version, creator: creatorId },
      "workflow published",
    );
    return (await this.store.workflows.get(id))!;
  }

  /** A workflow by id, or by `name` or `name@version` (the newest version of a bare name). */
  async find(ref: string): Promise<WorkflowRow> {
    const at = ref.lastIndexOf("@");
    const found = workflowIdPattern.test(ref)
      ? await this.store.workflows.get(ref)
      : at > 0
        ? await this.store.workflows.byName(ref.slice(0, at), ref.slice(at + 1))
        : await this.store.workflows.byName(ref);
    if (!found)
      throw new HavnError("WORKFLOW_NOT_FOUND", "No workflow with this id or name.", {
        context: { Workflow: ref.slice(0, 140) },
      });
    return found;
  }

  /**
   * The job a request naming a workflow runs: the workflow's model (a request naming another is
   * refused), the caller's text in its template (a chat's last user message; a completion's
   * prompt), its parameters wherever the request left the default.
   */
  async apply(
    ref: string,
    request: { readonly model: string; readonly input: JobInput; readonly params: GenerationParams },
    given: ReadonlySet<keyof GenerationParams>,
  ): Promise<{ workflow: WorkflowRow; model: string; input: JobInput; params: GenerationParams }> {
    const workflow = await this.find(ref);
    if (workflow.flaggedAt !== null)
      throw new HavnError("WORKFLOW_FLAGGED", "This workflow is flagged and does not run.", {
        context: { Workflow: workflow.id, Reason: workflow.flagReason ?? "" },
      });
    const m = workflow.manifest;
    const model = request.model.trim();
    if (model !== "" && model.toLowerCase() !== "auto" && model !== m.model)
      throw new HavnError("REQUEST_INVALID", `This workflow runs model ${m.model}; the request names ${model}.`, {
        context: { Workflow: workflow.id },
      });
    let input: JobInput;
    if (request.input.kind === "completion")
      input = { kind: "completion", prompt: renderTemplate(m.template, request.input.prompt) };
    else {
      const messages = [...request.input.messages];
      let last = -1;
      messages.forEach((msg, i) => (msg.role === "user" ? (last = i) : undefined));
      if (last < 0) throw new HavnError("REQUEST_INVALID", "A workflow job needs a user message.");
      messages[last] = { role: "user", content: renderTemplate(m.template, messages[last]!.content) };
      input = { kind: "chat", messages };
    }
    const params = { ...request.params };
    for (const [k, v] of Object.entries(m.parameters) as [keyof GenerationParams, never][])
      if (!given.has(k) && v !== undefined) params[k] = v;
    return { workflow, model: m.model, input, params };
  }

  /**
   * Flags a workflow (it stops running; its royalties are held) or clears the flag, releasing
   * what was held to its creator.
   */
  async setFlag(id: string, flagged: boolean, reason: string, by: string, now = Date.now()): Promise<WorkflowRow> {
    const workflow = await this.store.workflows.setFlag(id, flagged, reason, now);
    if (!workflow)
      throw new HavnError("WORKFLOW_NOT_FOUND", "No workflow with this id.", { context: { Workflow: id } });
    this.log.info({ workflow: id, flagged, reason, by }, flagged ? "workflow flagged" : "workflow flag cleared");
    if (!flagged) {
      const held = ledgerAccounts.held(id);
      const amount = await this.store.ledger.balance(held);
      if (amount > 0n) {
        const release: LedgerTransfer = {
          kind: "release",
          idempotencyKey: `release:${id}:${now}`,
          now,
          memo: { workflow: id, reason, by },
          postings: [
            { account: held, amount: -amount },
            { account: await this.wallets.of(workflow.creatorId), amount },
          ],
        };
        await this.store.ledger.post(release);
      }
    }
    return workflow;
  }

  /** A workflow and its ancestors as royalties see them, keyed by id (at most `limit` workflows). */
  async royaltyGraph(id: string, limit = 256): Promise<Map<string, RoyaltyWorkflow>> {
    const graph = new Map<string, RoyaltyWorkflow>();
    const pending = [id];
    while (pending.length > 0 && graph.size < limit) {
      const next = pending.pop()!;
      if (graph.has(next)) continue;
      const w = await this.store.workflows.get(next);
      if (!w) continue;
      graph.set(next, {
        id: w.id,
        creatorAccount: await this.wallets.of(w.creatorId),
        royalties: w.manifest.royalties,
        dependencies: w.manifest.dependencies,
        flagged: w.flaggedAt !== null,
      });
      for (const d of w.manifest.dependencies) pending.push(d.workflow);
    }
    return graph;
  }
}
