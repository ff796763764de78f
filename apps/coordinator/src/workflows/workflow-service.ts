import {
  HavnError,
  hashCanonical,
  workflowIdPattern,
  workflowManifestSchema,
  type GenerationParams,
  type JobInput,
  type WorkflowManifest,
} from "@havn/protocol";
import type { Store, WorkflowRow } from "@havn/store";
import type { FastifyBaseLogger } from "fastify";
import type { CoordinatorConfig } from "../config.js";
import type { Wallets } from "../ledger/wallets.js";
import { maxRoyaltyDepth, type RoyaltyWorkflow } from "./royalties.js";
import { configTerms, type GovernedTerms } from "../governance/params.js";

/** A workflow's id: fixed by its name and version. */
export function workflowId(name: string, version: string): string {
  return `wf-${hashCanonical({ name, version }).slice(0, 24)}`;
}

/**
 * What a workflow does — its model, template and parameters — hashed, so that copies share it:
 * the template with its whitespace collapsed and in lower case, parameters without the values
 * every request has anyway (temperature 1, top_p 1). A copy that rewords the template is not
 * caught here; one that pads it with spaces or restates defaults is.
 */
export function contentHashOf(m: WorkflowManifest): string {
  const { temperature, top_p, ...rest } = m.parameters;
  return hashCanonical({
    model: m.model.trim().toLowerCase(),
    template: m.template.replace(/\s+/g, " ").trim().toLowerCase(),
    parameters: {
      ...rest,
      ...(temperature !== 1 && temperature !== undefined && { temperature }),
      ...(top_p !== 1 && top_p !== undefined && { top_p }),
    },
  });
}

function lastUser(input: Extract<JobInput, { kind: "chat" }>) {
  return [...input.messages].reverse().find((m) => m.role === "user");
}

/** The caller's text in the template's `{{input}}`. */
export function renderTemplate(template: string, input: string): string {
  return template.split("{{input}}").join(input);
}

/** Held balances a settlement pass looks at, at most (they are rare: a flag cleared mid-pass). */
const heldPerPass = 50;
/**
 * The workflow registry (seed 001): publishing immutable versions, tracing copies and
 * derivatives to their origin, flags, and turning a job that names a workflow into the job it
 * runs (its model, its template around the caller's text, its parameters as defaults).
 */
