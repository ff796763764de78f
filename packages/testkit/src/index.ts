export { ScriptedBackend } from "./backends.js";
export type { ScriptedBackendOptions } from "./backends.js";
export { startNetwork } from "./network.js";
export type { Network, NetworkOptions, NodeSpec, TestNode } from "./network.js";
export { hostileBehaviours, makeHostile } from "./hostile.js";
export type { HostileBehaviour } from "./hostile.js";
