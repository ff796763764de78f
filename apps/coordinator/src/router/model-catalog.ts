import { readFileSync } from "node:fs";
import { z } from "zod";
import { HavnError, type TaskKind } from "@havn/protocol";

/** One entry of a HavnAI `registry.json` (seed 000); unknown fields are kept but not used. */
const registryEntrySchema = z.looseObject({
  name: z.string().min(1),
  pipeline: z.string().optional(),
  task_type: z.string().optional(),
  weight: z.number().min(0).optional(),
  reward_weight: z.number().min(0).optional(),
  tags: z.array(z.string()).optional(),
  strengths: z.string().optional(),
  weaknesses: z.string().optional(),
  /** havn's addition: the most runtime a job of this model is rewarded for, in s. */
  max_runtime_s: z.number().positive().optional(),
  /** havn's addition: µHAI per 1 000 tokens in and out (text), or per image. */
  price: z
    .looseObject({
      input_per_1k: z.number().int().min(0).optional(),
      output_per_1k: z.number().int().min(0).optional(),
      per_image: z.number().int().min(0).optional(),
    })
    .optional(),
});
const registrySchema = z.looseObject({ models: z.array(z.unknown()) });

export interface CatalogModel {
  readonly name: string;
  readonly taskType: string;
  readonly pipeline: string | null;
  readonly weight: number;
  readonly tier: "S" | "A" | "B" | "C" | "D";
  readonly tags: readonly string[];
  readonly strengths: string | null;
  readonly weaknesses: string | null;
  /** The most runtime a job is rewarded for, in s; null: the coordinator's default. */
  readonly maxRuntimeSeconds: number | null;
  /** µHAI per 1 000 tokens in and out, from the manifest; null: the coordinator's default price. */
  readonly price: { readonly inputPer1k: bigint; readonly outputPer1k: bigint } | null;
}

/** Names kept from nodes' advertisements before those no node serves now are dropped. */
const maxAdvertised = 10_000;

/** HavnAI's default weight when a manifest entry names none. */
const defaultWeight = 10;
/** Registry task types that are text generation (chat and completion jobs). */
const textTaskTypes = new Set(["CHAT", "LLM", "LLM_CHAT", "TEXT", "TEXT_GEN", "COMPLETION"]);

export function tierOf(weight: number): CatalogModel["tier"] {
  return weight >= 20 ? "S" : weight >= 10 ? "A" : weight >= 8 ? "B" : weight >= 5 ? "C" : "D";
}

/**
 * What a model name may look like: a letter or digit, then letters, digits and `._:/@+-`, 128 at
 * most (`havn-tiny`, `llama3.2:3b`, `Qwen/Qwen2.5-7B-Instruct`).
 */
export const modelNamePattern = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$/;

/** Model names are matched case-insensitively, normalised once here (HavnAI's lookup was not). */
export const normaliseModelName = (name: string): string => name.trim().toLowerCase();

/**
 * The models the coordinator knows: the registry (weights for `model: "auto"`, tiers) and every
 * model a node has advertised. A request for a model in neither is a 404, not a queued job.
 */
export class ModelCatalog {
  private readonly registry = new Map<string, CatalogModel>();
  /** normalised name → the name as nodes advertise it */
  private readonly advertised = new Map<string, string>();

  private readonly admitted: Set<string>;
  private readonly admittedSpelling: Map<string, string>;
  /** Names governance paused or flagged (normalised): no jobs are admitted for them. */
  private held = new Map<string, "paused" | "flagged">();
  private readonly configuredAdmitted: readonly string[];

  constructor(
    registryPath: string | null,
    private readonly policy: {
      readonly mode: "open" | "curated";
      readonly maxModelsPerNode: number;
      readonly admitted: readonly string[];
    } = {
      mode: "open",
      maxModelsPerNode: 16,
      admitted: [],
    },
  ) {
    if (registryPath !== null) this.loadRegistry(registryPath);
    this.configuredAdmitted = policy.admitted;
    this.admitted = new Set(policy.admitted.map(normaliseModelName));
    this.admittedSpelling = new Map(policy.admitted.map((n) => [normaliseModelName(n), n]));
  }

  /**
   * What governance decided about model names: those it admitted (a curated catalog lists them
   * beside configuration's) and those it paused or flagged (no new jobs; not listed).
   */
  govern(admitted: readonly string[], held: ReadonlyMap<string, "paused" | "flagged">): void {
    this.admitted.clear();
    this.admittedSpelling.clear();
    for (const n of [...this.configuredAdmitted, ...admitted]) {
      this.admitted.add(normaliseModelName(n));
      if (!this.admittedSpelling.has(normaliseModelName(n))) this.admittedSpelling.set(normaliseModelName(n), n);
    }
    this.held = new Map([...held].map(([n, k]) => [normaliseModelName(n), k]));
  }

  /** Whether governance paused or flagged this name. */
  heldKind(name: string): "paused" | "flagged" | undefined {
    return this.held.size === 0 ? undefined : this.held.get(normaliseModelName(name));
  }

  /**
   * The names of what a node advertises that it may serve here: the right syntax, admitted by the
   * catalog's mode (open: any; curated: the manifest's and `admitted`), the first
   * `maxModelsPerNode` of them. `refused` is the rest.
   */
  servable<T extends { readonly name: string }>(models: readonly T[]): { kept: T[]; refused: string[] } {
    const kept: T[] = [];
    const refused: string[] = [];
    const seen = new Set<string>();
    for (const m of models) {
      const key = normaliseModelName(m.name);
      const ok =
        modelNamePattern.test(m.name) &&
        !seen.has(key) &&
        this.held.get(key) !== "flagged" &&
        (this.policy.mode === "open" || this.registry.has(key) || this.admitted.has(key));
      // Each name in the one spelling the network knows it by (see `canonical`).
      if (ok && kept.length < this.policy.maxModelsPerNode) kept.push({ ...m, name: this.canonical(m.name) });
      else refused.push(m.name);
      seen.add(key);
    }
    return { kept, refused };
  }

