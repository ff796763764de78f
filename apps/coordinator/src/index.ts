export { buildApp, coordinatorVersion } from "./app.js";
export type { BuildAppOptions, CoordinatorApp } from "./app.js";
export { compileConfig } from "./config.js";
export type { CoordinatorConfig, CoordinatorOptions } from "./config.js";
export { main } from "./main.js";
