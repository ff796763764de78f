// Everything that is the same in the Node and browser entries.
export { canonicalBytes, canonicalJson, utf8 } from "./canonical.js";
export { fromBase64Url, fromHex, toBase64Url, toHex } from "./encoding.js";
export { errorCatalog, HavnError, isErrorCode } from "./errors.js";
export type { ErrorBody, ErrorCode, ErrorSpec } from "./errors.js";
export { jobIdPattern, requestIdPattern } from "./ids.js";
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
  receiptSchema,
  signedReceiptSchema,
} from "./receipts.js";
export type { CosignedReceipt, LogPosition, Receipt, SignedReceipt } from "./receipts.js";
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
export { domainTag, signatureDomains } from "./crypto/suite.js";
export type { CryptoSuite, KeyPair, SignatureDomain } from "./crypto/suite.js";
export type { ReceiptVerification } from "./receipt-signing.js";
