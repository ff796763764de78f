import { z } from "zod";

/** Limits that keep one job bounded; the coordinator may configure lower ones. */
export const jobLimits = {
  /** Tokens a single job may ask for; beyond this a client should split the work. */
  maxTokens: 8192,
  /** Messages in one chat; OpenAI allows more, but a node's context holds far fewer. */
  maxMessages: 512,
  /** Characters in one prompt or message; the coordinator's `maxPromptChars` is usually lower. */
  maxTextChars: 1_000_000,
} as const;

export const taskKinds = ["chat", "completion"] as const;
export type TaskKind = (typeof taskKinds)[number];

export const chatMessageSchema = z.strictObject({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string().max(jobLimits.maxTextChars),
});
export type ChatMessage = z.infer<typeof chatMessageSchema>;

export const jobInputSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("chat"), messages: z.array(chatMessageSchema).min(1).max(jobLimits.maxMessages) }),
  z.strictObject({ kind: z.literal("completion"), prompt: z.string().max(jobLimits.maxTextChars) }),
]);
export type JobInput = z.infer<typeof jobInputSchema>;

/**
 * Sampling parameters, pinned per job: the same parameters on the same engine and model give
 * the same tokens on any node. `temperature: 0` means greedy decoding.
 */
export const generationParamsSchema = z.strictObject({
  max_tokens: z.number().int().min(1).max(jobLimits.maxTokens),
  temperature: z.number().min(0).max(2),
  top_p: z.number().gt(0).max(1),
  seed: z.number().int().min(0).max(0xffffffff),
  stop: z.array(z.string().min(1).max(64)).max(4),
});
export type GenerationParams = z.infer<typeof generationParamsSchema>;

/** What a node receives to run one attempt of one job. */
export const jobSpecSchema = z.strictObject({
  job_id: z.string().min(1).max(64),
  attempt_id: z.string().min(1).max(64),
  workflow_id: z.string().max(128).nullable(),
  /** The workflow's version, when the job runs one (receipts name the workflow and its version). */
  workflow_version: z.string().min(1).max(32).nullable(),
  model: z.string().min(1).max(256),
  input: jobInputSchema,
  params: generationParamsSchema,
  stream: z.boolean(),
  input_hash: z.string().length(64),
  /**
   * The job's input salt (64 hex): the receipt commits to the input as SHA-256 of canonical
   * `{input, salt}`, so the public log never lets anyone confirm a guessed prompt.
   */
  input_salt: z.string().regex(/^[0-9a-f]{64}$/),
  /** The client's `x-request-id`, when it sent one: the node logs it beside the job id. */
  request_id: z.string().max(128).nullable().optional(),
});
export type JobSpec = z.infer<typeof jobSpecSchema>;

export const finishReasons = ["stop", "length", "cancelled"] as const;
export const jobOutputSchema = z.strictObject({
  text: z.string(),
  finish_reason: z.enum(finishReasons),
  usage: z.strictObject({
    prompt_tokens: z.number().int().min(0),
    completion_tokens: z.number().int().min(0),
  }),
});
export type JobOutput = z.infer<typeof jobOutputSchema>;