export class WorkflowService {
  constructor(
    private readonly store: Store,
    private readonly wallets: Wallets,
    private readonly config: CoordinatorConfig,
    private readonly log: FastifyBaseLogger,
    /** The floors and the derivative share as governance has them now (default: configuration's). */
    private readonly governed: () => GovernedTerms = () => configTerms(config),
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
    const { workflowFloors: floors, derivativeUpstream } = this.governed();
    for (const who of ["node", "validators", "treasury"] as const)
      if (manifest.royalties[who] < floors[who])
        throw new HavnError(
          "WORKFLOW_INVALID",
          `The ${who}' share of every run is at least ${floors[who]} % on this network; the split gives ${manifest.royalties[who]} %.`,
        );
    for (const d of manifest.dependencies)
      if (!(await this.store.workflows.get(d.workflow)))
        throw new HavnError("WORKFLOW_INVALID", `The dependency ${d.workflow} is not a published workflow.`);
    const contentHash = contentHashOf(manifest);
    if (await this.store.workflows.flaggedWithContent(contentHash))
      throw new HavnError("WORKFLOW_FLAGGED", "A flagged workflow does this: it cannot be published again.");
    const id = workflowId(manifest.name, manifest.version);
    let originId = id;
    const parent = manifest.parent ? await this.store.workflows.get(manifest.parent) : undefined;
    if (manifest.parent && !parent)
      throw new HavnError("WORKFLOW_INVALID", `The parent ${manifest.parent} is not a published workflow.`);
    // A copy of another creator's content is theirs, whatever parent it declares.
    const copied = await this.store.workflows.firstWithContent(contentHash);
    const source = copied && copied.creatorId !== creatorId ? copied : parent;
    if (source) {
      originId = source.originId;
      if (manifest.royalties.upstream < derivativeUpstream)
        throw new HavnError(
          "WORKFLOW_INVALID",
          `This workflow derives from ${originId}: its upstream share, which its origin is owed, is at least ${derivativeUpstream} %.`,
        );
      if (manifest.dependencies.length === 0)
        manifest = { ...manifest, dependencies: [{ workflow: originId, share: 100 }] };
      else if (!manifest.dependencies.some((d) => d.workflow === originId || d.workflow === source.id))
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
    options: { readonly maxPromptChars: number; readonly evenIfFlagged?: boolean },
  ): Promise<{ workflow: WorkflowRow; model: string; input: JobInput; params: GenerationParams }> {
    const workflow = await this.find(ref);
    if (
      !options.evenIfFlagged &&
      (workflow.flaggedAt !== null || (await this.store.workflows.flaggedWithContent(workflow.contentHash)))
    )
      throw new HavnError("WORKFLOW_FLAGGED", "This workflow (or one doing the same) is flagged and does not run.", {
        context: { Workflow: workflow.id, Reason: workflow.flagReason ?? "" },
      });
    const m = workflow.manifest;
    const model = request.model.trim();
    if (model !== "" && model.toLowerCase() !== "auto" && model !== m.model)
      throw new HavnError("REQUEST_INVALID", `This workflow runs model ${m.model}; the request names ${model}.`, {
        context: { Workflow: workflow.id },
      });
    // The rendered prompt's length, before rendering it: a template repeats the caller's text.
    const text = request.input.kind === "completion" ? request.input.prompt : (lastUser(request.input)?.content ?? "");
    const placeholders = m.template.split("{{input}}").length - 1;
    const rendered = m.template.length - placeholders * "{{input}}".length + placeholders * text.length;
    if (rendered > options.maxPromptChars)
      throw new HavnError(
        "REQUEST_PROMPT_TOO_LONG",
        "The prompt, in this workflow's template, is longer than this coordinator accepts.",
        {
          context: { Characters: rendered, Limit: options.maxPromptChars },
        },
      );
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
    if (!flagged) await this.releaseHeld(id, reason, by, now);
    return workflow;
  }

  /**
   * Pays a workflow's held royalties to its creator, if it is not flagged — checked in the
   * release's own transaction, so a flag set meanwhile keeps what is held, and two releases
   * racing pay it once. Returns what was released.
   */
  private async releaseHeld(id: string, reason: string, by: string, now: number): Promise<bigint> {
    const workflow = await this.store.workflows.get(id);
    if (!workflow) return 0n;
    return this.store.ledger.releaseHeld({
      workflowId: id,
      to: await this.wallets.of(workflow.creatorId),
      reason,
      by,
      now,
    });
  }

  /**
   * Releases what is held for workflows no longer flagged. A settlement that read a workflow's
   * flag before it was cleared, and committed after the clear released the holdings, leaves its
   * share in `held:<id>`; each settlement pass sends it on here.
   */
  async releaseCleared(now = Date.now()): Promise<bigint> {
    let released = 0n;
    for (const { workflowId } of await this.store.ledger.heldBalances(heldPerPass)) {
      const amount = await this.releaseHeld(
        workflowId,
        "held by a settlement that raced the flag's clearing",
        "settlement",
        now,
      );
      if (amount > 0n) this.log.info({ workflow: workflowId, amount_uhai: String(amount) }, "held royalties released");
      released += amount;
    }
    return released;
  }

  /**
   * A workflow and its ancestors as royalties see them, level by level up to the depth royalties
   * flow (one past it), keyed by id. `cache` carries what was read across the jobs of one
   * settlement pass: each workflow is read once per pass.
   */
  async royaltyGraph(
    id: string,
    cache = new Map<string, RoyaltyWorkflow | null>(),
  ): Promise<Map<string, RoyaltyWorkflow>> {
    const graph = new Map<string, RoyaltyWorkflow>();
    let level = [id];
    for (let depth = 0; depth <= maxRoyaltyDepth + 1 && level.length > 0; depth++) {
      const next: string[] = [];
      for (const wid of level) {
        if (graph.has(wid)) continue;
        let w = cache.get(wid);
        if (w === undefined) {
          const row = await this.store.workflows.get(wid);
          w = row
            ? {
                id: row.id,
                creatorAccount: await this.wallets.of(row.creatorId),
                royalties: row.manifest.royalties,
                dependencies: row.manifest.dependencies,
                flagged: row.flaggedAt !== null,
              }
            : null;
          cache.set(wid, w);
        }
        if (!w) continue;
        graph.set(wid, w);
        for (const d of w.dependencies) next.push(d.workflow);
      }
      level = next;
    }
    return graph;
  }
}
