import { z } from "zod";
import { generationParamsSchema } from "./jobs.js";

/** `{{input}}` at most this often in a template: the rendered prompt stays bounded. */
export const maxPlaceholders = 8;
/** No NUL characters: PostgreSQL's JSON cannot hold them. */
const noNul = /^[^\0]*$/;

/** What a workflow's id looks like: `wf-` and 24 hex digits of its name and version's hash. */
export const workflowIdPattern = /^wf-[0-9a-f]{24}$/;

/**
 * Who a workflow run's charge goes to, in percent summing to 100 (seed 001): its creator, the
 * workflows it builds on (`upstream`, by their shares), the node that ran it, the validator pool,
 * the treasury.
 */
export const royaltySplitSchema = z
  .strictObject({
    creator: z.number().int().min(0).max(100),
    upstream: z.number().int().min(0).max(100),
    node: z.number().int().min(0).max(100),
    validators: z.number().int().min(0).max(100),
    treasury: z.number().int().min(0).max(100),
  })
  .refine((r) => r.creator + r.upstream + r.node + r.validators + r.treasury === 100, {
    message: "the royalty split must sum to 100 (percent)",
  });
export type RoyaltySplit = z.infer<typeof royaltySplitSchema>;

/** Seed 001's default split: 45 % creator, 20 % upstream, 25 % node, 5 % validators, 5 % treasury. */
export const defaultRoyaltySplit: RoyaltySplit = { creator: 45, upstream: 20, node: 25, validators: 5, treasury: 5 };

/**
 * A workflow as its creator publishes it (`havn publish ./workflow.json`). A version is
 * immutable once published. `template` is the prompt, with `{{input}}` where the caller's text
 * goes; `parameters` are the sampling defaults a caller's request may override.
 */
export const workflowManifestSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "a name is 1–64 lower-case letters, digits, `.`, `_` or `-`")
    .refine((n) => !workflowIdPattern.test(n), { message: "a name may not look like a workflow id" }),
  version: z.string().regex(/^\d{1,6}\.\d{1,6}\.\d{1,6}$/, "a version is MAJOR.MINOR.PATCH"),
  description: z.string().max(2_000).regex(noNul, "no NUL characters").default(""),
  model: z.string().min(1).max(256),
  template: z
    .string()
    .min(1)
    .max(20_000)
    .regex(noNul, "no NUL characters")
    .refine((t) => t.includes("{{input}}"), { message: "the template must contain {{input}}" })
    .refine((t) => t.split("{{input}}").length - 1 <= maxPlaceholders, {
      message: `the template may hold {{input}} at most ${maxPlaceholders} times`,
    }),
  parameters: generationParamsSchema.omit({ stop: true }).partial().strict().default({}),
  royalties: royaltySplitSchema.default(defaultRoyaltySplit),
  /** The workflows this one builds on; their shares of the upstream part sum to 100. */
  dependencies: z
    .array(z.strictObject({ workflow: z.string().regex(workflowIdPattern), share: z.number().int().min(1).max(100) }))
    .max(16)
    .default([])
    .refine((d) => d.length === 0 || d.reduce((n, x) => n + x.share, 0) === 100, {
      message: "dependency shares must sum to 100 (percent of the upstream part)",
    })
    .refine((d) => new Set(d.map((x) => x.workflow)).size === d.length, { message: "a dependency is named twice" }),
  /** The workflow this one derives from, when it does (its origin is paid as a dependency). */
  parent: z.string().regex(workflowIdPattern).optional(),
});
export type WorkflowManifest = z.output<typeof workflowManifestSchema>;
export type WorkflowManifestInput = z.input<typeof workflowManifestSchema>;
