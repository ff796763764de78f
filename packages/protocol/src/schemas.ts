// The wire schemas (zod), the same in the Node and browser entries. zod takes ~120 ms to import:
// clients that only call a coordinator and check receipts use `@havn/protocol/core`, which has none.
export {
  chatMessageSchema,
  finishReasons,
  generationParamsSchema,
  jobInputSchema,
  jobLimits,
  jobOutputSchema,
  jobSpecSchema,
  taskKinds,
} from "./jobs.js";
export type { ChatMessage, GenerationParams, JobInput, JobOutput, JobSpec, TaskKind } from "./jobs.js";
export {
  cosignedReceiptSchema,
  genesisHash,
  logPositionSchema,
  modelSources,
  receiptSchema,
  receiptV1Schema,
  receiptV2Schema,
  signedReceiptSchema,
} from "./receipts.js";
export type { CosignedReceipt, LogPosition, Receipt, ReceiptV1, ReceiptV2, SignedReceipt } from "./receipts.js";
export {
  backendHealthSchema,
  capabilitiesSchema,
  computeClasses,
  coordinatorToNodeSchema,
  fatalNodeCloseCodes,
  hardwareSchema,
  helloPayloadSchema,
  modelCapabilitySchema,
  nodeCloseCodes,
  nodeCredentialSchema,
  nodeToCoordinatorSchema,
  protocolVersion,
} from "./node-messages.js";
export type {
  BackendHealthReport,
  Capabilities,
  ComputeClass,
  CoordinatorMessageBody,
  CoordinatorToNode,
  Hardware,
  HelloPayload,
  ModelCapability,
  NodeCredential,
  NodeMessageBody,
  NodeToCoordinator,
} from "./node-messages.js";
export {
  chatCompletionChunk,
  chatCompletionRequestSchema,
  chatCompletionResponse,
  chatRequestToJob,
  completionChunk,
  completionRequestSchema,
  completionRequestToJob,
  completionResponse,
  openAIChunk,
  openAIErrorBody,
  openAIResponse,
  openAIUsageChunk,
  parseOpenAIRequest,
  parseRequestBody,
  usageOf,
} from "./openai.js";
export type { ChatCompletionRequest, CompletionRequest, OpenAIKind, SamplingDefaults } from "./openai.js";
export { defaultRoyaltySplit, royaltySplitSchema, workflowIdPattern, workflowManifestSchema } from "./workflows.js";
export type { RoyaltySplit, WorkflowManifest, WorkflowManifestInput } from "./workflows.js";