  /**
   * The spelling of a model name that routing matches on: the manifest's, else the admitted
   * list's, else the first a node advertised. A node that advertises `qwen-7b` serves `Qwen-7B`
   * — it cannot take the name over by spelling it another way.
   */
  canonical(name: string): string {
    const key = normaliseModelName(name);
    return this.registry.get(key)?.name ?? this.admittedSpelling.get(key) ?? this.advertised.get(key) ?? name;
  }

  private loadRegistry(path: string) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, "utf8"));
    } catch (err) {
      throw new HavnError("REQUEST_INVALID", "The model registry could not be read.", {
        context: { File: path },
        cause: err,
      });
    }
    const parsed = registrySchema.safeParse(raw);
    if (!parsed.success) {
      throw new HavnError("REQUEST_INVALID", "The model registry is not a HavnAI registry.json.", {
        context: { File: path },
      });
    }
    for (const item of parsed.data.models) {
      const entry = registryEntrySchema.safeParse(item);
      if (!entry.success) continue; // HavnAI skips entries without a name; so do we
      const e = entry.data;
      const weight = e.weight ?? e.reward_weight ?? defaultWeight;
      this.registry.set(normaliseModelName(e.name), {
        name: e.name,
        taskType: (e.task_type ?? "IMAGE_GEN").toUpperCase(),
        pipeline: e.pipeline?.toLowerCase() ?? null,
        weight,
        tier: tierOf(weight),
        tags: e.tags ?? [],
        strengths: e.strengths ?? null,
        weaknesses: e.weaknesses ?? null,
        maxRuntimeSeconds: e.max_runtime_s ?? null,
        price:
          e.price?.input_per_1k !== undefined || e.price?.output_per_1k !== undefined
            ? { inputPer1k: BigInt(e.price.input_per_1k ?? 0), outputPer1k: BigInt(e.price.output_per_1k ?? 0) }
            : null,
      });
    }
  }

  /**
   * Names nodes serve, kept so a job for one waits while its node is briefly away. The first
   * spelling stays. Bounded: past `maxAdvertised` names, those no connected node serves go
   * (`serving`), as a node rejoining with new names each time would otherwise grow it forever.
   */
  noteAdvertised(names: readonly string[], serving?: () => Iterable<string>) {
    for (const n of names) {
      const key = normaliseModelName(n);
      if (!this.advertised.has(key)) this.advertised.set(key, n);
    }
    if (this.advertised.size > maxAdvertised && serving) {
      const live = new Set([...serving()].map(normaliseModelName));
      for (const key of [...this.advertised.keys()]) if (!live.has(key)) this.advertised.delete(key);
    }
  }

  /** A model's manifest entry, if it has one. */
  entry(name: string): CatalogModel | undefined {
    return this.registry.get(normaliseModelName(name));
  }

  registryModels(): CatalogModel[] {
    return [...this.registry.values()].sort((a, b) => b.weight - a.weight);
  }

  advertisedModels(): string[] {
    return [...this.advertised.values()];
  }

  /** The canonical name of a requested model, or MODEL_NOT_FOUND / MODEL_TASK_UNSUPPORTED / MODEL_PAUSED. */
  resolve(requested: string, task: TaskKind): string {
    const key = normaliseModelName(requested);
    const held = this.held.get(key);
    if (held)
      throw new HavnError("MODEL_PAUSED", `Governance ${held} this model: no new jobs run on it.`, {
        context: { Model: requested },
      });
    const advertised = this.advertised.get(key);
    if (advertised !== undefined) return advertised;
    const entry = this.registry.get(key);
    if (entry === undefined) {
      throw new HavnError(
        "MODEL_NOT_FOUND",
        "No such model: it is not in the registry and no node has advertised it.",
        {
          context: { Model: requested },
        },
      );
    }
    if (!textTaskTypes.has(entry.taskType)) {
      throw new HavnError("MODEL_TASK_UNSUPPORTED", `This model does not serve ${task} jobs.`, {
        context: { Model: requested, "Task type": entry.taskType },
      });
    }
    return entry.name;
  }

  /**
   * `model: "auto"`: a weighted random pick (HavnAI's `random.choices` by manifest weight) among
   * the registry's text models, preferring those some node serves right now.
   */
  pickAuto(isServed: (name: string) => boolean, random: () => number = Math.random): string {
    const text = this.registryModels().filter(
      (m) => textTaskTypes.has(m.taskType) && m.weight > 0 && !this.held.has(normaliseModelName(m.name)),
    );
    const served = text.filter((m) => isServed(m.name));
    const pool: { name: string; weight: number }[] =
      served.length > 0
        ? served
        : text.length > 0
          ? text
          : this.advertisedModels()
              .filter((name) => isServed(name) && !this.held.has(normaliseModelName(name)))
              .map((name) => ({ name, weight: 1 }));
    if (pool.length === 0) {
      throw new HavnError("MODEL_REGISTRY_EMPTY", '`model: "auto"` found no text model to pick.', {});
    }
    const total = pool.reduce((s, m) => s + m.weight, 0);
    let r = random() * total;
    for (const m of pool) {
      r -= m.weight;
      if (r < 0) return m.name;
    }
    return pool[pool.length - 1]!.name;
  }
}
