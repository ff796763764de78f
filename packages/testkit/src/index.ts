export { ScriptedBackend } from "./backends.js";
export type { ScriptedBackendOptions } from "./backends.js";
export { startNetwork } from "./network.js";
export type { Network, NetworkOptions, NodeSpec, TestNode } from "./network.js";
