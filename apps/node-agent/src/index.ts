export { agentVersion, NodeAgent } from "./agent.js";
export type { NodeAgentOptions } from "./agent.js";
export { assumedPowerW, computeClassOf, detectHardware, detectNvidiaGpus, parseNvidiaSmi } from "./hardware.js";
export type { Gpu } from "./hardware.js";
export { NodeMetrics, serveMetrics } from "./metrics.js";
