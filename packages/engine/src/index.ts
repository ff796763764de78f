export { jobOutputOf, StopMatcher } from "./backend.js";
export type {
  Backend,
  BackendHealth,
  BackendInfo,
  BackendModel,
  GenerateRequest,
  GenerateResult,
  RuntimeIdentity,
  ScoreRequest,
  ScoreResult,
} from "./backend.js";
export { BuiltinBackend } from "./builtin/builtin-backend.js";
export type { BuiltinBackendOptions } from "./builtin/builtin-backend.js";
export { buildTinyModel, defaultCorpus, defaultTinyModelSpec } from "./builtin/tiny-model.js";
export type { TinyModelSpec } from "./builtin/tiny-model.js";
export { checkModelFile, ensureTinyModelFile, hashModelFile } from "./builtin/model-file.js";
export type { HashModelFileOptions, HashProgress } from "./builtin/model-file.js";
export { OpenAIBackend } from "./openai/openai-backend.js";
export type { OpenAIBackendOptions } from "./openai/openai-backend.js";
export { createOpenAIServer } from "./serve/openai-server.js";
export type { ServeModelOptions } from "./serve/openai-server.js";
